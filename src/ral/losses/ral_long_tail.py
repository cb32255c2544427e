"""Long-tail-aware RAL: class-balanced weights (Cui et al., CVPR 2019) for multi-label RAL and
logit adjustment (Menon et al., ICLR 2021) for single-label RAL.

Both are RAL's one formula (:func:`ral.losses.ral.ral_elementwise`) with training-count
information around it: a per-class weight (of the positive term or of both terms) or a shift
of the logits by the training prior. Both take ``class_counts`` (C,), the
TRAINING counts per class.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any, ClassVar

from torch import Tensor

from ._base import functional
from ._common import ClassVector, check_choice, check_in_range
from ._space import Choice, FloatRange, tunable
from ._terms import effective_number_weights
from .ral import RobustAsymmetricLoss, RobustAsymmetricLossSingleLabel

#: Where the class-balanced weight of ``ral_cb`` applies: the positive term, or the whole loss.
BALANCES = ("positive", "both")


class RobustAsymmetricLossClassBalanced(RobustAsymmetricLoss):
    """Class-balanced RAL (``ral_cb``): RAL with per-class weights from the effective number of samples.

    Y. Cui, M. Jia, T.-Y. Lin, Y. Song, S. Belongie, "Class-Balanced Loss Based on Effective
    Number of Samples", CVPR 2019, applied to RAL (Park et al., arXiv 2308.05542). Class c with
    n_c positive training images gets::

        w_c = (1 - b) / (1 - b^n_c),   b = cb_beta,   normalised to mean 1 (sum_c w_c = C)
        balance="both":      loss = w_c * (y L+ + (1 - y) L-)          (as the ``cb`` loss)
        balance="positive":  loss = y w_c L+ + (1 - y) L-               (negatives unweighted)

    with RAL's L+ / L- (all of :class:`RobustAsymmetricLoss`'s options apply, ``prior_tau``
    included). Counts below 1 count as 1; ``class_weights`` multiply on top of w_c. The
    default ``balance="positive"`` was chosen by measurement: on the simulated multi-label set
    it beat ``"both"`` on mAP, head and medium mAP on 5 of 5 paired seeds (docs/results.md,
    ``ral bench losses --simulate``). Use for long-tailed multi-label data where the rare
    labels need a larger share of the gradient.

    Args:
        class_counts: (C,) positive training counts per class, >= 0.
        cb_beta: Cui et al.'s beta, in [0, 1); 0 gives no re-weighting (plain RAL), -> 1
            approaches inverse frequency (paper 0.9999). (``beta`` stays RAL's series
            coefficients.)
        balance: "positive" (only the positive term; the default) or "both" (the weight
            multiplies the whole loss of class c, as the ``cb`` loss does).
        Other arguments: as :class:`RobustAsymmetricLoss`.

    Raises:
        ValueError: ``cb_beta`` outside [0, 1), unknown ``balance``, ``class_counts`` missing, of
            the wrong length or negative, and every error of :class:`RobustAsymmetricLoss`.

    Example:
        >>> import torch
        >>> loss = RobustAsymmetricLossClassBalanced([900, 90, 9])(torch.randn(4, 3), torch.ones(4, 3))
    """

    statistics: ClassVar[tuple[str, ...]] = ("class_counts",)
    optional_statistics: ClassVar[tuple[str, ...]] = ("num_samples",)

    class_counts: ClassVector
    cb_beta: float = tunable(0.9999, Choice(values=(0.9, 0.99, 0.999, 0.9999)), kw_only=True)
    balance: str = field(default="positive", kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.cb_beta = check_in_range("cb_beta", self.cb_beta, 0.0, 1.0)
        self.balance = check_choice("balance", self.balance, BALANCES)

    def balance_weights(self) -> Tensor:
        """The class-balanced weights w_c (C,), float64, mean 1."""
        return effective_number_weights(self.class_counts.double(), self.cb_beta)

    def weights(self) -> Tensor | None:
        if self.balance == "both":
            return self.times_class_weights(self.balance_weights())
        return self.class_weights

    def positive_weights(self) -> Tensor | None:
        return self.balance_weights() if self.balance == "positive" else None

    def options(self) -> dict[str, Any]:
        return {**super().options(), "cb_beta": self.cb_beta, "balance": self.balance}


class RobustAsymmetricLossLogitAdjusted(RobustAsymmetricLossSingleLabel):
    """Logit-adjusted single-label RAL (``ral_la``): RAL on softmax(x + tau log prior).

    A. K. Menon, S. Jayasumana, A. S. Rawat, H. Jain, A. Veit, S. Kumar, "Long-Tail Learning via
    Logit Adjustment", ICLR 2021, applied to single-label RAL (Park et al., arXiv 2308.05542).
    With prior pi_c = n_c / sum_j n_j (counts below 1 count as 1)::

        p = softmax(x + prior_tau * log pi)
        loss_i = sum_c [q_ic L+(p_ic) + (1 - q_ic) L-(p_ic)]        (RAL's L+ / L-)

    The adjustment lives in the loss only: predict with the raw logits x (their softmax
    favours the rare classes by exactly the prior the training logits were shifted by). This
    is :class:`RobustAsymmetricLossSingleLabel` with ``prior_tau=1`` and the counts required.
    Use for long-tailed single-label data when balanced (per-class) accuracy matters.

    Args:
        class_counts: (C,) training samples per class, >= 0.
        prior_tau: adjustment strength tau >= 0 (paper 1.0; 0 gives plain single-label RAL).
        Other arguments: as :class:`RobustAsymmetricLossSingleLabel`.

    Raises:
        ValueError: negative ``prior_tau``, ``class_counts`` missing, of the wrong length or
            negative, and every error of :class:`RobustAsymmetricLossSingleLabel`.

    Example:
        >>> import torch
        >>> loss = RobustAsymmetricLossLogitAdjusted([900, 90, 9])(torch.randn(2, 3), torch.tensor([0, 2]))
    """

    statistics: ClassVar[tuple[str, ...]] = ("class_counts",)
    optional_statistics: ClassVar[tuple[str, ...]] = ()

    class_counts: ClassVector
    prior_tau: float = tunable(1.0, FloatRange(low=0.0, high=2.0), kw_only=True)


robust_asymmetric_loss_class_balanced = functional(
    RobustAsymmetricLossClassBalanced, "robust_asymmetric_loss_class_balanced"
)


robust_asymmetric_loss_logit_adjusted = functional(
    RobustAsymmetricLossLogitAdjusted, "robust_asymmetric_loss_logit_adjusted"
)
