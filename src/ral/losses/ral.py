"""The Robust Asymmetric Loss (RAL) of Park et al., ICCV 2023 Workshops (arXiv 2308.05542).

Per label, with p = sigmoid(x) (or softmax(x)[c] for the single-label variant),
p_tau = max(p - tau, 0) and the Hill weight w(p) = lam - p:

    L+ = (1-p)^gamma_pos * ( -log p + sum_m eps_pos[m] (1-p)^m )                 (log form)
    L- = w(p) * p_tau^gamma_neg * ( -log(1-p_tau) + sum_n eps_neg[n] p_tau^n )
    loss = y * L+ + (1 - y) * L-

The series form (Eq. 6 of the paper) replaces the brackets by sum_m alpha_m (1-p)^m and
sum_n beta_n p_tau^n; it is used for a side when ``alpha`` / ``beta`` is given. The maths,
the presets and the closed-form gradient of the fused implementation are in docs/losses.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from ral.losses._common import (
    ClassVector,
    check_class_vector,
    check_in_range,
    check_reduction,
    multilabel_loss,
    prepare_multilabel,
    prepare_single_label,
    single_label_loss,
)
from ral.losses.ral_autograd import ral_elementwise, sigmoid_terms, softmax_terms
from ral.losses.ral_fused import fused_ral
from ral.losses.ral_params import PRESETS, RALParams, check_impl, for_dtype, make_ral_params, preset_kwargs

__all__ = [
    "PRESETS",
    "RALParams",
    "RobustAsymmetricLoss",
    "RobustAsymmetricLossSingleLabel",
    "robust_asymmetric_loss",
    "robust_asymmetric_loss_single_label",
]


def _multilabel(
    logits: Tensor,
    targets: Tensor,
    prm: RALParams,
    *,
    reduction: str,
    class_weights: ClassVector,
    ignore_value: float | None,
    mask: Tensor | None,
    impl: str,
) -> Tensor:
    if impl == "autograd":
        return multilabel_loss(
            lambda x, y: ral_elementwise(*sigmoid_terms(x), y, for_dtype(prm, x.dtype)), logits, targets, mask=mask,
            reduction=reduction, class_weights=class_weights, ignore_value=ignore_value,
        )
    check_reduction(reduction)
    x, y, valid = prepare_multilabel(logits, targets, ignore_value=ignore_value, mask=mask)
    weights = check_class_vector("class_weights", class_weights, x.shape[1], dtype=x.dtype, device=x.device)
    return fused_ral(x, y, valid, weights, for_dtype(prm, x.dtype), reduction)


def _single_label(
    logits: Tensor,
    targets: Tensor,
    prm: RALParams,
    *,
    label_smoothing: float,
    ignore_index: int,
    reduction: str,
    class_weights: ClassVector,
    impl: str,
) -> Tensor:
    if isinstance(logits, Tensor) and logits.ndim == 2 and logits.shape[1] < 2:
        raise ValueError(f"single-label logits need at least 2 classes, got shape {tuple(logits.shape)}")
    if impl == "autograd":
        return single_label_loss(
            lambda x, y: ral_elementwise(*softmax_terms(x), y, for_dtype(prm, x.dtype)), logits, targets,
            label_smoothing=label_smoothing, reduction=reduction, class_weights=class_weights,
            ignore_index=ignore_index,
        )
    check_reduction(reduction)
    x, y, valid = prepare_single_label(
        logits, targets, ignore_index=ignore_index, label_smoothing=label_smoothing
    )
    weights = check_class_vector("class_weights", class_weights, x.shape[1], dtype=x.dtype, device=x.device)
    return fused_ral(x, y, valid, weights, for_dtype(prm, x.dtype), reduction, single=True)


def robust_asymmetric_loss(
    logits: Tensor,
    targets: Tensor,
    *,
    gamma_pos: float = 0.0,
    gamma_neg: float = 4.0,
    tau: float = 0.05,
    lam: float = 1.5,
    eps_pos: Sequence[float] = (-1.0, 1.25),
    eps_neg: Sequence[float] = (),
    alpha: Sequence[float] | None = None,
    beta: Sequence[float] | None = None,
    hill: bool = True,
    detach_focal: bool = False,
    reduction: str = "mean",
    class_weights: ClassVector = None,
    ignore_value: float | None = None,
    mask: Tensor | None = None,
    impl: str = "fused",
    weight_form: str = "paper",
) -> Tensor:
    """Multi-label Robust Asymmetric Loss (sigmoid per label).

    Args:
        logits: (N, C) logits, any float dtype (computed in float32; float64 stays float64).
        targets: (N, C) targets in [0, 1] (soft allowed); ``ignore_value`` marks ignored ones.
        gamma_pos, gamma_neg: focusing exponents (>= 0, fractional allowed).
        tau: probability shift of negatives, p_tau = max(p - tau, 0), in [0, 1).
        lam: Hill constant of w(p) = lam - p (>= 1 when ``hill``).
        eps_pos, eps_neg: log-form perturbations of the leading series coefficients
            (the paper's constants are eps_pos = (-1.0, 1.25), eps_neg = ()).
        alpha, beta: series coefficients alpha_1..alpha_M / beta_1..beta_N (Eq. 6); giving
            one switches that side to the series form and its ``eps_*`` is not used.
        hill: multiply L- by the Hill weight (``False``: weight 1).
        detach_focal: treat (1-p)^gamma_pos and p_tau^gamma_neg as constants in backprop
            (ASL's ``disable_torch_grad_focal_loss``); the Hill weight keeps its gradient.
        reduction: "mean" over valid elements (default), "sum" (what the ASL and official RAL
            code use: the gradient is N*C times larger, scale the learning rate), or "none".
        class_weights: optional (C,) weights multiplying each class's element-wise loss.
        ignore_value: target value to ignore (e.g. -1, or ``float("nan")``).
        mask: optional (N, C) tensor, nonzero where the element counts.
        impl: "fused" (closed-form gradient, default) or "autograd" (plain, for verification).
        weight_form: "paper" (w = lam - p, Eq. 6) or "official-code"
            (w = (lam - p) p^2 (lam - 1 + p_tau), the authors' released code, not Eq. 6).

    Returns:
        Scalar loss ("mean" / "sum") or (N, C) ("none"), float32 (float64 for float64 logits).

    Raises:
        ValueError: bad shapes / targets (see ``prepare_multilabel``), negative gammas, tau
            outside [0, 1), lam < 1 with hill on, bad eps / alpha / beta, unknown reduction,
            impl or weight_form, class_weights of the wrong length or negative.

    Example:
        >>> loss = robust_asymmetric_loss(torch.randn(8, 26), torch.randint(0, 2, (8, 26)))
    """
    prm = make_ral_params(
        gamma_pos=gamma_pos, gamma_neg=gamma_neg, tau=tau, lam=lam, eps_pos=eps_pos,
        eps_neg=eps_neg, alpha=alpha, beta=beta, hill=hill, weight_form=weight_form,
        detach_focal=detach_focal,
    )
    return _multilabel(
        logits, targets, prm, reduction=reduction, class_weights=class_weights,
        ignore_value=ignore_value, mask=mask, impl=check_impl(impl),
    )


def robust_asymmetric_loss_single_label(
    logits: Tensor,
    targets: Tensor,
    *,
    gamma_pos: float = 0.0,
    gamma_neg: float = 4.0,
    tau: float = 0.05,
    lam: float = 1.5,
    eps_pos: Sequence[float] = (-1.0, 1.25),
    eps_neg: Sequence[float] = (),
    alpha: Sequence[float] | None = None,
    beta: Sequence[float] | None = None,
    hill: bool = True,
    detach_focal: bool = False,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    class_weights: ClassVector = None,
    ignore_index: int = -100,
    impl: str = "fused",
    weight_form: str = "paper",
) -> Tensor:
    """Single-label RAL: p_c = softmax(x)[c], loss_i = sum_c [y_ic L+(p_ic) + (1 - y_ic) L-(p_ic)].

    Args:
        logits: (N, C) logits, C >= 2.
        targets: (N,) class indices (``ignore_index`` rows ignored) or (N, C) one-hot /
            probability rows.
        label_smoothing: eps in [0, 1): targets become (1 - eps) onehot + eps / C.
        reduction: "mean" over valid samples, "sum", or "none" ((N,) per-sample losses).
        Other arguments: as :func:`robust_asymmetric_loss`; -log p_c comes from log_softmax.

    Returns:
        Scalar ("mean" / "sum") or (N,) ("none").

    Raises:
        ValueError: as :func:`robust_asymmetric_loss`, plus bad class indices, C < 2 and
            ``label_smoothing`` outside [0, 1).
    """
    prm = make_ral_params(
        gamma_pos=gamma_pos, gamma_neg=gamma_neg, tau=tau, lam=lam, eps_pos=eps_pos,
        eps_neg=eps_neg, alpha=alpha, beta=beta, hill=hill, weight_form=weight_form,
        detach_focal=detach_focal,
    )
    return _single_label(
        logits, targets, prm, label_smoothing=label_smoothing, ignore_index=ignore_index,
        reduction=reduction, class_weights=class_weights, impl=check_impl(impl),
    )


class _RALBase(nn.Module):
    """Shared constructor of the two RAL modules: validated parameters and class weights."""

    def __init__(
        self,
        *,
        gamma_pos: float,
        gamma_neg: float,
        tau: float,
        lam: float,
        eps_pos: Sequence[float],
        eps_neg: Sequence[float],
        alpha: Sequence[float] | None,
        beta: Sequence[float] | None,
        hill: bool,
        detach_focal: bool,
        reduction: str,
        class_weights: ClassVector,
        impl: str,
        weight_form: str,
    ) -> None:
        super().__init__()
        self.params = make_ral_params(
            gamma_pos=gamma_pos, gamma_neg=gamma_neg, tau=tau, lam=lam, eps_pos=eps_pos,
            eps_neg=eps_neg, alpha=alpha, beta=beta, hill=hill, weight_form=weight_form,
            detach_focal=detach_focal,
        )
        self.reduction = check_reduction(reduction)
        self.impl = check_impl(impl)
        self.register_buffer("class_weights", check_class_vector("class_weights", class_weights))

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> _RALBase:
        """Build the loss from a named preset ("paper" or "official-code"), then ``overrides``.

        "paper": gamma_pos=0, gamma_neg=4, tau=0.05, lam=1.5, eps_pos=(-1.0, 1.25),
        eps_neg=(), w(p) = lam - p (Eq. 6), reduction "mean".
        "official-code": the authors' released ``Ralloss`` (kalelpark/RAL): same constants
        but w(p) = (lam - p) p^2 (lam - 1 + p_tau), which is *not* Eq. 6, and reduction "sum".
        """
        kwargs = preset_kwargs(name, overrides)
        return cls(**kwargs)

    def extra_repr(self) -> str:
        prm = self.params
        return (
            f"gamma_pos={prm.gamma_pos}, gamma_neg={prm.gamma_neg}, tau={prm.tau}, lam={prm.lam}, "
            f"eps_pos={prm.eps_pos}, eps_neg={prm.eps_neg}, alpha={prm.alpha}, beta={prm.beta}, "
            f"hill={prm.hill}, weight_form={prm.weight_form!r}, detach_focal={prm.detach_focal}, "
            f"reduction={self.reduction!r}, impl={self.impl!r}"
        )


class RobustAsymmetricLoss(_RALBase):
    """Multi-label Robust Asymmetric Loss as an ``nn.Module`` (see :func:`robust_asymmetric_loss`).

    ``forward(logits (N, C), targets (N, C) in [0, 1], mask=None)`` returns a scalar ("mean",
    "sum") or (N, C) ("none"). The default is the paper's configuration (preset "paper") with
    a mean reduction; the official code sums (preset "official-code").

    Example:
        >>> criterion = RobustAsymmetricLoss(ignore_value=float("nan"))
        >>> loss = criterion(torch.randn(8, 26), torch.randint(0, 2, (8, 26)).float())
    """

    task = "multilabel"

    def __init__(
        self,
        gamma_pos: float = 0.0,
        gamma_neg: float = 4.0,
        tau: float = 0.05,
        lam: float = 1.5,
        eps_pos: Sequence[float] = (-1.0, 1.25),
        eps_neg: Sequence[float] = (),
        alpha: Sequence[float] | None = None,
        beta: Sequence[float] | None = None,
        hill: bool = True,
        detach_focal: bool = False,
        reduction: str = "mean",
        class_weights: ClassVector = None,
        ignore_value: float | None = None,
        impl: str = "fused",
        weight_form: str = "paper",
    ) -> None:
        super().__init__(
            gamma_pos=gamma_pos, gamma_neg=gamma_neg, tau=tau, lam=lam, eps_pos=eps_pos,
            eps_neg=eps_neg, alpha=alpha, beta=beta, hill=hill, detach_focal=detach_focal,
            reduction=reduction, class_weights=class_weights, impl=impl, weight_form=weight_form,
        )
        self.ignore_value = ignore_value

    def forward(self, logits: Tensor, targets: Tensor, mask: Tensor | None = None) -> Tensor:
        """Loss of ``logits`` (N, C) against ``targets`` (N, C); ``mask`` (N, C) optional."""
        return _multilabel(
            logits, targets, self.params, reduction=self.reduction,
            class_weights=self.class_weights, ignore_value=self.ignore_value, mask=mask,
            impl=self.impl,
        )


class RobustAsymmetricLossSingleLabel(_RALBase):
    """Single-label RAL (softmax) as an ``nn.Module``; see :func:`robust_asymmetric_loss_single_label`.

    ``forward(logits (N, C), targets (N,) class indices or (N, C) one-hot)`` returns a scalar
    ("mean", "sum") or (N,) ("none").
    """

    task = "single"

    def __init__(
        self,
        gamma_pos: float = 0.0,
        gamma_neg: float = 4.0,
        tau: float = 0.05,
        lam: float = 1.5,
        eps_pos: Sequence[float] = (-1.0, 1.25),
        eps_neg: Sequence[float] = (),
        alpha: Sequence[float] | None = None,
        beta: Sequence[float] | None = None,
        hill: bool = True,
        detach_focal: bool = False,
        label_smoothing: float = 0.0,
        reduction: str = "mean",
        class_weights: ClassVector = None,
        ignore_index: int = -100,
        impl: str = "fused",
        weight_form: str = "paper",
    ) -> None:
        super().__init__(
            gamma_pos=gamma_pos, gamma_neg=gamma_neg, tau=tau, lam=lam, eps_pos=eps_pos,
            eps_neg=eps_neg, alpha=alpha, beta=beta, hill=hill, detach_focal=detach_focal,
            reduction=reduction, class_weights=class_weights, impl=impl, weight_form=weight_form,
        )
        self.label_smoothing = check_in_range("label_smoothing", label_smoothing, 0.0, 1.0)
        self.ignore_index = ignore_index

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        """Loss of ``logits`` (N, C) against class indices (N,) or one-hot rows (N, C)."""
        return _single_label(
            logits, targets, self.params, label_smoothing=self.label_smoothing,
            ignore_index=self.ignore_index, reduction=self.reduction,
            class_weights=self.class_weights, impl=self.impl,
        )
