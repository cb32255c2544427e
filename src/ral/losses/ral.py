"""The Robust Asymmetric Loss (RAL) of Park et al., ICCV 2023 Workshops (arXiv 2308.05542).

RAL is ASL / APL's asymmetric polynomial terms with the Hill weight psi(p) = lam - p on the
negative term. Per label, with p = sigmoid(x) (softmax(x)[c] for the single-label variant)
and p_tau = max(p - tau, 0)::

    L+ = (1-p)^gamma_pos * ( -log p         + sum_m eps_pos[m] (1-p)^m )            log form
    L- = psi(p) * p_tau^gamma_neg * ( -log(1-p_tau) + sum_n eps_neg[n] p_tau^n )
    loss = y * L+ + (1 - y) * L-

The series form (Eq. 6 of the paper) replaces a bracket by sum_m alpha_m (1-p)^m or
sum_n beta_n p_tau^n; it is used for a side when ``alpha`` / ``beta`` is given.
:func:`ral_elementwise` below is the whole formula, differentiated by plain autograd (the
default, ``impl="eager"``: no compiler, no warm-up). ``impl="compiled"`` opts into running that
same function through ``torch.func.grad_and_value`` and TorchInductor (``_fast.py``, imported
only then); wrapping the module in ``torch.compile`` is the other way to fuse it.
docs/losses.md has the maths, the presets and the evidence behind the defaults.

Two long-tail options act around that formula, never inside a second copy of it: a per-class
weight of the positive term (``ral_long_tail.py``'s class-balanced RAL) and ``prior_tau``, a
shift of the logits by the training prior before the formula (logit adjustment, Menon et al.,
ICLR 2021); the model's raw logits stay the prediction.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor

from ._base import MultiLabelLoss, SingleLabelLoss, functional
from ._common import (
    ClassVector,
    check_bool,
    check_choice,
    check_finite,
    check_float_tuple,
    check_in_range,
    check_nonnegative,
    lean_elementwise,
    reduce_loss,
    reduce_per_sample,
)
from ._space import Choice, FloatRange, tunable
from ._terms import (
    Probabilities,
    log_prior,
    log_prior_odds,
    negative_part,
    positive_part,
    sigmoid_probabilities,
    softmax_probabilities,
)
from .hill import hill_weight

if TYPE_CHECKING:
    from ._fast import CompiledLoss

#: Forms of the negative weight: Eq. 6's Hill weight, or the authors' released code.
WEIGHT_FORMS = ("paper", "official-code")
#: "eager": the formula under plain autograd (default); "compiled": the formula and its gradient
#: compiled together by TorchInductor (opt-in, ``_fast.py``).
IMPLS = ("eager", "compiled")

#: Named presets (docs/losses.md, "Robust Asymmetric Loss in depth").
PRESETS: dict[str, dict[str, Any]] = {
    # Eq. 6 of the paper with the authors' released constants, project conventions (mean).
    "paper": dict(
        gamma_pos=0.0,
        gamma_neg=4.0,
        tau=0.05,
        lam=1.5,
        eps_pos=(-1.0, 1.25),
        eps_neg=(),
        alpha=None,
        beta=None,
        hill=True,
        weight_form="paper",
        reduction="mean",
    ),
}
# kalelpark/RAL `Ralloss`: the same constants, w_neg(p) = (lam - p) * p^2 * (lam - 1 + p_tau), summed.
PRESETS["official-code"] = {**PRESETS["paper"], "weight_form": "official-code", "reduction": "sum"}


@dataclass(frozen=True)
class RALParams:
    """Validated RAL hyper-parameters (see :class:`RobustAsymmetricLoss` for their meaning).

    ``alpha`` / ``beta`` are ``None`` for the log form of that side and a tuple of series
    coefficients (alpha_1..alpha_M / beta_1..beta_N) for the series form (Eq. 6).
    """

    gamma_pos: float = 0.0
    gamma_neg: float = 4.0
    tau: float = 0.05
    lam: float = 1.5
    eps_pos: tuple[float, ...] = (-1.0, 1.25)
    eps_neg: tuple[float, ...] = ()
    alpha: tuple[float, ...] | None = None
    beta: tuple[float, ...] | None = None
    hill: bool = True
    weight_form: str = "paper"
    detach_focal: bool = False

    def for_dtype(self, dtype: torch.dtype) -> RALParams:
        """These parameters with a tau below the resolution of ``dtype`` (1 - tau == 1) read as 0:
        such a tau moves p by less than one ulp but would make 1 - p_tau round to 0 where p
        rounds to 1, while tau = 0 computes -log(1 - p) exactly."""
        if 0 < self.tau < torch.finfo(dtype).eps:
            return dataclasses.replace(self, tau=0.0)
        return self


#: The hyper-parameters of RAL, by name (constructor options of both RAL modules).
RAL_OPTIONS = tuple(field.name for field in dataclasses.fields(RALParams))


def ral_elementwise(t: Probabilities, y: Tensor, params: RALParams, positive_weight: Tensor | None = None) -> Tensor:
    """Element-wise RAL ``y * w+ * L+ + (1 - y) * L-`` (N, C) from the probability terms of the
    logits; ``positive_weight`` w+ (C,) weights the positive term per class (1 when None)."""
    prm = params
    positive = positive_part(t, prm.gamma_pos, prm.eps_pos, series=prm.alpha, detach_focal=prm.detach_focal)
    if positive_weight is not None:
        positive = positive * positive_weight
    negative = negative_part(t, prm.gamma_neg, prm.tau, prm.eps_neg, series=prm.beta, detach_focal=prm.detach_focal)
    if prm.hill:
        negative = negative * negative_weight(t.p, prm)
    # y * positive + (1 - y) * negative in one op, exact at y = 0 and y = 1
    return torch.lerp(negative, positive, y)


def negative_weight(p: Tensor, params: RALParams) -> Tensor:
    """psi(p) = lam - p (Eq. 6), or the authors' code's (lam - p) p^2 (lam - 1 + p_tau)."""
    weight = hill_weight(p, params.lam)
    if params.weight_form == "official-code":
        weight = weight * p.square() * (torch.relu(p - params.tau) + (params.lam - 1.0))
    return weight


def _series(name: str, values: Sequence[float] | None) -> tuple[float, ...] | None:
    if values is None:
        return None
    coefficients = check_float_tuple(name, values)
    if not coefficients:
        raise ValueError(f"{name} must hold at least one series coefficient, got {values!r}")
    return coefficients


def ral_params(**options: Any) -> RALParams:
    """Validate RAL hyper-parameters (any fields of :class:`RALParams`; the rest keep its
    defaults) and freeze them.

    Raises:
        ValueError: an unknown option, negative or non-finite gammas, ``tau`` outside [0, 1),
            ``lam`` < 1 with ``hill`` on (or not finite), non-numeric ``eps_pos`` / ``eps_neg``,
            empty or non-numeric ``alpha`` / ``beta``, unknown ``weight_form``, non-bool flags.
    """
    unknown = sorted(set(options) - set(RAL_OPTIONS))
    if unknown:
        raise ValueError(f"unknown RAL option(s) {unknown}; the options are {list(RAL_OPTIONS)}")
    o = {**dataclasses.asdict(RALParams()), **options}
    hill = check_bool("hill", o["hill"])
    check_choice("weight_form", o["weight_form"], WEIGHT_FORMS)
    lam = check_finite("lam", o["lam"])
    if hill and lam < 1.0:
        raise ValueError(f"lam must be >= 1 when hill=True (keeps lam - p > 0), got {o['lam']!r}")
    return RALParams(
        gamma_pos=check_nonnegative("gamma_pos", o["gamma_pos"]),
        gamma_neg=check_nonnegative("gamma_neg", o["gamma_neg"]),
        tau=check_in_range("tau", o["tau"], 0.0, 1.0),
        lam=lam,
        eps_pos=check_float_tuple("eps_pos", o["eps_pos"]),
        eps_neg=check_float_tuple("eps_neg", o["eps_neg"]),
        alpha=_series("alpha", o["alpha"]),
        beta=_series("beta", o["beta"]),
        hill=hill,
        weight_form=o["weight_form"],
        detach_focal=check_bool("detach_focal", o["detach_focal"]),
    )


def _elementwise(
    params: RALParams, single: bool, x: Tensor, y: Tensor, positive_weights: Tensor | None = None
) -> Tensor:
    probabilities = softmax_probabilities if single else sigmoid_probabilities
    if positive_weights is not None:
        positive_weights = positive_weights.to(dtype=x.dtype)
    return ral_elementwise(probabilities(x), y, params.for_dtype(x.dtype), positive_weights)


def _reduced(params: RALParams, single: bool, reduction: str, *, lean: bool = False):
    """(x, y, valid, weights, positive_weights) -> reduced RAL: the eager formula, and what
    ``impl="compiled"`` compiles. ``lean``: the multi-label formula through
    :func:`lean_elementwise` (autograd keeps one (N, C) tensor; each label's loss depends on its
    own logit only, which a softmax's does not)."""
    reduce = reduce_per_sample if single else reduce_loss

    def reduced(
        x: Tensor,
        y: Tensor,
        valid: Tensor | None,
        weights: Tensor | None,
        positive_weights: Tensor | None = None,
    ) -> Tensor:
        if lean and not single:
            loss = lean_elementwise(lambda z, rows: _elementwise(params, single, z, y[rows], positive_weights), x)
        else:
            loss = _elementwise(params, single, x, y, positive_weights)
        return reduce(loss, valid=valid, class_weights=weights, reduction=reduction)

    return reduced


@functools.lru_cache(maxsize=64)
def _compiled(params: RALParams, single: bool, reduction: str) -> CompiledLoss:
    """One compiled loss per distinct setting (losses with equal settings share its kernels)."""
    from ._fast import CompiledLoss  # the opt-in compiled path: imported only when used

    return CompiledLoss(_reduced(params, single, reduction))


@dataclasses.dataclass(eq=False, repr=False, init=False, kw_only=True)
class _RALMixin:
    """What both RAL modules share: RAL's options (fields), ``impl``, presets, the prior
    correction and the call of the formula."""

    single: ClassVar[bool] = False
    #: The training statistics ``prior_tau > 0`` needs.
    prior_statistics: ClassVar[tuple[str, ...]] = ()
    gamma_pos: float = tunable(0.0, FloatRange(low=0.0, high=2.0))
    gamma_neg: float = tunable(4.0, FloatRange(low=0.0, high=8.0))
    tau: float = tunable(0.05, FloatRange(low=0.0, high=0.2))
    lam: float = tunable(1.5, FloatRange(low=1.0, high=3.0))
    eps_pos: Sequence[float] = tunable((-1.0, 1.25), FloatRange(low=-1.5, high=1.0), FloatRange(low=-1.0, high=2.5))
    eps_neg: Sequence[float] = ()
    alpha: Sequence[float] | None = None
    #: the negative term's log form (None) or its series truncated after 1 or 2 terms (Eq. 6)
    beta: Sequence[float] | None = tunable(None, Choice(values=(None, (1.0,), (1.0, 0.5))))
    hill: bool = True
    weight_form: str = "paper"
    detach_focal: bool = False
    prior_tau: float = 0.0
    impl: str = "eager"

    def __post_init__(self) -> None:
        super().__post_init__()  # the loss base: common options and statistics
        self.params = ral_params(**{name: getattr(self, name) for name in RAL_OPTIONS})
        for name in RAL_OPTIONS:  # the validated values (tuples, floats)
            setattr(self, name, getattr(self.params, name))
        self.impl = check_choice("impl", self.impl, IMPLS)
        self.prior_tau = check_nonnegative("prior_tau", self.prior_tau)
        if self.prior_tau > 0:
            for name in self.prior_statistics:
                if getattr(self, name) is None:
                    raise ValueError(f"prior_tau > 0 needs {name} (from the training set), got None")

    def compiled_loss(self) -> CompiledLoss:
        """This setting's compiled ``(x, y, valid, weights, positive_weights) -> (value, gradient)``
        (shared cache; what ``impl="compiled"`` runs)."""
        return _compiled(self.params, self.single, self.reduction)

    def adjusted_logits(self, x: Tensor) -> Tensor:
        """``x + prior_tau * prior_logits()`` (the logit adjustment of training; ``prior_logits`` is
        the training prior in logit space, per class); ``x`` for prior_tau = 0."""
        if self.prior_tau == 0:
            return x
        return x + (self.prior_tau * self.prior_logits()).to(device=x.device, dtype=x.dtype)

    def positive_weights(self) -> Tensor | None:
        """Per-class weights (C,) of the positive term only, or None (the class-balanced RAL sets them)."""
        return None

    def reduced_loss(self, x: Tensor, y: Tensor, valid: Tensor | None) -> Tensor:
        x = self.adjusted_logits(x)
        constants = (y, valid, self.weights(), self.positive_weights())
        if self.impl == "compiled":
            from ._fast import can_use_fast_path, fast_loss

            if can_use_fast_path(x):
                per_row = self.single and self.reduction == "none"
                return fast_loss(self.compiled_loss(), x, *constants, per_row=per_row)
        return _reduced(self.params, self.single, self.reduction, lean=True)(x, *constants)

    def elementwise(self, x: Tensor, y: Tensor) -> Tensor:
        return _elementwise(self.params, self.single, self.adjusted_logits(x), y, self.positive_weights())

    @classmethod
    def from_preset(cls, name: str, **overrides: Any):
        """Build the loss from a named preset ("paper" or "official-code"), then ``overrides``.

        "paper": gamma_pos=0, gamma_neg=4, tau=0.05, lam=1.5, eps_pos=(-1.0, 1.25),
        eps_neg=(), psi(p) = lam - p (Eq. 6), reduction "mean".
        "official-code": the authors' released ``Ralloss`` (kalelpark/RAL): same constants
        but w(p) = (lam - p) p^2 (lam - 1 + p_tau), which is *not* Eq. 6, and reduction "sum".
        """
        return cls(**{**PRESETS[check_choice("preset", name, tuple(PRESETS))], **overrides})

    def options(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self.params),
            "reduction": self.reduction,
            "impl": self.impl,
            "prior_tau": self.prior_tau,
        }


