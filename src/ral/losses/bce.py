"""Binary cross-entropy with logits, the baseline every multi-label loss is compared with."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ._base import MultiLabelLoss, functional
from ._common import ClassVector, check_nonnegative


class BinaryCrossEntropyLoss(MultiLabelLoss):
    """Binary cross-entropy with logits, per label (as ``torch.nn.BCEWithLogitsLoss``).

    ``loss = -(pos_weight * y * log p + (1 - y) * log(1 - p))``, p = sigmoid(x), computed as
    ``pos_weight * y * softplus(-x) + (1 - y) * softplus(x)`` in float32. The standard
    multi-label baseline (one independent logistic regression per label).

    Args:
        pos_weight: weight of the positive term, a number or a (C,) vector (e.g. n_neg / n_pos).
        reduction: "mean" over valid elements | "sum" | "none" ((N, C), ignored ones 0).
        class_weights: optional (C,) factors multiplying each class's loss.
        ignore_value: target value to skip, e.g. -1 or ``float("nan")``.
        check_targets: check that targets are in [0, 1] on every call.

    Shapes: ``forward(logits (N, C), targets (N, C) in [0, 1], mask=None (N, C))``.

    Raises:
        ValueError: negative / wrong-length ``pos_weight`` or ``class_weights``, unknown
            ``reduction``; at call time bad shapes or targets.

    Example:
        >>> import torch
        >>> loss = BinaryCrossEntropyLoss(pos_weight=2.0)(torch.randn(4, 3), torch.ones(4, 3))
    """

    pos_weight: float | ClassVector = None

    def __post_init__(self) -> None:
        super().__post_init__()
        weight = self.pos_weight
        if weight is None or isinstance(weight, (int, float)) or (isinstance(weight, Tensor) and weight.ndim == 0):
            self.pos_weight = 1.0 if weight is None else check_nonnegative("pos_weight", float(weight))
        else:
            self.register_class_vector("pos_weight", weight)

    def elementwise(self, x: Tensor, y: Tensor) -> Tensor:
        weight = self.pos_weight
        if isinstance(weight, Tensor):
            weight = weight.to(x.dtype)
        return weight * y * F.softplus(-x) + (1 - y) * F.softplus(x)


binary_cross_entropy = functional(BinaryCrossEntropyLoss, "binary_cross_entropy")
