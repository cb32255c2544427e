"""Softmax cross-entropy with label smoothing, and the softmax focal loss (single-label)."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ._base import SingleLabelLoss
from ._common import check_nonnegative
from ._terms import softmax_focal_terms


class FocalCrossEntropyLoss(SingleLabelLoss):
    """Softmax focal loss: ``-sum_c q_c (1 - p_c)^gamma log p_c``, p = softmax(x).

    T.-Y. Lin, P. Goyal, R. Girshick, K. He, P. Dollar, "Focal Loss for Dense Object
    Detection", ICCV 2017 (softmax form). q is the one-hot target, optionally smoothed
    (q = (1 - eps) onehot + eps / C). log p comes from log_softmax in float32. Use for
    imbalanced single-label data where easy majority-class samples dominate.

    Args:
        gamma: focusing exponent >= 0; 0 gives cross-entropy.
        label_smoothing: eps in [0, 1).
        reduction: "mean" over valid samples | "sum" | "none" ((N,), ignored ones 0).
        class_weights: optional (C,) factors; with one-hot targets sample i is weighted by
            ``class_weights[target_i]``. "mean" divides by the number of samples (torch's
            ``CrossEntropyLoss(weight=...)`` divides by the sum of weights instead).
        ignore_index: class index marking a sample to skip.
        check_targets: check class indices / probability rows on every call.

    Shapes: ``forward(logits (N, C), targets (N,) int class indices or (N, C) one-hot rows)``.

    Raises:
        ValueError: negative ``gamma``, ``label_smoothing`` outside [0, 1), bad common options;
            at call time bad targets or C < 2.

    Example:
        >>> import torch
        >>> loss = FocalCrossEntropyLoss(gamma=2.0)(torch.randn(4, 3), torch.tensor([0, 2, 1, 0]))
    """

    def __init__(self, gamma: float = 2.0, **common: Any) -> None:
        super().__init__(**common)
        self.gamma = check_nonnegative("gamma", gamma)

    def elementwise(self, x: Tensor, q: Tensor) -> Tensor:
        return softmax_focal_terms(x, q, self.gamma)


class CrossEntropyLoss(FocalCrossEntropyLoss):
    """Softmax cross-entropy ``-sum_c q_c log p_c`` with optional label smoothing.

    Equals ``torch.nn.functional.cross_entropy`` (without ``weight``): the single-label
    baseline. Label smoothing: C. Szegedy et al., "Rethinking the Inception Architecture for
    Computer Vision", CVPR 2016. Options as :class:`FocalCrossEntropyLoss` without ``gamma``.

    Example:
        >>> import torch
        >>> loss = CrossEntropyLoss(label_smoothing=0.1)(torch.randn(4, 3), torch.tensor([0, 2, 1, 0]))
    """

    def __init__(self, **common: Any) -> None:
        super().__init__(gamma=0.0, **common)


def focal_cross_entropy(logits: Tensor, targets: Tensor, **options) -> Tensor:
    """Functional form of :class:`FocalCrossEntropyLoss` (same keyword options).

    Example:
        >>> import torch
        >>> loss = focal_cross_entropy(torch.randn(4, 3), torch.tensor([0, 2, 1, 0]), gamma=2.0)
    """
    return FocalCrossEntropyLoss(**options)(logits, targets)


def cross_entropy(logits: Tensor, targets: Tensor, **options) -> Tensor:
    """Functional form of :class:`CrossEntropyLoss` (same keyword options).

    Example:
        >>> import torch
        >>> loss = cross_entropy(torch.randn(4, 3), torch.tensor([0, 2, 1, 0]), label_smoothing=0.1)
    """
    return CrossEntropyLoss(**options)(logits, targets)
