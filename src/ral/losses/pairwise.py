"""Multi-label losses that compare labels with each other through log-sum-exp: ZLPR (Su et al.,
2022) and the two-way multi-label loss (Kobayashi, CVPR 2023).

Neither has a per-element loss: ZLPR is one term per sample, the two-way loss one per sample
and one per class. Both override ``reduced_loss`` of :class:`~ral.losses.MultiLabelLoss` and
share its validation (shapes, targets in [0, 1], ``ignore_value``, ``mask``): an ignored or
masked element is left out of every sum. Soft targets weight the sums: element j enters a
positive sum with weight y_j and a negative sum with weight 1 - y_j (for 0/1 targets these are
the published formulas). Per-class ``class_weights`` are refused: these losses compare classes
with each other, so a class's weight has no single place to go.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._base import MultiLabelLoss, functional
from ._common import check_nonnegative, reduce_samples
from ._space import FloatRange, tunable


def log_sum_exp(z: Tensor, weights: Tensor, dim: int) -> Tensor:
    """``log sum_j weights_j * exp(z_j)`` along ``dim`` in float32 / float64; -inf where every
    weight is 0, with a zero (not NaN) gradient there. ``weights`` >= 0, same shape as ``z``."""
    present = weights > 0
    terms = torch.where(present, z + torch.log(torch.where(present, weights, torch.ones_like(weights))), -torch.inf)
    if terms.shape[dim]:
        top = terms.amax(dim=dim, keepdim=True)
        top = torch.where(torch.isfinite(top), top, torch.zeros_like(top)).detach()
    else:  # an empty sum (a batch of no samples): amax has nothing to reduce
        top = terms.new_zeros(terms.shape[:dim] + (1,) + terms.shape[dim + 1 :])
    total = torch.exp(terms - top).sum(dim=dim)
    nonempty = total > 0
    # where() twice: the log branch never sees a 0 sum, so an empty sum has no infinite slope
    log_total = torch.log(torch.where(nonempty, total, torch.ones_like(total))) + top.squeeze(dim)
    return torch.where(nonempty, log_total, torch.full_like(log_total, -torch.inf))


def _pair_weights(y: Tensor, valid: Tensor | None) -> tuple[Tensor, Tensor]:
    """Weights of each element in the positive sums (y) and in the negative sums (1 - y), 0 where ignored."""
    positive, negative = y, 1 - y
    if valid is not None:
        positive, negative = positive * valid, negative * valid
    return positive, negative


class _PairwiseLoss(MultiLabelLoss):
    """The shared constructor: the common options, without per-class weights."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.class_weights is not None:
            raise ValueError(
                f"{type(self).__name__} takes no class_weights (its terms compare classes), "
                f"got {self.class_weights.tolist()}"
            )


class ZLPRLoss(_PairwiseLoss):
    """ZLPR, the multi-label categorical cross-entropy ("softmax + cross-entropy" for multi-label).

    J. Su, M. Zhu, A. Murtadha, S. Pan, B. Wen, Y. Liu, "ZLPR: A Novel Loss for Multi-label
    Classification", arXiv 2208.02955 (2022). Per sample i, with Omega_pos / Omega_neg its
    positive / negative labels::

        loss_i = log(1 + sum_{j in Omega_neg} e^{x_ij}) + log(1 + sum_{j in Omega_pos} e^{-x_ij})

    Every positive logit is pushed above 0 and every negative one below, relative to each other
    (log-sum-exp is a smooth max), so the threshold is 0 and the loss does not scale with the
    number of negatives. Computed as softplus of a log-sum-exp in float32, with no overflow for
    |x| up to 1e4. Soft targets weight the terms (y_ij in the positive sum, 1 - y_ij in the
    negative sum; Su's separate soft-label version is not this). Use for multi-label data with
    many labels and few positives per sample.

    Args:
        reduction: "mean" over the samples with at least one valid element (default), "sum",
            or "none" (N,) one loss per sample (0 for a sample without valid elements).
        ignore_value, check_targets: see :class:`BinaryCrossEntropyLoss`; ignored / masked
            elements leave both sums.

    Shapes: ``forward(logits (N, C), targets (N, C) in [0, 1], mask=None (N, C))``.

    Raises:
        ValueError: ``class_weights`` given, bad common options; at call time bad shapes or targets.

    Example:
        >>> import torch
        >>> loss = ZLPRLoss()(torch.randn(4, 3), torch.tensor([[1.0, 0, 0], [0, 1, 1], [0, 0, 0], [1, 1, 1]]))
    """

    def reduced_loss(self, x: Tensor, y: Tensor, valid: Tensor | None) -> Tensor:
        positive, negative = _pair_weights(y, valid)
        per_sample = F.softplus(log_sum_exp(x, negative, dim=1)) + F.softplus(log_sum_exp(-x, positive, dim=1))
        rows = None if valid is None else (valid > 0).any(dim=1)
        return reduce_samples(per_sample, valid_rows=rows, reduction=self.reduction)


