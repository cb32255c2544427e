"""Prior-corrected softmax losses: logit-adjusted cross-entropy (Menon et al., ICLR 2021)
and balanced softmax (Ren et al., NeurIPS 2020). Both take ``class_counts`` (C,), the
number of TRAINING samples per class."""

from __future__ import annotations

from torch import Tensor

from ._common import ClassVector, check_nonnegative, single_label_loss
from ._module import SingleLabelLoss
from ._terms import log_prior, per_class_counts, softmax_focal_terms


def logit_adjusted_cross_entropy(
    logits: Tensor, targets: Tensor, class_counts: ClassVector, *, tau: float = 1.0,
    label_smoothing: float = 0.0,
    reduction: str = "mean", class_weights: ClassVector = None, ignore_index: int = -100,
) -> Tensor:
    """Logit-adjusted cross-entropy: cross-entropy of ``x + tau * log(prior)``.

    A. K. Menon, S. Jayasumana, A. S. Rawat, H. Jain, A. Veit, S. Kumar, "Long-Tail Learning
    via Logit Adjustment", ICLR 2021. prior_c = n_c / sum n (counts below 1 count as 1)::

        loss = -sum_c q_c log softmax(x + tau log prior)_c

    Predict with the raw logits ``x`` (the adjustment is only for training).

    Args:
        logits: (N, C) raw scores, any float dtype.
        targets: (N,) int class indices or (N, C) one-hot / probability rows.
        class_counts: (C,) training samples per class, >= 0.
        tau: adjustment strength >= 0 (paper 1.0).
        label_smoothing, reduction, class_weights, ignore_index: as in
            :func:`ral.losses.ce.focal_cross_entropy`.

    Returns:
        Scalar loss, or (N,) for ``reduction="none"``.

    Raises:
        ValueError: negative ``tau``, ``class_counts`` of the wrong length or negative, bad
            targets or ``reduction``.

    Example:
        >>> import torch
        >>> loss = logit_adjusted_cross_entropy(torch.randn(2, 3), torch.tensor([0, 2]), [900, 90, 9])
    """
    tau = check_nonnegative("tau", tau)

    def elementwise(x: Tensor, q: Tensor) -> Tensor:
        counts = per_class_counts(class_counts, x)
        return softmax_focal_terms(x + tau * log_prior(counts), q)

    return single_label_loss(
        elementwise, logits, targets, reduction=reduction, class_weights=class_weights,
        ignore_index=ignore_index, label_smoothing=label_smoothing,
    )


def balanced_softmax_loss(
    logits: Tensor, targets: Tensor, class_counts: ClassVector, *, label_smoothing: float = 0.0,
    reduction: str = "mean", class_weights: ClassVector = None, ignore_index: int = -100,
) -> Tensor:
    """Balanced softmax: cross-entropy of ``softmax`` re-weighted by the class counts.

    J. Ren, C. Yu, S. Sheng, R. Ma, H. Zhao, S. Yi, H. Li, "Balanced Meta-Softmax for
    Long-Tailed Visual Recognition", NeurIPS 2020::

        loss = -sum_c q_c log( n_c exp(x_c) / sum_j n_j exp(x_j) )

    which is :func:`logit_adjusted_cross_entropy` with tau = 1. Arguments as there.

    Example:
        >>> import torch
        >>> loss = balanced_softmax_loss(torch.randn(2, 3), torch.tensor([0, 2]), [900, 90, 9])
    """
    return logit_adjusted_cross_entropy(
        logits, targets, class_counts, tau=1.0, label_smoothing=label_smoothing,
        reduction=reduction, class_weights=class_weights, ignore_index=ignore_index,
    )


class LogitAdjustedLoss(SingleLabelLoss):
    """Logit-adjusted cross-entropy (Menon et al., ICLR 2021).

    See :func:`logit_adjusted_cross_entropy`. Use for long-tailed single-label data when
    balanced (per-class) accuracy matters.
    """

    def __init__(
        self, class_counts: ClassVector, tau: float = 1.0, label_smoothing: float = 0.0, *,
        reduction: str = "mean", class_weights: ClassVector = None, ignore_index: int = -100,
    ) -> None:
        super().__init__(
            logit_adjusted_cross_entropy, class_counts=class_counts, tau=tau,
            label_smoothing=label_smoothing,
            reduction=reduction, class_weights=class_weights, ignore_index=ignore_index,
        )


class BalancedSoftmaxLoss(SingleLabelLoss):
    """Balanced softmax (Ren et al., NeurIPS 2020); see :func:`balanced_softmax_loss`.

    Use for long-tailed single-label data; no hyper-parameter beyond the class counts.
    """

    def __init__(
        self, class_counts: ClassVector, label_smoothing: float = 0.0, *,
        reduction: str = "mean", class_weights: ClassVector = None, ignore_index: int = -100,
    ) -> None:
        super().__init__(
            balanced_softmax_loss, class_counts=class_counts, label_smoothing=label_smoothing,
            reduction=reduction, class_weights=class_weights, ignore_index=ignore_index,
        )
