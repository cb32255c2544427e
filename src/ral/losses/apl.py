"""Asymmetric polynomial loss, APL (Huang et al., ICASSP 2023)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from ._common import ClassVector, multilabel_loss
from ._module import MultiLabelLoss
from .asl import asymmetric_elementwise


def asymmetric_polynomial_loss(
    logits: Tensor, targets: Tensor, *, gamma_pos: float = 0.0, gamma_neg: float = 4.0,
    clip: float = 0.05, eps_pos: Sequence[float] = (-1.0, 1.25), eps_neg: Sequence[float] = (),
    detach_focal: bool = False, mask: Tensor | None = None,
    reduction: str = "mean", class_weights: ClassVector = None, ignore_value: float | None = None,
) -> Tensor:
    """Asymmetric polynomial loss (APL): ASL whose log terms have re-weighted Taylor terms.

    Y. Huang, J. Qi, X. Wang, Z. Lin, "Asymmetric Polynomial Loss for Multi-Label
    Classification", ICASSP 2023. With -log(p) = sum_m (1 - p)^m / m, the leading
    coefficients become 1/m + eps_pos[m] (and 1/n + eps_neg[n] for -log(1 - p_m))::

        L+ = (1 - p)^gamma_pos * (-log p        + sum_m eps_pos[m] (1 - p)^m)
        L- = p_m^gamma_neg     * (-log(1 - p_m) + sum_n eps_neg[n] p_m^n),   p_m = max(p - clip, 0)
        loss = y L+ + (1 - y) L-

    Defaults are the authors' released constants: their ``epsilon_pos = 1.0`` and
    ``epsilon_pos_pow = -2.5`` *add* ``1.0 (1 - p) - 1.25 (1 - p)^2`` to log(p), i.e.
    ``eps_pos = (-1.0, 1.25)`` here. (Their code multiplies ``epsilon_neg`` by 1 - p_m; the
    paper's polynomial in p_m is used here. Both vanish at the default ``eps_neg = ()``.)
    The authors' code sums the loss; the default here is "mean".

    Args:
        logits: (N, C) raw scores, any float dtype.
        targets: (N, C) in [0, 1]; ``ignore_value`` entries are skipped.
        gamma_pos, gamma_neg, clip, detach_focal: as in :func:`asymmetric_loss`.
        eps_pos, eps_neg: perturbations of the first Taylor coefficients (any real numbers).
        mask, reduction, class_weights, ignore_value: as in :func:`binary_cross_entropy`.

    Returns:
        Scalar loss, or (N, C) for ``reduction="none"``.

    Raises:
        ValueError: negative gammas, ``clip`` outside [0, 1), non-numeric eps, bad inputs.

    Example:
        >>> import torch
        >>> loss = asymmetric_polynomial_loss(torch.randn(4, 3), torch.ones(4, 3))
    """
    elementwise = asymmetric_elementwise(
        gamma_pos=gamma_pos, gamma_neg=gamma_neg, clip=clip,
        eps_pos=eps_pos, eps_neg=eps_neg, detach_focal=detach_focal,
    )
    return multilabel_loss(
        elementwise, logits, targets, mask=mask, reduction=reduction,
        class_weights=class_weights, ignore_value=ignore_value,
    )


class AsymmetricPolynomialLoss(MultiLabelLoss):
    """Asymmetric polynomial loss, APL (Huang et al., ICASSP 2023).

    See :func:`asymmetric_polynomial_loss`. Use like ASL, with the leading polynomial terms
    of the positive loss re-weighted (the defaults damp the gradient of hard positives).
    """

    def __init__(
        self, gamma_pos: float = 0.0, gamma_neg: float = 4.0, clip: float = 0.05,
        eps_pos: Sequence[float] = (-1.0, 1.25), eps_neg: Sequence[float] = (), *,
        detach_focal: bool = False,
        reduction: str = "mean", class_weights: ClassVector = None, ignore_value: float | None = None,
    ) -> None:
        super().__init__(
            asymmetric_polynomial_loss, gamma_pos=gamma_pos, gamma_neg=gamma_neg, clip=clip,
            eps_pos=eps_pos, eps_neg=eps_neg, detach_focal=detach_focal,
            reduction=reduction, class_weights=class_weights, ignore_value=ignore_value,
        )
