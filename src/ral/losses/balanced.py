"""Frequency-aware multi-label losses: class-balanced re-weighting (Cui et al., CVPR 2019)
and the distribution-balanced loss (Wu et al., ECCV 2020).

Both take ``class_counts``: the number of positive TRAINING images per class, shape (C,).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._common import ClassVector, check_in_range, check_nonnegative, multilabel_loss
from ._module import MultiLabelLoss
from ._terms import effective_number_weights, negative_part, per_class_counts, positive_part

#: Base losses that class-balanced re-weighting applies to.
CB_BASES = ("bce", "focal")


def class_balanced_loss(
    logits: Tensor, targets: Tensor, class_counts: ClassVector, *, beta: float = 0.9999,
    base: str = "focal", gamma: float = 2.0, mask: Tensor | None = None,
    reduction: str = "mean", class_weights: ClassVector = None, ignore_value: float | None = None,
) -> Tensor:
    """Class-balanced loss: BCE or sigmoid focal loss weighted by the inverse effective number.

    Y. Cui, M. Jia, T.-Y. Lin, Y. Song, S. Belongie, "Class-Balanced Loss Based on Effective
    Number of Samples", CVPR 2019. Class c with n_c training positives gets::

        w_c = (1 - beta) / (1 - beta^n_c),   normalised so that sum_c w_c = C
        loss = w_c * (y (1 - p)^g (-log p) + (1 - y) p^g (-log(1 - p))),  g = gamma or 0 (bce)

    Counts below 1 count as 1. ``class_weights`` multiply on top of w_c.

    Args:
        logits: (N, C) raw scores, any float dtype.
        targets: (N, C) in [0, 1]; ``ignore_value`` entries are skipped.
        class_counts: (C,) positive training counts per class, >= 0.
        beta: in [0, 1); 0 gives no re-weighting, -> 1 gives inverse frequency (paper 0.9999).
        base: "focal" (sigmoid focal, no alpha, as in the paper) or "bce".
        gamma: focusing exponent >= 0, used when ``base="focal"``.
        mask, reduction, class_weights, ignore_value: as in :func:`binary_cross_entropy`.

    Returns:
        Scalar loss, or (N, C) for ``reduction="none"``.

    Raises:
        ValueError: ``beta`` outside [0, 1), unknown ``base``, negative ``gamma``,
            ``class_counts`` of the wrong length or negative, bad inputs or ``reduction``.

    Example:
        >>> import torch
        >>> loss = class_balanced_loss(torch.randn(4, 3), torch.ones(4, 3), [900, 90, 9])
    """
    beta = check_in_range("beta", beta, 0.0, 1.0)
    if base not in CB_BASES:
        raise ValueError(f"base must be one of {CB_BASES}, got {base!r}")
    focus = check_nonnegative("gamma", gamma) if base == "focal" else 0.0

    def elementwise(x: Tensor, y: Tensor) -> Tensor:
        counts = per_class_counts(class_counts, x)
        weights = effective_number_weights(counts, beta)
        return weights * (y * positive_part(x, focus) + (1 - y) * negative_part(x, focus))

    return multilabel_loss(
        elementwise, logits, targets, mask=mask, reduction=reduction,
        class_weights=class_weights, ignore_value=ignore_value,
    )


class ClassBalancedLoss(MultiLabelLoss):
    """Class-balanced BCE / focal loss (Cui et al., CVPR 2019); see :func:`class_balanced_loss`.

    Use for long-tailed labels when the rare classes need a larger share of the gradient.
    """

    def __init__(
        self, class_counts: ClassVector, beta: float = 0.9999, base: str = "focal", gamma: float = 2.0, *,
        reduction: str = "mean", class_weights: ClassVector = None, ignore_value: float | None = None,
    ) -> None:
        super().__init__(
            class_balanced_loss, class_counts=class_counts, beta=beta, base=base, gamma=gamma,
            reduction=reduction, class_weights=class_weights, ignore_value=ignore_value,
        )


def _rebalance_weights(y: Tensor, counts: Tensor, alpha: float, beta: float, mu: float) -> Tensor:
    """Re-balanced weights r_hat (N, C) of the distribution-balanced loss (no gradient).

    r_ik = (1 / n_i) / sum_j y_kj / n_j is the ratio of the class-level to the instance-level
    sampling probability; r_hat = alpha + sigmoid(beta (r - mu)). Rows without positives get
    the limit alpha + 1.
    """
    inverse = 1.0 / counts.clamp_min(1.0)
    rate = (y * inverse).sum(dim=1, keepdim=True)
    has_positive = rate > 0
    ratio = inverse / torch.where(has_positive, rate, torch.ones_like(rate))
    smoothed = alpha + torch.sigmoid(beta * (ratio - mu))
    return torch.where(has_positive, smoothed, torch.full_like(smoothed, alpha + 1.0))


def distribution_balanced_loss(
    logits: Tensor, targets: Tensor, class_counts: ClassVector, num_samples: int, *,
    map_alpha: float = 0.1, map_beta: float = 10.0, map_mu: float = 0.2, init_bias: float = 0.05,
    neg_scale: float = 2.0, gamma: float = 0.0, mask: Tensor | None = None,
    reduction: str = "mean", class_weights: ClassVector = None, ignore_value: float | None = None,
) -> Tensor:
    """Distribution-balanced loss: re-balanced weighting + negative-tolerant regularisation.

    T. Wu, Q. Huang, Z. Liu, Y. Wang, D. Lin, "Distribution-Balanced Loss for Multi-Label
    Classification in Long-Tailed Datasets", ECCV 2020. With n_i the positives of class i
    among N = ``num_samples`` training images::

        r_hat_ki = map_alpha + sigmoid(map_beta * (r_ki - map_mu)),  r_ki = (1/n_i) / sum_j y_kj/n_j
        z' = z + nu_i,   nu_i = init_bias * log(n_i / (N - n_i))     (class-prior logit bias)
        loss = r_hat * (y (1 - q)^g softplus(-z') + (1 - y) / lam * s^g softplus(lam z'))
        with lam = neg_scale, q = sigmoid(z'), s = sigmoid(lam z')

    gamma = 0 is "DB" (R-BCE + NTR); gamma > 0 gives the focal variant ("DB-Focal", here
    without the official code's constant factor). The bias uses the bug-fixed official formula
    (no division by ``neg_scale``). For the bias, counts are clamped to [1, N - 1]; for
    r, counts below 1 count as 1. Ignored targets count as negatives in r.

    Args:
        logits: (N, C) raw scores, any float dtype.
        targets: (N, C) in [0, 1]; ``ignore_value`` entries are skipped.
        class_counts: (C,) positive training counts per class, >= 0.
        num_samples: number of training images (>= 2 and >= every count).
        map_alpha, map_beta, map_mu: smoothing of r (paper alpha 0.1, beta 10, mu 0.2), >= 0.
        init_bias: scale kappa >= 0 of the prior bias nu (paper 0.05).
        neg_scale: lambda > 0 of the negative-tolerant term (paper 2).
        gamma: optional focusing exponent >= 0 (0 in the paper's DB).
        mask, reduction, class_weights, ignore_value: as in :func:`binary_cross_entropy`.

    Returns:
        Scalar loss, or (N, C) for ``reduction="none"``.

    Raises:
        ValueError: negative options, ``neg_scale`` = 0, ``num_samples`` too small,
            ``class_counts`` of the wrong length or negative, bad inputs or ``reduction``.

    Example:
        >>> import torch
        >>> loss = distribution_balanced_loss(torch.randn(4, 3), torch.ones(4, 3), [900, 90, 9], 1000)
    """
    map_alpha = check_nonnegative("map_alpha", map_alpha)
    map_beta = check_nonnegative("map_beta", map_beta)
    map_mu = check_nonnegative("map_mu", map_mu)
    init_bias = check_nonnegative("init_bias", init_bias)
    gamma = check_nonnegative("gamma", gamma)
    if check_nonnegative("neg_scale", neg_scale) == 0:
        raise ValueError(f"neg_scale must be > 0, got {neg_scale!r}")
    total = check_nonnegative("num_samples", num_samples)
    if total < 2:
        raise ValueError(f"num_samples must be the number of training images (>= 2), got {num_samples!r}")

    def elementwise(x: Tensor, y: Tensor) -> Tensor:
        counts = per_class_counts(class_counts, x)
        if counts.numel() and counts.max() > total:
            raise ValueError(
                f"num_samples must be >= every class count, got {num_samples!r} < {counts.max().item()}"
            )
        prior = counts.clamp(1.0, total - 1.0)
        shifted = x + init_bias * (torch.log(prior) - torch.log(total - prior))
        weights = _rebalance_weights(y, counts, map_alpha, map_beta, map_mu)
        positive = positive_part(shifted, gamma)
        negative = negative_part(neg_scale * shifted, gamma) / neg_scale
        return weights * (y * positive + (1 - y) * negative)

    return multilabel_loss(
        elementwise, logits, targets, mask=mask, reduction=reduction,
        class_weights=class_weights, ignore_value=ignore_value,
    )


class DistributionBalancedLoss(MultiLabelLoss):
    """Distribution-balanced loss (Wu et al., ECCV 2020); see :func:`distribution_balanced_loss`.

    Use for long-tailed multi-label data (label co-occurrence makes plain re-sampling or
    re-weighting over-sample head classes; many negatives swamp rare classes).
    """

    def __init__(
        self, class_counts: ClassVector, num_samples: int, *,
        map_alpha: float = 0.1, map_beta: float = 10.0, map_mu: float = 0.2,
        init_bias: float = 0.05, neg_scale: float = 2.0, gamma: float = 0.0,
        reduction: str = "mean", class_weights: ClassVector = None, ignore_value: float | None = None,
    ) -> None:
        super().__init__(
            distribution_balanced_loss, class_counts=class_counts, num_samples=num_samples,
            map_alpha=map_alpha, map_beta=map_beta, map_mu=map_mu,
            init_bias=init_bias, neg_scale=neg_scale, gamma=gamma,
            reduction=reduction, class_weights=class_weights, ignore_value=ignore_value,
        )
