"""RAL's element-wise formula written plainly, differentiated by autograd (``impl="autograd"``).

This is the readable statement of the loss (docs/losses.md, "Robust Asymmetric Loss in
depth"); the fused implementation (``ral_fused.py``) must agree with it. Both use the
probability terms below, which are computed in log space so that no term is ``log(0)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ral.losses._terms import polynomial, power_from_log, safe_pow
from ral.losses.ral_params import RALParams


def sigmoid_terms(logits: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(p, 1 - p, -log p, -log(1 - p))`` for p = sigmoid(logits), each (N, C), all finite."""
    # Two softplus, not softplus(x) - x: the slope of -log p must not be the difference of two
    # large slopes (float32 cancellation where it is multiplied by a large loss).
    neg_log_q = torch.nn.functional.softplus(logits)  # -log(1 - p)
    neg_log_p = torch.nn.functional.softplus(-logits)  # -log p
    return torch.sigmoid(logits), torch.sigmoid(-logits), neg_log_p, neg_log_q


def softmax_logs(logits: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(log p, log(1 - p), top)`` for p = softmax(logits, dim=1); top (N, 1) is the arg-max.

    ``log(1 - p_c)`` is ``log1p(-p_c)`` for every class but the row's arg-max (where
    p_c <= 1/2, so it is exact) and ``logsumexp(x without x_c) - logsumexp(x)`` for the
    arg-max, so it stays finite even when p_c rounds to 1.
    """
    if logits.shape[1] < 2:
        raise ValueError(f"single-label logits need at least 2 classes, got shape {tuple(logits.shape)}")
    lse = torch.logsumexp(logits, dim=1, keepdim=True)
    log_p = logits - lse
    top = logits.argmax(dim=1, keepdim=True)
    others = logits.scatter(1, top, float("-inf"))
    log_q_top = torch.logsumexp(others, dim=1, keepdim=True) - lse
    # p_top is zeroed before log1p so that no infinite slope (p_top = 1) meets the zero of scatter
    log_q = torch.log1p(-log_p.exp().scatter(1, top, 0.0)).scatter(1, top, log_q_top)
    return log_p, log_q, top


def softmax_terms(logits: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(p, 1 - p, -log p, -log(1 - p))`` for p = softmax(logits, dim=1), each (N, C)."""
    log_p, log_q, _ = softmax_logs(logits)
    return log_p.exp(), log_q.exp(), -log_p, -log_q


def ral_elementwise(
    p: Tensor, q: Tensor, neg_log_p: Tensor, neg_log_q: Tensor, targets: Tensor, params: RALParams
) -> Tensor:
    """Element-wise RAL ``y * L+ + (1 - y) * L-`` (N, C) from the probability terms.

    L+ = (1-p)^gamma_pos * (-log p + sum_m eps_pos[m] (1-p)^m)     (log form)
       = sum_m alpha_m (1-p)^(m + gamma_pos)                        (series form)
    L- = w(p) * p_tau^gamma_neg * (-log(1-p_tau) + sum_n eps_neg[n] p_tau^n)   (log form)
       = w(p) * sum_n beta_n p_tau^(n + gamma_neg)                            (series form)
    with p_tau = max(p - tau, 0) and w(p) = lam - p (Eq. 6), (lam - p) p^2 (lam - 1 + p_tau)
    ("official-code") or 1 (hill=False).
    """
    prm = params
    if prm.alpha is None:
        positive = neg_log_p + polynomial(q, prm.eps_pos)
    else:
        positive = polynomial(q, prm.alpha)
    if prm.gamma_pos > 0:
        focus_pos = power_from_log(-neg_log_q, prm.gamma_pos)  # (1 - p)^gamma_pos
        positive = positive * (focus_pos.detach() if prm.detach_focal else focus_pos)

    p_tau = p if prm.tau == 0 else torch.relu(p - prm.tau)  # no slope at p = tau, like the fused path
    if prm.beta is None:
        neg_log = neg_log_q if prm.tau == 0 else -torch.log1p(-p_tau)
        negative = neg_log + polynomial(p_tau, prm.eps_neg)
    else:
        negative = polynomial(p_tau, prm.beta)
    if prm.gamma_neg > 0:
        if prm.tau == 0:
            focus_neg = power_from_log(-neg_log_p, prm.gamma_neg)  # p^gamma_neg
        else:
            focus_neg = safe_pow(p_tau, prm.gamma_neg)
        negative = negative * (focus_neg.detach() if prm.detach_focal else focus_neg)
    if prm.hill:
        weight = prm.lam - p
        if prm.weight_form == "official-code":
            weight = weight * p * p * (p_tau + (prm.lam - 1.0))
        negative = negative * weight
    return targets * positive + (1.0 - targets) * negative
