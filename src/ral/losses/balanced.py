"""Frequency-aware multi-label losses: class-balanced re-weighting (Cui et al., CVPR 2019)
and the distribution-balanced loss (Wu et al., ECCV 2020).

Both take ``class_counts``: the number of positive TRAINING images per class, shape (C,).
"""

from __future__ import annotations

from dataclasses import field
from typing import ClassVar

import torch
from torch import Tensor

from ._base import MultiLabelLoss, functional
from ._common import ClassVector, check_choice, check_in_range, check_nonnegative
from ._space import Choice, FloatRange, tunable
from ._terms import (
    effective_number_weights,
    log_prior_odds,
    negative_part,
    positive_part,
    sigmoid_probabilities,
)

#: Base losses that class-balanced re-weighting applies to.
CB_BASES = ("bce", "focal")


class ClassBalancedLoss(MultiLabelLoss):
    """Class-balanced loss: BCE or sigmoid focal loss weighted by the inverse effective number.

    Y. Cui, M. Jia, T.-Y. Lin, Y. Song, S. Belongie, "Class-Balanced Loss Based on Effective
    Number of Samples", CVPR 2019. Class c with n_c training positives gets::

        w_c = (1 - beta) / (1 - beta^n_c),   normalised so that sum_c w_c = C
        loss = w_c * (y (1 - p)^g (-log p) + (1 - y) p^g (-log(1 - p))),  g = gamma or 0 (bce)

    Counts below 1 count as 1. ``class_weights`` multiply on top of w_c. Use for long-tailed
    labels when the rare classes need a larger share of the gradient.

    Args:
        class_counts: (C,) positive training counts per class, >= 0.
        beta: in [0, 1); 0 gives no re-weighting, -> 1 gives inverse frequency (paper 0.9999).
        base: "focal" (sigmoid focal, no alpha, as in the paper) or "bce".
        gamma: focusing exponent >= 0, used when ``base="focal"``.
        reduction, class_weights, ignore_value, check_targets: see :class:`BinaryCrossEntropyLoss`.

    Raises:
        ValueError: ``beta`` outside [0, 1), unknown ``base``, negative ``gamma``,
            ``class_counts`` missing, of the wrong length or negative.

    Example:
        >>> import torch
        >>> loss = ClassBalancedLoss([900, 90, 9])(torch.randn(4, 3), torch.ones(4, 3))
    """

    statistics: ClassVar[tuple[str, ...]] = ("class_counts",)

    class_counts: ClassVector
    beta: float = tunable(0.9999, Choice(values=(0.9, 0.99, 0.999, 0.9999)))
    base: str = "focal"
    gamma: float = tunable(2.0, FloatRange(low=0.0, high=4.0))

    def __post_init__(self) -> None:
        super().__post_init__()
        self.beta = check_in_range("beta", self.beta, 0.0, 1.0)
        self.base = check_choice("base", self.base, CB_BASES)
        self.gamma = check_nonnegative("gamma", self.gamma) if self.base == "focal" else 0.0

    def elementwise(self, x: Tensor, y: Tensor) -> Tensor:
        weights = effective_number_weights(self.class_counts.to(x.dtype), self.beta)
        t = sigmoid_probabilities(x)
        return weights * (y * positive_part(t, self.gamma) + (1 - y) * negative_part(t, self.gamma))


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


class DistributionBalancedLoss(MultiLabelLoss):
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
    r, counts below 1 count as 1. Ignored targets count as negatives in r. Use for long-tailed
    multi-label data (label co-occurrence makes plain re-sampling or re-weighting over-sample
    head classes; many negatives swamp rare classes).

    Args:
        class_counts: (C,) positive training counts per class, >= 0.
        num_samples: number of training images (>= 2 and >= every count).
        map_alpha, map_beta, map_mu: smoothing of r (paper alpha 0.1, beta 10, mu 0.2), >= 0.
        init_bias: scale kappa >= 0 of the prior bias nu (paper 0.05).
        neg_scale: lambda > 0 of the negative-tolerant term (paper 2).
        gamma: optional focusing exponent >= 0 (0 in the paper's DB).
        reduction, class_weights, ignore_value, check_targets: see :class:`BinaryCrossEntropyLoss`.

    Raises:
        ValueError: negative options, ``neg_scale`` = 0, ``num_samples`` too small,
            ``class_counts`` missing, of the wrong length or negative.

    Example:
        >>> import torch
        >>> loss = DistributionBalancedLoss([900, 90, 9], 1000)(torch.randn(4, 3), torch.ones(4, 3))
    """

    statistics: ClassVar[tuple[str, ...]] = ("class_counts", "num_samples")

    class_counts: ClassVector
    num_samples: int
    map_alpha: float = field(default=0.1, kw_only=True)
    map_beta: float = field(default=10.0, kw_only=True)
    map_mu: float = tunable(0.2, FloatRange(low=0.1, high=0.3), kw_only=True)
    init_bias: float = tunable(0.05, FloatRange(low=0.01, high=0.2, log=True), kw_only=True)
    neg_scale: float = tunable(2.0, FloatRange(low=1.0, high=5.0), kw_only=True)
    gamma: float = field(default=0.0, kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("map_alpha", "map_beta", "map_mu", "init_bias", "gamma", "neg_scale"):
            setattr(self, name, check_nonnegative(name, getattr(self, name)))
        if self.neg_scale == 0:
            raise ValueError(f"neg_scale must be > 0, got {self.neg_scale!r}")

    def elementwise(self, x: Tensor, y: Tensor) -> Tensor:
        counts = self.class_counts.to(x.dtype)
        shifted = x + self.init_bias * log_prior_odds(counts, self.num_samples)
        weights = _rebalance_weights(y, counts, self.map_alpha, self.map_beta, self.map_mu)
        positive = positive_part(sigmoid_probabilities(shifted), self.gamma)
        negative = negative_part(sigmoid_probabilities(self.neg_scale * shifted), self.gamma) / self.neg_scale
        return weights * (y * positive + (1 - y) * negative)


class_balanced_loss = functional(ClassBalancedLoss, "class_balanced_loss")


distribution_balanced_loss = functional(DistributionBalancedLoss, "distribution_balanced_loss")
