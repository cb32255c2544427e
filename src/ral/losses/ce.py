"""Softmax cross-entropy with label smoothing, and the softmax focal loss (single-label)."""

from __future__ import annotations

from torch import Tensor

from ._common import ClassVector, check_nonnegative, single_label_loss
from ._module import SingleLabelLoss
from ._terms import softmax_focal_terms


def focal_cross_entropy(
    logits: Tensor, targets: Tensor, *, gamma: float = 2.0, label_smoothing: float = 0.0,
    reduction: str = "mean", class_weights: ClassVector = None, ignore_index: int = -100,
) -> Tensor:
    """Softmax focal loss: ``-sum_c q_c (1 - p_c)^gamma log p_c``, p = softmax(x).

    T.-Y. Lin, P. Goyal, R. Girshick, K. He, P. Dollar, "Focal Loss for Dense Object
    Detection", ICCV 2017 (softmax form). q is the one-hot target, optionally smoothed
    (q = (1 - eps) onehot + eps / C). log p comes from log_softmax in float32.

    Args:
        logits: (N, C) raw scores, any float dtype.
        targets: (N,) int class indices (``ignore_index`` skipped) or (N, C) one-hot /
            probability rows.
        gamma: focusing exponent >= 0; 0 gives cross-entropy.
        label_smoothing: eps in [0, 1).
        reduction: "mean" over valid samples | "sum" | "none" ((N,), ignored ones 0).
        class_weights: optional (C,) factors; with one-hot targets sample i is weighted by
            ``class_weights[target_i]``. "mean" divides by the number of samples (torch's
            ``CrossEntropyLoss(weight=...)`` divides by the sum of weights instead).
        ignore_index: class index marking a sample to skip.

    Returns:
        Scalar loss, or (N,) for ``reduction="none"``.

    Raises:
        ValueError: negative ``gamma``, ``label_smoothing`` outside [0, 1), bad targets,
            wrong-length or negative ``class_weights``, unknown ``reduction``.

    Example:
        >>> import torch
        >>> loss = focal_cross_entropy(torch.randn(4, 3), torch.tensor([0, 2, 1, 0]), gamma=2.0)
    """
    gamma = check_nonnegative("gamma", gamma)
    return single_label_loss(
        lambda x, q: softmax_focal_terms(x, q, gamma), logits, targets, reduction=reduction,
        class_weights=class_weights, ignore_index=ignore_index, label_smoothing=label_smoothing,
    )


def cross_entropy(
    logits: Tensor, targets: Tensor, *, label_smoothing: float = 0.0,
    reduction: str = "mean", class_weights: ClassVector = None, ignore_index: int = -100,
) -> Tensor:
    """Softmax cross-entropy ``-sum_c q_c log p_c`` with optional label smoothing.

    Equals ``torch.nn.functional.cross_entropy`` (without ``weight``); see
    :func:`focal_cross_entropy` (gamma = 0) for the arguments. Label smoothing:
    C. Szegedy et al., "Rethinking the Inception Architecture for Computer Vision", CVPR 2016.

    Example:
        >>> import torch
        >>> loss = cross_entropy(torch.randn(4, 3), torch.tensor([0, 2, 1, 0]), label_smoothing=0.1)
    """
    return focal_cross_entropy(
        logits, targets, gamma=0.0, label_smoothing=label_smoothing, reduction=reduction,
        class_weights=class_weights, ignore_index=ignore_index,
    )


class CrossEntropyLoss(SingleLabelLoss):
    """Softmax cross-entropy with label smoothing; see :func:`cross_entropy`.

    The single-label baseline. ``forward(logits (N, C), targets (N,) or (N, C))``.
    """

    def __init__(
        self, label_smoothing: float = 0.0, *,
        reduction: str = "mean", class_weights: ClassVector = None, ignore_index: int = -100,
    ) -> None:
        super().__init__(
            cross_entropy, label_smoothing=label_smoothing,
            reduction=reduction, class_weights=class_weights, ignore_index=ignore_index,
        )


class FocalCrossEntropyLoss(SingleLabelLoss):
    """Softmax focal loss (Lin et al., ICCV 2017); see :func:`focal_cross_entropy`.

    Use for imbalanced single-label data where easy majority-class samples dominate.
    """

    def __init__(
        self, gamma: float = 2.0, label_smoothing: float = 0.0, *,
        reduction: str = "mean", class_weights: ClassVector = None, ignore_index: int = -100,
    ) -> None:
        super().__init__(
            focal_cross_entropy, gamma=gamma, label_smoothing=label_smoothing,
            reduction=reduction, class_weights=class_weights, ignore_index=ignore_index,
        )
