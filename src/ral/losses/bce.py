"""Binary cross-entropy with logits, the baseline every multi-label loss is compared with."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ._common import ClassVector, check_class_vector, check_nonnegative, multilabel_loss
from ._module import MultiLabelLoss

#: ``pos_weight``: one number for every class, or one per class.
PosWeight = float | ClassVector


def _pos_weight(pos_weight: PosWeight, x: Tensor) -> Tensor | float:
    """``pos_weight`` as a float, or as a (C,) vector in the dtype and on the device of ``x``."""
    if pos_weight is None:
        return 1.0
    if isinstance(pos_weight, (int, float)) or (isinstance(pos_weight, Tensor) and pos_weight.ndim == 0):
        return check_nonnegative("pos_weight", float(pos_weight))
    return check_class_vector("pos_weight", pos_weight, x.shape[1], dtype=x.dtype, device=x.device)


def binary_cross_entropy(
    logits: Tensor, targets: Tensor, *, pos_weight: PosWeight = None, mask: Tensor | None = None,
    reduction: str = "mean", class_weights: ClassVector = None, ignore_value: float | None = None,
) -> Tensor:
    """Binary cross-entropy with logits, per label (as ``torch.nn.BCEWithLogitsLoss``).

    ``loss = -(pos_weight * y * log p + (1 - y) * log(1 - p))``, p = sigmoid(x), computed as
    ``pos_weight * y * softplus(-x) + (1 - y) * softplus(x)`` in float32.

    Args:
        logits: (N, C) raw scores, any float dtype.
        targets: (N, C) in [0, 1] (soft allowed); ``ignore_value`` entries are skipped.
        pos_weight: weight of the positive term, a number or a (C,) vector (e.g. n_neg / n_pos).
        mask: optional (N, C), nonzero where the element counts.
        reduction: "mean" over valid elements | "sum" | "none" ((N, C), ignored ones 0).
        class_weights: optional (C,) factors multiplying each class's loss.
        ignore_value: target value to skip, e.g. -1 or ``float("nan")``.

    Returns:
        Scalar loss (or (N, C) for ``reduction="none"``), float32 (float64 for float64 logits).

    Raises:
        ValueError: bad shapes or targets, negative / wrong-length ``pos_weight`` or
            ``class_weights``, unknown ``reduction``.

    Example:
        >>> import torch
        >>> loss = binary_cross_entropy(torch.randn(4, 3), torch.ones(4, 3), pos_weight=2.0)
    """

    def elementwise(x: Tensor, y: Tensor) -> Tensor:
        weight = _pos_weight(pos_weight, x)
        return weight * y * F.softplus(-x) + (1 - y) * F.softplus(x)

    return multilabel_loss(
        elementwise, logits, targets, mask=mask, reduction=reduction,
        class_weights=class_weights, ignore_value=ignore_value,
    )


class BinaryCrossEntropyLoss(MultiLabelLoss):
    """Binary cross-entropy with logits; see :func:`binary_cross_entropy`.

    The standard multi-label baseline (one independent logistic regression per label).
    ``forward(logits (N, C), targets (N, C), mask=None)``.
    """

    def __init__(
        self, pos_weight: PosWeight = None, *,
        reduction: str = "mean", class_weights: ClassVector = None, ignore_value: float | None = None,
    ) -> None:
        super().__init__(
            binary_cross_entropy, pos_weight=pos_weight,
            reduction=reduction, class_weights=class_weights, ignore_value=ignore_value,
        )
