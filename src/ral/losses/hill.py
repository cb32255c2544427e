"""Hill loss (Zhang et al., 2021) for multi-label learning with missing labels."""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor

from ._base import MultiLabelLoss
from ._common import check_in_range, check_nonnegative
from ._terms import positive_part, sigmoid_probabilities


def hill_weight(p: Tensor, lam: float) -> Tensor:
    """The Hill weight psi(p) = lam - p of Zhang et al. (2021), shared with RAL."""
    return lam - p


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

    def __init__(
        self,
        lam: float = 1.5,
        margin: float = 1.0,
        gamma: float = 2.0,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.lam = check_in_range("lam", lam, 1.0, math.inf)  # keeps the Hill weight lam - p >= 0
        self.margin = check_nonnegative("margin", margin)
        self.gamma = check_nonnegative("gamma", gamma)

    def elementwise(self, x: Tensor, y: Tensor) -> Tensor:
        p = sigmoid_probabilities(x).p
        positive = positive_part(sigmoid_probabilities(x - self.margin), self.gamma)
        return y * positive + (1 - y) * hill_weight(p, self.lam) * p.square()


def hill_loss(logits: Tensor, targets: Tensor, *, mask: Tensor | None = None, **options) -> Tensor:
    """Functional form of :class:`HillLoss` (same keyword options).

    Example:
        >>> import torch
        >>> loss = hill_loss(torch.randn(4, 3), torch.ones(4, 3), lam=1.5)
    """
    return HillLoss(**options)(logits, targets, mask)