class RobustAsymmetricLoss(_RALMixin, MultiLabelLoss):
    """Multi-label Robust Asymmetric Loss (sigmoid per label); the formula is in the module docstring.

    The default is the paper's configuration (preset "paper") with a mean reduction; the
    official code sums (preset "official-code", see :meth:`from_preset`). All options are
    keyword arguments.

    Args:
        gamma_pos, gamma_neg: focusing exponents (>= 0, fractional allowed).
        tau: probability shift of negatives, p_tau = max(p - tau, 0), in [0, 1).
        lam: Hill constant of psi(p) = lam - p (>= 1 when ``hill``).
        eps_pos, eps_neg: log-form perturbations of the leading series coefficients
            (the paper's constants are eps_pos = (-1.0, 1.25), eps_neg = ()).
        alpha, beta: series coefficients alpha_1..alpha_M / beta_1..beta_N (Eq. 6); giving
            one switches that side to the series form and its ``eps_*`` is not used.
        hill: multiply L- by the Hill weight (``False``: weight 1).
        detach_focal: treat (1-p)^gamma_pos and p_tau^gamma_neg as constants in backprop
            (ASL's ``disable_torch_grad_focal_loss``); the Hill weight keeps its gradient.
        weight_form: "paper" (psi = lam - p, Eq. 6) or "official-code"
            (w = (lam - p) p^2 (lam - 1 + p_tau), the authors' released code, not Eq. 6).
        prior_tau: strength of the prior correction, >= 0 (default 0: off). With prior_tau > 0
            the formula sees z = x + prior_tau * log(pi_c / (1 - pi_c)), pi_c = n_c / N_train
            (``class_counts`` / ``num_samples``, both needed then; counts clamped to
            [1, N_train - 1]). This is Menon et al.'s logit adjustment applied to each label's
            binary problem {positive, negative} with priors (pi_c, 1 - pi_c): the adjusted
            logits x + tau log pi_c and 0 + tau log(1 - pi_c) have the sigmoid of their
            difference, sigmoid(z). A rare label's training logit is lowered, so its raw
            logit, the prediction, has to rise. (DB's prior bias has the same form, scaled by
            its ``init_bias``.) Provisional: whether it helps the tail is measured in
            docs/results.md.
        class_counts, num_samples: training statistics, used by ``prior_tau`` only.
        impl: "eager" (default: plain autograd, no compiler, also for second derivatives) or
            "compiled" (opt-in: formula and gradient compiled together by TorchInductor, see
            ``_fast.py``; needs a C++ compiler on a CPU, compiles once per batch shape, falls back
            to "eager" with a warning where it cannot compile). ``torch.compile(loss)`` also works.
        reduction: "mean" over valid elements (default), "sum" (what the ASL and official RAL
            code use: the gradient is N*C times larger, scale the learning rate), or "none".
        class_weights: optional (C,) weights multiplying each class's element-wise loss.
        ignore_value: target value to ignore (e.g. -1, or ``float("nan")``).
        check_targets: check that targets are in [0, 1] on every call.

    Shapes: ``forward(logits (N, C), targets (N, C) in [0, 1], mask=None (N, C))`` returns a
    scalar ("mean", "sum") or (N, C) ("none"), float32 (float64 for float64 logits).

    Raises:
        ValueError: negative gammas, tau outside [0, 1), lam < 1 with hill on, bad eps /
            alpha / beta, unknown reduction, impl or weight_form, bad class_weights, negative
            prior_tau, prior_tau > 0 without the statistics; at call time bad shapes or targets.

    Example:
        >>> criterion = RobustAsymmetricLoss(ignore_value=float("nan"))
        >>> loss = criterion(torch.randn(8, 26), torch.randint(0, 2, (8, 26)).float())
    """

    optional_statistics: ClassVar[tuple[str, ...]] = ("class_counts", "num_samples")
    prior_statistics: ClassVar[tuple[str, ...]] = ("class_counts", "num_samples")

    class_counts: ClassVector = field(default=None, kw_only=True)
    num_samples: int | None = field(default=None, kw_only=True)

    def prior_logits(self) -> Tensor:
        """log(pi_c / (1 - pi_c)) of the training labels (C,), float64."""
        return log_prior_odds(self.class_counts.double(), self.num_samples)


