"""Asymmetric loss, ASL (Ridnik et al., ICCV 2021), and the asymmetric element-wise core it
shares with the asymmetric polynomial loss."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from ._common import (
    ClassVector,
    ElementwiseLoss,
    check_float_tuple,
    check_in_range,
    check_nonnegative,
    multilabel_loss,
)
from ._module import MultiLabelLoss
from ._terms import negative_part, positive_part


def asymmetric_elementwise(
    *,
    gamma_pos: float,
    gamma_neg: float,
    clip: float,
    eps_pos: Sequence[float] = (),
    eps_neg: Sequence[float] = (),
    detach_focal: bool = False,
) -> ElementwiseLoss:
    """Validate the options and return ``(x, y) -> y * L+ + (1 - y) * L-`` (N, C), where::

        L+ = (1 - p)^gamma_pos * (-log p        + sum_m eps_pos[m] * (1 - p)^m)
        L- = p_m^gamma_neg     * (-log(1 - p_m) + sum_n eps_neg[n] * p_m^n),  p_m = max(p - clip, 0)

    Raises:
        ValueError: negative gammas, ``clip`` outside [0, 1), non-numeric eps, non-bool
            ``detach_focal``.
    """
    gamma_pos = check_nonnegative("gamma_pos", gamma_pos)
    gamma_neg = check_nonnegative("gamma_neg", gamma_neg)
    clip = check_in_range("clip", clip, 0.0, 1.0)
    eps_pos = check_float_tuple("eps_pos", eps_pos)
    eps_neg = check_float_tuple("eps_neg", eps_neg)
    if not isinstance(detach_focal, bool):
        raise ValueError(f"detach_focal must be True or False, got {detach_focal!r}")

    def elementwise(x: Tensor, y: Tensor) -> Tensor:
        positive = positive_part(x, gamma_pos, eps_pos, detach_focal=detach_focal)
        negative = negative_part(x, gamma_neg, clip, eps_neg, detach_focal=detach_focal)
        return y * positive + (1 - y) * negative

    return elementwise


def asymmetric_loss(
    logits: Tensor, targets: Tensor, *, gamma_pos: float = 0.0, gamma_neg: float = 4.0,
    clip: float = 0.05, detach_focal: bool = False, mask: Tensor | None = None,
    reduction: str = "mean", class_weights: ClassVector = None, ignore_value: float | None = None,
) -> Tensor:
    """Asymmetric loss (ASL): asymmetric focusing plus a probability margin for negatives.

    T. Ridnik, E. Ben-Baruch, N. Zamir, A. Noy, I. Friedman, M. Protter, L. Zelnik-Manor,
    "Asymmetric Loss For Multi-Label Classification", ICCV 2021. Per label, p = sigmoid(x),
    p_m = max(p - clip, 0)::

        loss = -y (1 - p)^gamma_pos log(p) - (1 - y) p_m^gamma_neg log(1 - p_m)

    The authors' code sums the loss (``reduction="sum"`` here); the default is "mean".

    Args:
        logits: (N, C) raw scores, any float dtype.
        targets: (N, C) in [0, 1]; ``ignore_value`` entries are skipped.
        gamma_pos, gamma_neg: focusing exponents >= 0 (paper: 0 and 4).
        clip: probability margin m in [0, 1) for negatives (paper: 0.05).
        detach_focal: treat the focusing weights as constants in backprop (the authors'
            ``disable_torch_grad_focal_loss``, done with ``.detach()``, no global grad toggle).
        mask, reduction, class_weights, ignore_value: as in :func:`binary_cross_entropy`.

    Returns:
        Scalar loss, or (N, C) for ``reduction="none"``.

    Raises:
        ValueError: negative gammas, ``clip`` outside [0, 1), bad inputs or ``reduction``.

    Example:
        >>> import torch
        >>> loss = asymmetric_loss(torch.randn(4, 3), torch.ones(4, 3), gamma_neg=4.0, clip=0.05)
    """
    elementwise = asymmetric_elementwise(
        gamma_pos=gamma_pos, gamma_neg=gamma_neg, clip=clip, detach_focal=detach_focal
    )
    return multilabel_loss(
        elementwise, logits, targets, mask=mask, reduction=reduction,
        class_weights=class_weights, ignore_value=ignore_value,
    )


class AsymmetricLoss(MultiLabelLoss):
    """Asymmetric loss, ASL (Ridnik et al., ICCV 2021); see :func:`asymmetric_loss`.

    Use for multi-label data with many easy negatives and some mislabelled negatives.
    """

    def __init__(
        self, gamma_pos: float = 0.0, gamma_neg: float = 4.0, clip: float = 0.05, *,
        detach_focal: bool = False,
        reduction: str = "mean", class_weights: ClassVector = None, ignore_value: float | None = None,
    ) -> None:
        super().__init__(
            asymmetric_loss, gamma_pos=gamma_pos, gamma_neg=gamma_neg, clip=clip, detach_focal=detach_focal,
            reduction=reduction, class_weights=class_weights, ignore_value=ignore_value,
        )
