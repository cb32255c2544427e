"""Small numerically safe building blocks shared by the peer losses.

Every helper works in the dtype of its input (float32, or float64 for exact checks), in log
space where a logarithm is involved, and has a finite gradient for finite logits, including
where a probability is exactly 0 or 1 in floating point and for fractional exponents.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ._common import ClassVector, check_class_vector


def power_from_log(log_base: Tensor, exponent: float) -> Tensor:
    """``base ** exponent`` from ``log(base)``: exp(exponent * log_base); ones for exponent 0.

    Finite value and gradient wherever ``log_base`` is finite (use it with logsigmoid).
    """
    if exponent == 0:
        return torch.ones_like(log_base)
    return torch.exp(exponent * log_base)


def safe_pow(base: Tensor, exponent: float) -> Tensor:
    """``base ** exponent`` for ``base >= 0`` with a zero (not NaN) gradient where base == 0.

    ``0 ** 0`` is 1 and ``0 ** e`` is 0 for e > 0, as in :func:`torch.pow`.
    """
    if exponent == 0:
        return torch.ones_like(base)
    positive = base > 0
    # Double where: the pow branch never sees a 0 base, so its gradient stays finite.
    safe_base = torch.where(positive, base, torch.ones_like(base))
    return torch.where(positive, safe_base.pow(exponent), torch.zeros_like(base))


def maybe_detach(weight: Tensor, detach: bool) -> Tensor:
    """``weight.detach()`` when ``detach`` (a constant in backprop, ASL's
    ``disable_torch_grad_focal_loss`` without a global grad toggle), else ``weight``."""
    return weight.detach() if detach else weight


def polynomial(base: Tensor, coefficients: Sequence[float]) -> Tensor:
    """``sum_k coefficients[k] * base ** (k + 1)`` (Horner's rule); zeros for no coefficients."""
    if not coefficients:
        return torch.zeros_like(base)
    value = torch.full_like(base, coefficients[-1])
    for coefficient in reversed(coefficients[:-1]):
        value = coefficient + base * value
    return base * value


def positive_part(
    x: Tensor, gamma: float = 0.0, eps: Sequence[float] = (), *, detach_focal: bool = False
) -> Tensor:
    """Loss of a positive label, element-wise (N, C).

    ``(1 - p) ** gamma * (-log p + sum_m eps[m] * (1 - p) ** m)`` with p = sigmoid(x):
    BCE (gamma 0), focal, ASL and the polynomial (APL) form of the positive term.
    """
    focal = maybe_detach(power_from_log(F.logsigmoid(-x), gamma), detach_focal)
    return focal * (F.softplus(-x) + polynomial(torch.sigmoid(-x), eps))


def negative_part(
    x: Tensor,
    gamma: float = 0.0,
    clip: float = 0.0,
    eps: Sequence[float] = (),
    *,
    detach_focal: bool = False,
) -> Tensor:
    """Loss of a negative label, element-wise (N, C).

    ``p_m ** gamma * (-log(1 - p_m) + sum_n eps[n] * p_m ** n)`` with the shifted probability
    p_m = max(p - clip, 0) (ASL's probability margin). For clip = 0, -log(1 - p) is
    softplus(x); otherwise log1p(-p_m), finite because p_m <= 1 - clip.
    """
    if clip == 0:
        shifted = torch.sigmoid(x)
        nll = F.softplus(x)
        focal = power_from_log(F.logsigmoid(x), gamma)
    else:
        shifted = torch.relu(torch.sigmoid(x) - clip)
        nll = -torch.log1p(-shifted)
        focal = safe_pow(shifted, gamma)
    return maybe_detach(focal, detach_focal) * (nll + polynomial(shifted, eps))


def softmax_focal_terms(z: Tensor, q: Tensor, gamma: float = 0.0) -> Tensor:
    """Per-class softmax cross-entropy ``-q * (1 - p) ** gamma * log p`` (N, C), p = softmax(z).

    gamma = 0 is plain cross-entropy; 1 - p is -expm1(log p), taken to a power safely.
    """
    log_p = F.log_softmax(z, dim=1)
    focal = safe_pow(-torch.expm1(log_p), gamma)
    return -q * focal * log_p


def per_class_counts(class_counts: ClassVector, x: Tensor) -> Tensor:
    """Validated ``class_counts`` (C,) in the dtype and on the device of logits ``x`` (N, C)."""
    counts = check_class_vector("class_counts", class_counts, x.shape[1], dtype=x.dtype, device=x.device)
    if counts is None:
        raise ValueError("class_counts must be given (positive training samples per class), got None")
    return counts


def effective_number_weights(counts: Tensor, beta: float) -> Tensor:
    """Class-balanced weights (1 - beta) / (1 - beta ** n_c) (Cui et al., CVPR 2019).

    Normalised to sum to the number of classes. Counts below 1 count as 1 (a class with no
    training example gets the largest weight instead of an infinite one). beta = 0 gives ones.
    """
    n = counts.clamp_min(1.0)
    if beta == 0:
        return torch.ones_like(n)
    # 1 - beta ** n computed as -expm1(n * log(beta)): exact for beta close to 1.
    weights = (1.0 - beta) / -torch.expm1(n * math.log(beta))
    return weights * (n.numel() / weights.sum())


def log_prior(counts: Tensor) -> Tensor:
    """log(n_c / sum n) of the training label distribution; counts below 1 count as 1."""
    n = counts.clamp_min(1.0)
    return torch.log(n) - torch.log(n.sum())
