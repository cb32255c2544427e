"""Softmax cross-entropy with label smoothing, the softmax focal loss and Poly-1
cross-entropy (single-label)."""

from __future__ import annotations

import math

from torch import Tensor

from ._base import SingleLabelLoss, functional
from ._common import check_in_range, check_nonnegative
from ._space import FloatRange, tunable
from ._terms import positive_part, softmax_focal_terms, softmax_probabilities

#: label smoothing (an option of every single-label loss) is searched for the cross-entropy losses
_SMOOTHING = FloatRange(low=0.0, high=0.2)


class CrossEntropyLoss(SingleLabelLoss):
    """Softmax cross-entropy ``-sum_c q_c log p_c`` with optional label smoothing.

    Equals ``torch.nn.functional.cross_entropy`` (without ``weight``): the single-label
    baseline. Label smoothing: C. Szegedy et al., "Rethinking the Inception Architecture for
    Computer Vision", CVPR 2016. q is the one-hot target, optionally smoothed
    (q = (1 - eps) onehot + eps / C); log p comes from log_softmax in float32.

    Args:
        label_smoothing: eps in [0, 1).
        reduction: "mean" over valid samples | "sum" | "none" ((N,), ignored ones 0).
        class_weights: optional (C,) factors; with one-hot targets sample i is weighted by
            ``class_weights[target_i]``. "mean" divides by the number of samples (torch's
            ``CrossEntropyLoss(weight=...)`` divides by the sum of weights instead).
        ignore_index: class index marking a sample to skip.
        check_targets: check class indices / probability rows on every call.

    Shapes: ``forward(logits (N, C), targets (N,) int class indices or (N, C) one-hot rows)``.

    Raises:
        ValueError: ``label_smoothing`` outside [0, 1), bad common options; at call time bad
            targets or C < 2.

    Example:
        >>> import torch
        >>> loss = CrossEntropyLoss(label_smoothing=0.1)(torch.randn(4, 3), torch.tensor([0, 2, 1, 0]))
    """

    label_smoothing: float = tunable(0.0, _SMOOTHING, kw_only=True)

    def elementwise(self, x: Tensor, q: Tensor) -> Tensor:
        return softmax_focal_terms(x, q)


class FocalCrossEntropyLoss(CrossEntropyLoss):
    """Softmax focal loss: ``-sum_c q_c (1 - p_c)^gamma log p_c``, p = softmax(x).

    T.-Y. Lin, P. Goyal, R. Girshick, K. He, P. Dollar, "Focal Loss for Dense Object
    Detection", ICCV 2017 (softmax form). Use for imbalanced single-label data where easy
    majority-class samples dominate.

    Args:
        gamma: focusing exponent >= 0; 0 gives cross-entropy.
        label_smoothing, reduction, class_weights, ignore_index, check_targets: see
            :class:`CrossEntropyLoss`.

    Raises:
        ValueError: negative ``gamma``, and the errors of :class:`CrossEntropyLoss`.

    Example:
        >>> import torch
        >>> loss = FocalCrossEntropyLoss(gamma=2.0)(torch.randn(4, 3), torch.tensor([0, 2, 1, 0]))
    """

    gamma: float = tunable(2.0, FloatRange(low=0.0, high=5.0))

    def __post_init__(self) -> None:
        super().__post_init__()
        self.gamma = check_nonnegative("gamma", self.gamma)

    def elementwise(self, x: Tensor, q: Tensor) -> Tensor:
        return softmax_focal_terms(x, q, self.gamma)


class PolyCrossEntropyLoss(SingleLabelLoss):
    """Poly-1 cross-entropy: ``-sum_c q_c (log p_c - epsilon (1 - p_c))``, p = softmax(x).

    Z. Leng, M. Tan, C. Liu, E. D. Cubuk, X. Shi, S. Cheng, D. Anguelov, "PolyLoss: A
    Polynomial Expansion Perspective of Classification Loss Functions", ICLR 2022. Cross-entropy
    is -log p_t = sum_m (1 - p_t)^m / m; Poly-1 adds epsilon to the first coefficient::

        loss = CE + epsilon (1 - p_t)                       (one-hot targets)
        loss = CE_ls + epsilon sum_c q_c (1 - p_c)          (smoothed targets q, as the paper's
                                                             label-smoothing listing)

    i.e. APL's positive term with ``eps_pos = (epsilon,)`` on the softmax. epsilon >= -1 keeps
    the loss >= 0 (-log p >= 1 - p); epsilon > 0 pushes confident-but-not-certain predictions
    further. Use as a drop-in for cross-entropy with one more hyper-parameter to tune.

    Args:
        epsilon: the first polynomial coefficient's perturbation, >= -1 (default 1.0; the paper
            tunes it per task).
        label_smoothing, reduction, class_weights, ignore_index, check_targets: see
            :class:`CrossEntropyLoss`.

    Raises:
        ValueError: ``epsilon`` below -1 or not finite, bad common options; at call time bad
            targets or C < 2.

    Example:
        >>> import torch
        >>> logits, labels = torch.randn(4, 3), torch.tensor([0, 2, 1, 0])
        >>> loss = PolyCrossEntropyLoss(epsilon=1.0)(logits, labels)
    """

    label_smoothing: float = tunable(0.0, _SMOOTHING, kw_only=True)
    epsilon: float = tunable(1.0, FloatRange(low=-0.9, high=3.0))

    def __post_init__(self) -> None:
        super().__post_init__()
        self.epsilon = check_in_range("epsilon", self.epsilon, -1.0, math.inf)

    def elementwise(self, x: Tensor, q: Tensor) -> Tensor:
        return q * positive_part(softmax_probabilities(x), eps=(self.epsilon,))


poly_cross_entropy = functional(PolyCrossEntropyLoss, "poly_cross_entropy")


focal_cross_entropy = functional(FocalCrossEntropyLoss, "focal_cross_entropy")


cross_entropy = functional(CrossEntropyLoss, "cross_entropy")
