"""Hill loss (Zhang et al., 2021) for multi-label learning with missing labels."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._common import ClassVector, check_in_range, check_nonnegative, multilabel_loss
from ._module import MultiLabelLoss
from ._terms import positive_part


def hill_loss(
    logits: Tensor, targets: Tensor, *, lam: float = 1.5, margin: float = 1.0, gamma: float = 2.0,
    mask: Tensor | None = None,
    reduction: str = "mean", class_weights: ClassVector = None, ignore_value: float | None = None,
) -> Tensor:
    """Hill loss: a focal-margin positive term and a hill-shaped negative term.

    Y. Zhang, Y. Cheng, X. Huang, F. Wen, R. Feng, Y. Li, Y. Guo, "Simple and Robust Loss
    Design for Multi-Label Learning with Missing Labels", arXiv 2112.07368 (2021). Per label,
    p = sigmoid(x), p_m = sigmoid(x - margin)::

        L+ = (1 - p_m)^gamma * (-log p_m)          (focal margin)
        L- = (lam - p) * p^2                        (Hill: small for confident "negatives",
                                                     which are likely missing positives)
        loss = y L+ + (1 - y) L-

    The authors' code sums the loss; the default here is "mean".

    Args:
        logits: (N, C) raw scores, any float dtype.
        targets: (N, C) in [0, 1]; ``ignore_value`` entries are skipped.
        lam: Hill constant lambda >= 1 (paper 1.5).
        margin: logit margin >= 0 of the positive term (paper 1.0).
        gamma: focusing exponent >= 0 of the positive term (paper 2.0).
        mask, reduction, class_weights, ignore_value: as in :func:`binary_cross_entropy`.

    Returns:
        Scalar loss, or (N, C) for ``reduction="none"``.

    Raises:
        ValueError: ``lam`` < 1, negative ``margin`` or ``gamma``, bad inputs or ``reduction``.

    Example:
        >>> import torch
        >>> loss = hill_loss(torch.randn(4, 3), torch.ones(4, 3), lam=1.5)
    """
    lam = check_in_range("lam", lam, 1.0, math.inf)  # keeps the Hill weight lam - p >= 0
    margin = check_nonnegative("margin", margin)
    gamma = check_nonnegative("gamma", gamma)

    def elementwise(x: Tensor, y: Tensor) -> Tensor:
        p = torch.sigmoid(x)
        return y * positive_part(x - margin, gamma) + (1 - y) * (lam - p) * p.square()

    return multilabel_loss(
        elementwise, logits, targets, mask=mask, reduction=reduction,
        class_weights=class_weights, ignore_value=ignore_value,
    )


class HillLoss(MultiLabelLoss):
    """Hill loss (Zhang et al., 2021); see :func:`hill_loss`.

    Use when many positives are unlabelled (report-mined or partial annotations).
    """

    def __init__(
        self, lam: float = 1.5, margin: float = 1.0, gamma: float = 2.0, *,
        reduction: str = "mean", class_weights: ClassVector = None, ignore_value: float | None = None,
    ) -> None:
        super().__init__(
            hill_loss, lam=lam, margin=margin, gamma=gamma,
            reduction=reduction, class_weights=class_weights, ignore_value=ignore_value,
        )