class TwoWayLoss(_PairwiseLoss):
    """Two-way multi-label loss: a softmax-like comparison of positives with negatives, once
    among the classes of each sample and once among the samples of each class.

    T. Kobayashi, "Two-Way Multi-Label Loss", CVPR 2023 (code: github.com/tk1980/TwowayMultiLabelLoss).
    For a set S of logits with positives P and negatives N (a sample's C classes, or a class's
    N samples in the batch), with temperatures T_p (positives) and T_n (negatives)::

        l(S) = softplus( T_n log sum_{n in N} e^{x_n / T_n} + T_p log sum_{p in P} e^{-x_p / T_p} )
        loss = mean_{samples i with a positive} l(row i) + mean_{classes c with a positive} l(column c)

    At T_p = T_n = 1, l(S) = log(1 + sum_{p, n} e^{x_n - x_p}), the softmax loss of every
    positive against all negatives; the temperatures turn the log-sum-exps into softer or
    harder maxima. What is implemented is the authors' released ``TwoWayLoss`` (defaults
    T_p = 4, T_n = 1, the published ones) with two differences: the code marks non-members of
    a set with a logit offset of -100, here they are left out exactly (equal unless logits
    exceed about 100 T); and soft targets weight the sums (y in P, 1 - y in N) where the code
    counts any y > 0 as a positive. (The paper's equation numbers could not be checked against
    its text when this was written; the formula above is the released code's.) Rows and
    columns without positives are left out of their mean; a set without negatives costs 0.
    Use for multi-label data where ranking classes within a sample and samples within a class
    both matter (the class-wise term needs batches with several positives per class).

    Args:
        temperature_pos: T_p > 0 (paper 4).
        temperature_neg: T_n > 0 (paper 1).
        reduction: "mean" (the paper's sum of the two means) or "sum" (sum of every row and
            column term); "none" is refused: the column terms mix samples.
        ignore_value, check_targets: see :class:`BinaryCrossEntropyLoss`; ignored / masked
            elements leave every sum.

    Shapes: ``forward(logits (N, C), targets (N, C) in [0, 1], mask=None (N, C))`` -> scalar.

    Raises:
        ValueError: temperatures <= 0, ``reduction="none"``, ``class_weights`` given, bad
            common options; at call time bad shapes or targets.

    Example:
        >>> import torch
        >>> loss = TwoWayLoss()(torch.randn(4, 3), torch.tensor([[1.0, 0, 0], [0, 1, 1], [0, 0, 0], [1, 0, 1]]))
    """

    temperature_pos: float = tunable(4.0, FloatRange(low=1.0, high=8.0))
    temperature_neg: float = tunable(1.0, FloatRange(low=0.5, high=4.0))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.reduction == "none":
            raise ValueError("reduction must be 'mean' or 'sum' for twoway (its class terms mix samples), got 'none'")
        self.temperature_pos = _check_temperature("temperature_pos", self.temperature_pos)
        self.temperature_neg = _check_temperature("temperature_neg", self.temperature_neg)

    def reduced_loss(self, x: Tensor, y: Tensor, valid: Tensor | None) -> Tensor:
        positive, negative = _pair_weights(y, valid)
        t_pos, t_neg = self.temperature_pos, self.temperature_neg
        total = x.new_zeros(())
        for dim in (1, 0):  # one term per sample (over its classes), one per class (over the batch)
            negatives = t_neg * log_sum_exp(x / t_neg, negative, dim=dim)
            positives = t_pos * log_sum_exp(-x / t_pos, positive, dim=dim)
            has_positive = (positive > 0).any(dim=dim)
            total = total + reduce_samples(
                F.softplus(negatives + positives), valid_rows=has_positive, reduction=self.reduction
            )
        return total


def _check_temperature(name: str, value: float) -> float:
    number = check_nonnegative(name, value)
    if number == 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return number


zlpr_loss = functional(ZLPRLoss, "zlpr_loss")


two_way_loss = functional(TwoWayLoss, "two_way_loss")
