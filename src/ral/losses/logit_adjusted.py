"""Prior-corrected softmax losses: logit-adjusted cross-entropy (Menon et al., ICLR 2021)
and balanced softmax (Ren et al., NeurIPS 2020). Both take ``class_counts`` (C,), the
number of TRAINING samples per class."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from ._base import SingleLabelLoss, functional
from ._common import ClassVector, check_nonnegative
from ._space import FloatRange, tunable
from ._terms import log_prior, softmax_focal_terms


class BalancedSoftmaxLoss(SingleLabelLoss):
    """Balanced softmax: cross-entropy of ``softmax`` re-weighted by the class counts.

    J. Ren, C. Yu, S. Sheng, R. Ma, H. Zhao, S. Yi, H. Li, "Balanced Meta-Softmax for
    Long-Tailed Visual Recognition", NeurIPS 2020::

        loss = -sum_c q_c log( n_c exp(x_c) / sum_j n_j exp(x_j) )

    which is :class:`LogitAdjustedLoss` with tau = 1 (no hyper-parameter beyond the counts).

    Args:
        class_counts: (C,) training samples per class, >= 0.
        label_smoothing, reduction, class_weights, ignore_index, check_targets: see
            :class:`CrossEntropyLoss`.

    Example:
        >>> import torch
        >>> loss = BalancedSoftmaxLoss([900, 90, 9])(torch.randn(2, 3), torch.tensor([0, 2]))
    """

    statistics: ClassVar[tuple[str, ...]] = ("class_counts",)

    class_counts: ClassVector

    def elementwise(self, x: Tensor, q: Tensor) -> Tensor:
        return softmax_focal_terms(x + self.strength() * log_prior(self.class_counts.to(x.dtype)), q)

    def strength(self) -> float:
        """tau, the strength of the adjustment by the log prior (1 for the balanced softmax)."""
        return 1.0


class LogitAdjustedLoss(BalancedSoftmaxLoss):
    """Logit-adjusted cross-entropy: cross-entropy of ``x + tau * log(prior)``.

    A. K. Menon, S. Jayasumana, A. S. Rawat, H. Jain, A. Veit, S. Kumar, "Long-Tail Learning
    via Logit Adjustment", ICLR 2021. prior_c = n_c / sum n (counts below 1 count as 1)::

        loss = -sum_c q_c log softmax(x + tau log prior)_c

    Predict with the raw logits ``x`` (the adjustment is only for training). Use for
    long-tailed single-label data when balanced (per-class) accuracy matters.

    Args:
        class_counts: (C,) training samples per class, >= 0.
        tau: adjustment strength >= 0 (paper 1.0).
        label_smoothing, reduction, class_weights, ignore_index, check_targets: see
            :class:`CrossEntropyLoss`.

    Raises:
        ValueError: negative ``tau``, ``class_counts`` missing, of the wrong length or negative.

    Example:
        >>> import torch
        >>> loss = LogitAdjustedLoss([900, 90, 9])(torch.randn(2, 3), torch.tensor([0, 2]))
    """

    tau: float = tunable(1.0, FloatRange(low=0.0, high=2.0))

    def __post_init__(self) -> None:
        super().__post_init__()
        self.tau = check_nonnegative("tau", self.tau)

    def strength(self) -> float:
        return self.tau


logit_adjusted_cross_entropy = functional(LogitAdjustedLoss, "logit_adjusted_cross_entropy")


balanced_softmax_loss = functional(BalancedSoftmaxLoss, "balanced_softmax_loss")
