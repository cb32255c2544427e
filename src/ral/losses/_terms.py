"""Numerically safe building blocks shared by the losses.

The probability terms come in log space (:class:`Probabilities`, from
:func:`sigmoid_probabilities` or :func:`softmax_probabilities`), so no loss ever takes
``log(clamp(p, eps))``. Every helper works in the dtype of its input (float32, or float64 for
exact checks) and has a finite gradient for finite logits, including where a probability is
exactly 0 or 1 in floating point and for fractional exponents.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor


class Probabilities:
    """The probability terms of (N, C) logits: ``p``, ``q = 1 - p`` and their negative logs
    ``nll_p = -log p``, ``nll_q = -log q``, all finite for finite logits. Each is computed on
    first use (by the class's ``formulas``), so a loss pays, in time and autograd memory, only
    for the terms it reads."""

    #: term name -> how it is computed from the terms object (its logits ``x`` and other terms)
    formulas: ClassVar[dict[str, Callable[[Probabilities], Tensor]]] = {}

    def __init__(self, x: Tensor) -> None:
        self.x = x
        self.computed: dict[str, Tensor] = {}

    def term(self, name: str) -> Tensor:
        """The term ``name``, computed once."""
        if name not in self.computed:
            self.computed[name] = self.formulas[name](self)
        return self.computed[name]

    p = property(lambda self: self.term("p"))
    q = property(lambda self: self.term("q"))
    nll_p = property(lambda self: self.term("nll_p"))
    nll_q = property(lambda self: self.term("nll_q"))


class SigmoidProbabilities(Probabilities):
    """The terms of p = sigmoid(x): -log p = softplus(-x), -log(1 - p) = softplus(x).

    1 - p is sigmoid(-x) and both logs are softplus (not softplus(x) - x): each is accurate to
    a few ulp, with no cancellation at confident logits.
    """

    formulas: ClassVar[dict[str, Callable[[Probabilities], Tensor]]] = {
        "p": lambda t: torch.sigmoid(t.x),
        "q": lambda t: torch.sigmoid(-t.x),
        "nll_p": lambda t: F.softplus(-t.x),
        "nll_q": lambda t: F.softplus(t.x),
    }


def _softmax_log_q(t: Probabilities) -> Tensor:
    """log(1 - p) of a softmax, exact for every class (see :class:`SoftmaxProbabilities`)."""
    top = t.x.argmax(dim=1, keepdim=True)
    lse = torch.logsumexp(t.x, dim=1, keepdim=True)
    log_q_top = torch.logsumexp(t.x.scatter(1, top, float("-inf")), dim=1, keepdim=True) - lse
    # p_top is zeroed before log1p so that no infinite slope (p_top = 1) meets the zero of scatter
    return torch.log1p(-t.p.scatter(1, top, 0.0)).scatter(1, top, log_q_top)


class SoftmaxProbabilities(Probabilities):
    """The terms of p = softmax(x, dim=1) for (N, C) logits, C >= 2.

    ``log(1 - p_c)`` is ``log1p(-p_c)`` for every class but the row's arg-max (where
    p_c <= 1/2, so it is exact) and ``logsumexp(x without x_c) - logsumexp(x)`` for the
    arg-max, so it stays finite even where p_c rounds to 1.
    """

    formulas: ClassVar[dict[str, Callable[[Probabilities], Tensor]]] = {
        "log_p": lambda t: t.x - torch.logsumexp(t.x, dim=1, keepdim=True),
        "log_q": _softmax_log_q,
        "p": lambda t: t.term("log_p").exp(),
        "q": lambda t: t.term("log_q").exp(),
        "nll_p": lambda t: -t.term("log_p"),
        "nll_q": lambda t: -t.term("log_q"),
    }


def sigmoid_probabilities(x: Tensor) -> SigmoidProbabilities:
    """The probability terms of p = sigmoid(x) (see :class:`SigmoidProbabilities`)."""
    return SigmoidProbabilities(x)


def softmax_probabilities(x: Tensor) -> SoftmaxProbabilities:
    """The probability terms of p = softmax(x, dim=1) (see :class:`SoftmaxProbabilities`)."""
    return SoftmaxProbabilities(x)


def power_from_nll(nll: Tensor, exponent: float) -> Tensor:
    """``base ** exponent`` from ``nll = -log(base)``: exp(-exponent * nll) (exponent != 0)."""
    return torch.exp(nll * -exponent)


def safe_pow(base: Tensor, exponent: float) -> Tensor:
    """``base ** exponent`` for ``base >= 0`` with a zero (not NaN) gradient where base == 0.

    ``0 ** 0`` is 1 and ``0 ** e`` is 0 for e > 0, as in :func:`torch.pow`. Exponents >= 1
    have a finite slope at 0 and need no guard.
    """
    if exponent == 0:
        return torch.ones_like(base)
    if exponent >= 1:
        return base.pow(exponent)
    positive = base > 0
    # Double where: the pow branch never sees a 0 base, so its gradient stays finite.
    safe_base = torch.where(positive, base, 1.0)
    return torch.where(positive, safe_base.pow(exponent), 0.0)


def maybe_detach(weight: Tensor, detach: bool) -> Tensor:
    """``weight.detach()`` when ``detach`` (a constant in backprop, ASL's
    ``disable_torch_grad_focal_loss`` without a global grad toggle), else ``weight``."""
    return weight.detach() if detach else weight


def polynomial(base: Tensor, coefficients: Sequence[float]) -> Tensor:
    """``sum_k coefficients[k] * base ** (k + 1)``, at least one coefficient.

    Term by term rather than Horner's rule: autograd then keeps only ``base`` (for the powers),
    not one intermediate per coefficient.
    """
    value = coefficients[0] * base
    for power, coefficient in enumerate(coefficients[1:], start=2):
        value = value + coefficient * base.pow(power)
    return value


def plus_polynomial(value: Tensor, base: Tensor, coefficients: Sequence[float]) -> Tensor:
    """``value + polynomial(base, coefficients)``; ``value`` itself for no coefficients."""
    return value + polynomial(base, coefficients) if coefficients else value


def focused(focal: Tensor | None, bracket: Tensor, detach: bool) -> Tensor:
    """``focal * bracket`` (``focal`` detached when ``detach``); ``bracket`` when ``focal`` is None
    (exponent 0: the factor is 1)."""
    return bracket if focal is None else maybe_detach(focal, detach) * bracket


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
    bracket = polynomial(t.q, series) if series is not None else plus_polynomial(t.nll_p, t.q, eps)
    focal = power_from_nll(t.nll_q, gamma) if gamma else None
    return focused(focal, bracket, detach_focal)


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
        shifted = t.p
        focal = power_from_nll(t.nll_p, gamma) if gamma else None
        nll = t.nll_q if series is None else None
    else:
        shifted = torch.relu(t.p - clip)
        focal = safe_pow(shifted, gamma) if gamma else None
        nll = -torch.log1p(-shifted) if series is None else None
    bracket = polynomial(shifted, series) if series is not None else plus_polynomial(nll, shifted, eps)
    return focused(focal, bracket, detach_focal)


def softmax_focal_terms(z: Tensor, q: Tensor, gamma: float = 0.0) -> Tensor:
    """Per-class softmax cross-entropy ``-q * (1 - p) ** gamma * log p`` (N, C), p = softmax(z).

    gamma = 0 is plain cross-entropy; 1 - p is -expm1(log p), taken to a power safely.
    """
    nll = -F.log_softmax(z, dim=1)
    if gamma == 0:
        return q * nll
    return q * safe_pow(-torch.expm1(-nll), gamma) * nll


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