class RobustAsymmetricLossSingleLabel(_RALMixin, SingleLabelLoss):
    """Single-label RAL: p_c = softmax(x)[c], loss_i = sum_c [y_ic L+(p_ic) + (1 - y_ic) L-(p_ic)].

    -log p_c comes from log_softmax; log(1 - p_c) stays finite where p_c rounds to 1.

    Args:
        label_smoothing: eps in [0, 1): targets become (1 - eps) onehot + eps / C.
        ignore_index: class index marking a sample to ignore.
        reduction: "mean" over valid samples, "sum", or "none" ((N,) per-sample losses).
        prior_tau: logit adjustment (Menon et al., ICLR 2021), >= 0, default 0 (off): p is
            softmax(x + prior_tau * log pi), pi_c = n_c / sum n (``class_counts`` needed then,
            counts below 1 count as 1); the raw logits stay the prediction. ``ral_la``
            (:class:`~ral.losses.RobustAsymmetricLossLogitAdjusted`) is this with prior_tau = 1.
        Other arguments: as :class:`RobustAsymmetricLoss`.

    Shapes: ``forward(logits (N, C), targets (N,) class indices or (N, C) one-hot rows)``, C >= 2.

    Example:
        >>> loss = RobustAsymmetricLossSingleLabel()(torch.randn(4, 7), torch.tensor([0, 3, 6, 1]))
    """

    single = True
    optional_statistics: ClassVar[tuple[str, ...]] = ("class_counts",)
    prior_statistics: ClassVar[tuple[str, ...]] = ("class_counts",)

    class_counts: ClassVector = field(default=None, kw_only=True)

    def prior_logits(self) -> Tensor:
        """log pi_c of the training labels (C,), float64."""
        return log_prior(self.class_counts.double())


robust_asymmetric_loss = functional(RobustAsymmetricLoss, "robust_asymmetric_loss")


robust_asymmetric_loss_single_label = functional(RobustAsymmetricLossSingleLabel, "robust_asymmetric_loss_single_label")


__all__ = [
    "IMPLS",
    "PRESETS",
    "RALParams",
    "RobustAsymmetricLoss",
    "RobustAsymmetricLossSingleLabel",
    "WEIGHT_FORMS",
    "ral_elementwise",
    "ral_params",
    "robust_asymmetric_loss",
    "robust_asymmetric_loss_single_label",
]
