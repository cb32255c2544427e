"""Numerically safe building blocks shared by the losses.

The probability terms come in log space (:class:`Probabilities`, from
:func:`sigmoid_probabilities` or :func:`softmax_probabilities`), so no loss ever takes
``log(clamp(p, eps))``. Every helper works in the dtype of its input (float32, or float64 for
exact checks) and has a finite gradient for finite logits, including where a probability is
exactly 0 or 1 in floating point and for fractional exponents.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor


class Probabilities(NamedTuple):
    """``p``, ``q = 1 - p`` and their logarithms, each (N, C), all finite for finite logits."""

    p: Tensor
    q: Tensor
    log_p: Tensor
    log_q: Tensor


def sigmoid_probabilities(x: Tensor) -> Probabilities:
    """The terms of p = sigmoid(x): log p = -softplus(-x), log(1 - p) = -softplus(x).

    Two softplus rather than softplus(x) - x, and 1 - p as sigmoid(-x): each is accurate to a
    few ulp, with no cancellation at confident logits.
    """
    return Probabilities(torch.sigmoid(x), torch.sigmoid(-x), -F.softplus(-x), -F.softplus(x))


def softmax_probabilities(x: Tensor) -> Probabilities:
    """The terms of p = softmax(x, dim=1) for (N, C) logits, C >= 2.

    ``log(1 - p_c)`` is ``log1p(-p_c)`` for every class but the row's arg-max (where
    p_c <= 1/2, so it is exact) and ``logsumexp(x without x_c) - logsumexp(x)`` for the
    arg-max, so it stays finite even where p_c rounds to 1.
    """
    lse = torch.logsumexp(x, dim=1, keepdim=True)
    log_p = x - lse
    top = x.argmax(dim=1, keepdim=True)
    log_q_top = torch.logsumexp(x.scatter(1, top, float("-inf")), dim=1, keepdim=True) - lse
    # p_top is zeroed before log1p so that no infinite slope (p_top = 1) meets the zero of scatter
    log_q = torch.log1p(-log_p.exp().scatter(1, top, 0.0)).scatter(1, top, log_q_top)
    return Probabilities(log_p.exp(), log_q.exp(), log_p, log_q)


def power_from_log(log_base: Tensor, exponent: float) -> Tensor:
    """``base ** exponent`` from ``log(base)``: exp(exponent * log_base); ones for exponent 0."""
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
    t: Probabilities,
    gamma: float = 0.0,
    eps: Sequence[float] = (),
    *,
    series: Sequence[float] | None = None,
    detach_focal: bool = False,
) -> Tensor:
    """Loss of a positive label, element-wise (N, C)::

    (1 - p)^gamma * (-log p + sum_m eps[m] (1 - p)^m)      log form: BCE, focal, ASL, APL
    (1 - p)^gamma * sum_m series[m] (1 - p)^m              series form (Eq. 6 of RAL)
    """
    focal = maybe_detach(power_from_log(t.log_q, gamma), detach_focal)
    if series is not None:
        return focal * polynomial(t.q, series)
    return focal * (-t.log_p + polynomial(t.q, eps))


def negative_part(
    t: Probabilities,
    gamma: float = 0.0,
    clip: float = 0.0,
    eps: Sequence[float] = (),
    *,
    series: Sequence[float] | None = None,
    detach_focal: bool = False,
) -> Tensor:
    """Loss of a negative label, element-wise (N, C), with p_m = max(p - clip, 0) (ASL's
    probability margin)::

        p_m^gamma * (-log(1 - p_m) + sum_n eps[n] p_m^n)       log form
        p_m^gamma * sum_n series[n] p_m^n                      series form

    For clip = 0, -log(1 - p) is -log q; otherwise -log1p(-p_m), finite since p_m <= 1 - clip.
    """
    if clip == 0:
        shifted, nll = t.p, -t.log_q
        focal = power_from_log(t.log_p, gamma)
    else:
        shifted = torch.relu(t.p - clip)
        nll = -torch.log1p(-shifted)
        focal = safe_pow(shifted, gamma)
    focal = maybe_detach(focal, detach_focal)
    if series is not None:
        return focal * polynomial(shifted, series)
    return focal * (nll + polynomial(shifted, eps))


def softmax_focal_terms(z: Tensor, q: Tensor, gamma: float = 0.0) -> Tensor:
    """Per-class softmax cross-entropy ``-q * (1 - p) ** gamma * log p`` (N, C), p = softmax(z).

    gamma = 0 is plain cross-entropy; 1 - p is -expm1(log p), taken to a power safely.
    """
    log_p = F.log_softmax(z, dim=1)
    focal = safe_pow(-torch.expm1(log_p), gamma)
    return -q * focal * log_p


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


def log_prior_odds(counts: Tensor, num_samples: float) -> Tensor:
    """log(pi_c / (1 - pi_c)), pi_c = n_c / N, the log-odds of label c in the training set
    (N = ``num_samples`` training images); counts are clamped to [1, N - 1]."""
    n = counts.clamp(1.0, num_samples - 1.0)
    return torch.log(n) - torch.log(num_samples - n)
