"""Sigmoid focal loss (Lin et al., ICCV 2017) for multi-label targets."""

from __future__ import annotations

from torch import Tensor

from ._common import ClassVector, check_in_range, check_nonnegative, multilabel_loss
from ._module import MultiLabelLoss
from ._terms import negative_part, positive_part


def sigmoid_focal_loss(
    logits: Tensor, targets: Tensor, *, alpha: float | None = 0.25, gamma: float = 2.0,
    mask: Tensor | None = None,
    reduction: str = "mean", class_weights: ClassVector = None, ignore_value: float | None = None,
) -> Tensor:
    """Sigmoid focal loss: cross-entropy scaled down on well-classified labels.

    T.-Y. Lin, P. Goyal, R. Girshick, K. He, P. Dollar, "Focal Loss for Dense Object
    Detection", ICCV 2017. Per label, with p = sigmoid(x)::

        loss = -alpha * y * (1 - p)^gamma * log(p) - (1 - alpha) * (1 - y) * p^gamma * log(1 - p)

    The focal weight is applied to each term separately (as in ASL / RAL); for hard 0/1
    targets this equals torchvision's ``sigmoid_focal_loss`` (which mixes p_t for soft ones).

    Args:
        logits: (N, C) raw scores, any float dtype.
        targets: (N, C) in [0, 1]; ``ignore_value`` entries are skipped.
        alpha: weight of positives in [0, 1] (negatives get 1 - alpha); ``None`` weights both 1.
        gamma: focusing exponent >= 0 (0 gives BCE, times alpha).
        mask, reduction, class_weights, ignore_value: as in :func:`binary_cross_entropy`.

    Returns:
        Scalar loss, or (N, C) for ``reduction="none"``.

    Raises:
        ValueError: negative ``gamma``, ``alpha`` outside [0, 1], bad inputs or ``reduction``.

    Example:
        >>> import torch
        >>> loss = sigmoid_focal_loss(torch.randn(4, 3), torch.ones(4, 3), gamma=2.0)
    """
    gamma = check_nonnegative("gamma", gamma)
    weight_pos = 1.0 if alpha is None else check_in_range("alpha", alpha, 0.0, 1.0, high_inclusive=True)
    weight_neg = 1.0 if alpha is None else 1.0 - weight_pos

    def elementwise(x: Tensor, y: Tensor) -> Tensor:
        return weight_pos * y * positive_part(x, gamma) + weight_neg * (1 - y) * negative_part(x, gamma)

    return multilabel_loss(
        elementwise, logits, targets, mask=mask, reduction=reduction,
        class_weights=class_weights, ignore_value=ignore_value,
    )


class SigmoidFocalLoss(MultiLabelLoss):
    """Sigmoid focal loss (Lin et al., ICCV 2017); see :func:`sigmoid_focal_loss`.

    Use when easy negatives dominate the gradient (many labels, few positives).
    """

    def __init__(
        self, alpha: float | None = 0.25, gamma: float = 2.0, *,
        reduction: str = "mean", class_weights: ClassVector = None, ignore_value: float | None = None,
    ) -> None:
        super().__init__(
            sigmoid_focal_loss, alpha=alpha, gamma=gamma,
            reduction=reduction, class_weights=class_weights, ignore_value=ignore_value,
        )
