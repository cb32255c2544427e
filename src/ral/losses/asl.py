"""Asymmetric loss, ASL (Ridnik et al., ICCV 2021), and the asymmetric polynomial loss, APL
(Huang et al., ICASSP 2023), which re-weights ASL's leading Taylor terms."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import field

import torch
from torch import Tensor

from ._base import MultiLabelLoss, functional
from ._common import check_bool, check_float_tuple, check_in_range, check_nonnegative
from ._space import FloatRange, tunable
from ._terms import negative_part, positive_part, sigmoid_probabilities


class AsymmetricLoss(MultiLabelLoss):
    """Asymmetric loss (ASL): asymmetric focusing plus a probability margin for negatives.

    T. Ridnik, E. Ben-Baruch, N. Zamir, A. Noy, I. Friedman, M. Protter, L. Zelnik-Manor,
    "Asymmetric Loss For Multi-Label Classification", ICCV 2021. Per label, p = sigmoid(x),
    p_m = max(p - clip, 0)::

        loss = -y (1 - p)^gamma_pos log(p) - (1 - y) p_m^gamma_neg log(1 - p_m)

    i.e. :class:`AsymmetricPolynomialLoss` without polynomial terms. The authors' code sums the
    loss (``reduction="sum"`` here); the default is "mean". Use for multi-label data with many
    easy negatives and some mislabelled negatives.

    Args:
        gamma_pos, gamma_neg: focusing exponents >= 0 (paper: 0 and 4).
        clip: probability margin m in [0, 1) for negatives (paper: 0.05).
        detach_focal: treat the focusing weights as constants in backprop (the authors'
            ``disable_torch_grad_focal_loss``, done with ``.detach()``, no global grad toggle).
        reduction, class_weights, ignore_value, check_targets: see :class:`BinaryCrossEntropyLoss`.

    Example:
        >>> import torch
        >>> loss = AsymmetricLoss(gamma_neg=4.0, clip=0.05)(torch.randn(4, 3), torch.ones(4, 3))
    """

    gamma_pos: float = tunable(0.0, FloatRange(low=0.0, high=2.0))
    gamma_neg: float = tunable(4.0, FloatRange(low=0.0, high=8.0))
    clip: float = tunable(0.05, FloatRange(low=0.0, high=0.2))
    detach_focal: bool = field(default=False, kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.gamma_pos = check_nonnegative("gamma_pos", self.gamma_pos)
        self.gamma_neg = check_nonnegative("gamma_neg", self.gamma_neg)
        self.clip = check_in_range("clip", self.clip, 0.0, 1.0)
        self.detach_focal = check_bool("detach_focal", self.detach_focal)

    def elementwise(self, x: Tensor, y: Tensor) -> Tensor:
        return self.asymmetric_terms(x, y, (), ())

    def asymmetric_terms(self, x: Tensor, y: Tensor, eps_pos: Sequence[float], eps_neg: Sequence[float]) -> Tensor:
        """``y L+ + (1 - y) L-`` with the polynomial perturbations ``eps_pos`` / ``eps_neg``."""
        t = sigmoid_probabilities(x)
        positive = positive_part(t, self.gamma_pos, eps_pos, detach_focal=self.detach_focal)
        negative = negative_part(t, self.gamma_neg, self.clip, eps_neg, detach_focal=self.detach_focal)
        return torch.lerp(negative, positive, y)


class AsymmetricPolynomialLoss(AsymmetricLoss):
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
        eps_pos, eps_neg: perturbations of the first Taylor coefficients (any real numbers).
        gamma_pos, gamma_neg, clip, detach_focal: as in :class:`AsymmetricLoss`.
        reduction, class_weights, ignore_value, check_targets: see :class:`BinaryCrossEntropyLoss`.

    Raises:
        ValueError: negative gammas, ``clip`` outside [0, 1), non-numeric eps, bad common options.

    Example:
        >>> import torch
        >>> loss = AsymmetricPolynomialLoss()(torch.randn(4, 3), torch.ones(4, 3))
    """

    eps_pos: Sequence[float] = tunable((-1.0, 1.25), FloatRange(low=-1.5, high=1.0), FloatRange(low=-1.0, high=2.5))
    eps_neg: Sequence[float] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        self.eps_pos = check_float_tuple("eps_pos", self.eps_pos)
        self.eps_neg = check_float_tuple("eps_neg", self.eps_neg)

    def elementwise(self, x: Tensor, y: Tensor) -> Tensor:
        return self.asymmetric_terms(x, y, self.eps_pos, self.eps_neg)


asymmetric_loss = functional(AsymmetricLoss, "asymmetric_loss")


asymmetric_polynomial_loss = functional(AsymmetricPolynomialLoss, "asymmetric_polynomial_loss")
