"""Sigmoid focal loss (Lin et al., ICCV 2017) for multi-label targets."""

from __future__ import annotations

from torch import Tensor

from ._base import MultiLabelLoss, functional
from ._common import check_in_range, check_nonnegative
from ._space import FloatRange, tunable
from ._terms import negative_part, positive_part, sigmoid_probabilities


class SigmoidFocalLoss(MultiLabelLoss):
    """Sigmoid focal loss: cross-entropy scaled down on well-classified labels.

    T.-Y. Lin, P. Goyal, R. Girshick, K. He, P. Dollar, "Focal Loss for Dense Object
    Detection", ICCV 2017. Per label, with p = sigmoid(x)::

        loss = -alpha * y * (1 - p)^gamma * log(p) - (1 - alpha) * (1 - y) * p^gamma * log(1 - p)

    The focal weight is applied to each term separately (as in ASL / RAL); for hard 0/1
    targets this equals torchvision's ``sigmoid_focal_loss`` (which mixes p_t for soft ones).
    Use when easy negatives dominate the gradient (many labels, few positives).

    Args:
        alpha: weight of positives in [0, 1] (negatives get 1 - alpha); ``None`` weights both 1.
        gamma: focusing exponent >= 0 (0 gives BCE, times alpha).
        reduction, class_weights, ignore_value, check_targets: see :class:`BinaryCrossEntropyLoss`.

    Raises:
        ValueError: negative ``gamma``, ``alpha`` outside [0, 1], bad common options.

    Example:
        >>> import torch
        >>> loss = SigmoidFocalLoss(gamma=2.0)(torch.randn(4, 3), torch.ones(4, 3))
    """

    alpha: float | None = tunable(0.25, FloatRange(low=0.1, high=0.9))
    gamma: float = tunable(2.0, FloatRange(low=0.0, high=5.0))

    def __post_init__(self) -> None:
        super().__post_init__()
        self.gamma = check_nonnegative("gamma", self.gamma)
        self.alpha = None if self.alpha is None else check_in_range("alpha", self.alpha, 0.0, 1.0, high_inclusive=True)

    def elementwise(self, x: Tensor, y: Tensor) -> Tensor:
        weight_pos = 1.0 if self.alpha is None else self.alpha
        weight_neg = 1.0 if self.alpha is None else 1.0 - self.alpha
        t = sigmoid_probabilities(x)
        return weight_pos * y * positive_part(t, self.gamma) + weight_neg * (1 - y) * negative_part(t, self.gamma)


sigmoid_focal_loss = functional(SigmoidFocalLoss, "sigmoid_focal_loss")
