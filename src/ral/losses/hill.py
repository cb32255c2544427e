"""Hill loss and SPLC, self-paced loss correction (Zhang et al., 2021), for multi-label learning
with missing labels. Both use the paper's focal-margin positive term."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._base import EpochSchedule, MultiLabelLoss, functional
from ._common import check_epoch, check_in_range, check_nonnegative
from ._space import FloatRange, tunable
from ._terms import negative_part, positive_part, sigmoid_probabilities


def hill_weight(p: Tensor, lam: float) -> Tensor:
    """The Hill weight psi(p) = lam - p of Zhang et al. (2021), shared with RAL."""
    return lam - p


def focal_margin_positive(x: Tensor, margin: float, gamma: float) -> Tensor:
    """The focal-margin positive term (1 - p_m)^gamma (-log p_m), p_m = sigmoid(x - margin), (N, C)."""
    return positive_part(sigmoid_probabilities(x - margin), gamma)


class HillLoss(MultiLabelLoss):
    """Hill loss: a focal-margin positive term and a hill-shaped negative term.

    Y. Zhang, Y. Cheng, X. Huang, F. Wen, R. Feng, Y. Li, Y. Guo, "Simple and Robust Loss
    Design for Multi-Label Learning with Missing Labels", arXiv 2112.07368 (2021). Per label,
    p = sigmoid(x), p_m = sigmoid(x - margin)::

        L+ = (1 - p_m)^gamma * (-log p_m)          (focal margin)
        L- = (lam - p) * p^2                        (Hill: small for confident "negatives",
                                                     which are likely missing positives)
        loss = y L+ + (1 - y) L-

    The authors' code sums the loss; the default here is "mean". Use when many positives are
    unlabelled (report-mined or partial annotations).

    Args:
        lam: Hill constant lambda >= 1 (paper 1.5).
        margin: logit margin >= 0 of the positive term (paper 1.0).
        gamma: focusing exponent >= 0 of the positive term (paper 2.0).
        reduction, class_weights, ignore_value, check_targets: see :class:`BinaryCrossEntropyLoss`.

    Raises:
        ValueError: ``lam`` < 1, negative ``margin`` or ``gamma``, bad common options.

    Example:
        >>> import torch
        >>> loss = HillLoss(lam=1.5)(torch.randn(4, 3), torch.ones(4, 3))
    """

    lam: float = tunable(1.5, FloatRange(low=1.0, high=3.0))
    margin: float = tunable(1.0, FloatRange(low=0.0, high=2.0))
    gamma: float = tunable(2.0, FloatRange(low=0.0, high=4.0))

    def __post_init__(self) -> None:
        super().__post_init__()
        self.lam = check_in_range("lam", self.lam, 1.0, math.inf)  # keeps the Hill weight lam - p >= 0
        self.margin = check_nonnegative("margin", self.margin)
        self.gamma = check_nonnegative("gamma", self.gamma)

    def elementwise(self, x: Tensor, y: Tensor) -> Tensor:
        p = sigmoid_probabilities(x).p
        positive = focal_margin_positive(x, self.margin, self.gamma)
        return y * positive + (1 - y) * hill_weight(p, self.lam) * p.square()


class SPLCLoss(EpochSchedule, MultiLabelLoss):
    """SPLC, self-paced loss correction: from a given epoch on, a negative the model already
    scores above a threshold is trained as a positive (a likely missing label).

    Y. Zhang, Y. Cheng, X. Huang, F. Wen, R. Feng, Y. Li, Y. Guo, "Simple and Robust Loss
    Design for Multi-Label Learning with Missing Labels", arXiv 2112.07368 (2021), SPLC with
    the focal margin loss as in the authors' released code. Per label, p = sigmoid(x)::

        L+(x) = (1 - p_m)^gamma (-log p_m),   p_m = sigmoid(x - margin)      (focal margin)
        L-(x) = p^gamma (-log(1 - p))                                         (focal)
        before correction_epoch:  loss = y L+ + (1 - y) L-
        from correction_epoch on: loss = y L+ + (1 - y) [1(p <= tau) L-(x) + 1(p > tau) Lc(x)]
        Lc(x) = (1 - p)^gamma (-log p)        (the positive term without its margin)

    The correction depends on the current epoch: the trainer calls :meth:`set_epoch` at the
    start of every epoch (``ral``'s engine does; 0-based, ``epoch >= correction_epoch``
    switches it on). The indicator 1(p > tau) is a constant in backprop, as in the released
    code (which relabels the target). That code sums the loss (``reduction="sum"`` here); the
    default is "mean". Use when many positives are missing from the labels (partial or
    report-mined annotations) and training runs for several epochs.

    Args:
        threshold: tau in [0, 1], the probability above which a negative is relabelled
            (paper 0.6).
        correction_epoch: first (0-based) epoch of the correction, >= 0 (paper 1: after the
            first epoch, whose predictions recall few missing labels).
        margin: logit margin >= 0 of the positive term (paper 1.0).
        gamma: focusing exponent >= 0 of both terms (paper 2.0).
        reduction, class_weights, ignore_value, check_targets: see :class:`BinaryCrossEntropyLoss`.

    Raises:
        ValueError: ``threshold`` outside [0, 1], bad ``correction_epoch``, negative ``margin``
            or ``gamma``, bad common options.

    Example:
        >>> import torch
        >>> loss = SPLCLoss()
        >>> loss.set_epoch(3)
        >>> value = loss(torch.randn(4, 3), torch.ones(4, 3))
    """

    threshold: float = tunable(0.6, FloatRange(low=0.5, high=0.95))
    correction_epoch: int = 1
    margin: float = tunable(1.0, FloatRange(low=0.0, high=2.0))
    gamma: float = tunable(2.0, FloatRange(low=0.0, high=4.0))

    def __post_init__(self) -> None:
        super().__post_init__()
        self.threshold = check_in_range("threshold", self.threshold, 0.0, 1.0, high_inclusive=True)
        self.correction_epoch = check_epoch("correction_epoch", self.correction_epoch)
        self.margin = check_nonnegative("margin", self.margin)
        self.gamma = check_nonnegative("gamma", self.gamma)
        self.epoch = 0

    @property
    def correcting(self) -> bool:
        """Whether negatives above the threshold are relabelled at the current epoch."""
        return self.epoch >= self.correction_epoch

    def elementwise(self, x: Tensor, y: Tensor) -> Tensor:
        t = sigmoid_probabilities(x)
        negative = negative_part(t, self.gamma)
        if self.correcting:
            negative = torch.where(t.p.detach() > self.threshold, positive_part(t, self.gamma), negative)
        return y * focal_margin_positive(x, self.margin, self.gamma) + (1 - y) * negative


hill_loss = functional(HillLoss, "hill_loss")


splc_loss = functional(SPLCLoss, "splc_loss")
