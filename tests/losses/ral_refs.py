"""Independent float64 reference formulas for the RAL tests, written from docs/ral-spec.md,
and the released code of RAL and of some peers restated (never by calling ral.losses). Torch
float64 so that autograd gives reference gradients."""

from __future__ import annotations

import torch
import torch.nn.functional as F

PAPER = dict(gamma_pos=0.0, gamma_neg=4.0, tau=0.05, lam=1.5, eps_pos=(-1.0, 1.25), eps_neg=())


def _sum_pow(t, coefficients, offset=0.0):
    """sum_k c_k * t ** (k + offset), k = 1..K (a zero tensor for no coefficients)."""
    total = torch.zeros_like(t)
    for k, c in enumerate(coefficients, start=1):
        total = total + c * t ** (k + offset)
    return total


def ral_terms(
    p,
    one_minus_p,
    log_p,
    log_one_minus_p,
    y,
    *,
    gamma_pos=0.0,
    gamma_neg=4.0,
    tau=0.05,
    lam=1.5,
    eps_pos=(-1.0, 1.25),
    eps_neg=(),
    alpha=None,
    beta=None,
    hill=True,
    weight_form="paper",
):
    """Element-wise y * L+ + (1 - y) * L- of the spec from the probability terms (float64)."""
    if alpha is None:  # log form
        l_pos = one_minus_p**gamma_pos * (-log_p + _sum_pow(one_minus_p, eps_pos))
    else:  # series form, Eq. 6
        l_pos = _sum_pow(one_minus_p, alpha, offset=gamma_pos)
    p_tau = torch.clamp(p - tau, min=0.0)
    if beta is None:
        neg_log = -log_one_minus_p if tau == 0 else -torch.log1p(-p_tau)
        l_neg = p_tau**gamma_neg * (neg_log + _sum_pow(p_tau, eps_neg))
    else:
        l_neg = _sum_pow(p_tau, beta, offset=gamma_neg)
    if hill:
        if weight_form == "paper":
            weight = lam - p
        else:  # the authors' released code
            weight = (lam - p) * p**2 * (lam - 1.0 + p_tau)
        l_neg = weight * l_neg
    return y * l_pos + (1 - y) * l_neg


def ral_multilabel(x, y, **params):
    """Element-wise multi-label RAL (N, C) for float64 logits ``x`` and targets ``y``."""
    return ral_terms(torch.sigmoid(x), torch.sigmoid(-x), F.logsigmoid(x), F.logsigmoid(-x), y, **params)


def ral_single(x, onehot, **params):
    """Element-wise single-label RAL (N, C) with p = softmax(x) (moderate logits only)."""
    log_p = torch.log_softmax(x, dim=1)
    p = log_p.exp()
    return ral_terms(p, 1 - p, log_p, torch.log1p(-p), onehot, **params)


def reduce(loss, *, reduction="mean", mask=None, class_weights=None, per_sample=False):
    """Weight, mask and reduce like the spec: mean over valid elements (or samples)."""
    if class_weights is not None:
        loss = loss * torch.as_tensor(class_weights, dtype=loss.dtype)
    valid = torch.ones_like(loss) if mask is None else torch.as_tensor(mask, dtype=loss.dtype)
    loss = loss * valid
    if per_sample:
        loss, valid = loss.sum(dim=1), valid[:, 0]
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / valid.sum().clamp_min(1.0)


def asl(x, y, *, gamma_pos, gamma_neg, clip):
    """ASL (Ridnik et al. 2021), element-wise, with exact logs instead of log(clamp(p))."""
    p = torch.sigmoid(x)
    p_m = torch.clamp(p - clip, min=0.0)
    log_neg = F.logsigmoid(-x) if clip == 0 else torch.log1p(-p_m)
    return -(y * (1 - p) ** gamma_pos * F.logsigmoid(x) + (1 - y) * p_m**gamma_neg * log_neg)


def official_ralloss(
    x, y, *, gamma_neg=4.0, gamma_pos=0.0, clip=0.05, lamb=1.5, epsilon_neg=0.0, epsilon_pos=1.0, epsilon_pos_pow=-2.5
):
    """kalelpark/RAL ``Ralloss.forward`` restated term by term with exact logs (summed)."""
    x_sigmoid = torch.sigmoid(x)
    xs_pos = x_sigmoid
    xs_neg = torch.clamp(1 - x_sigmoid + clip, max=1.0)
    log_pos = F.logsigmoid(x)
    log_neg = torch.log(xs_neg)
    los_pos = y * (log_pos + epsilon_pos * (1 - xs_pos) + epsilon_pos_pow * 0.5 * (1 - xs_pos) ** 2)
    los_neg = (1 - y) * (log_neg + epsilon_neg * xs_neg) * (lamb - x_sigmoid) * x_sigmoid**2 * (lamb - xs_neg)
    one_sided_w = (1 - xs_pos * y - xs_neg * (1 - y)) ** (gamma_pos * y + gamma_neg * (1 - y))
    return -((los_pos + los_neg) * one_sided_w).sum()


def official_two_way_loss(x, y, t_pos=4.0, t_neg=1.0):
    """tk1980/TwowayMultiLabelLoss ``TwoWayLoss.forward`` restated (its -100 offset for non-members)."""
    class_mask = (y > 0).any(dim=0)
    sample_mask = (y > 0).any(dim=1)
    pmask = torch.where(y > 0, 0.0, -100.0)
    nmask = torch.where(y == 0, 0.0, -100.0)
    p_class = torch.logsumexp(-x / t_pos + pmask, dim=0).mul(t_pos)[class_mask]
    p_sample = torch.logsumexp(-x / t_pos + pmask, dim=1).mul(t_pos)[sample_mask]
    n_class = torch.logsumexp(x / t_neg + nmask, dim=0).mul(t_neg)[class_mask]
    n_sample = torch.logsumexp(x / t_neg + nmask, dim=1).mul(t_neg)[sample_mask]
    return F.softplus(n_class + p_class).mean() + F.softplus(n_sample + p_sample).mean()


def official_splc(x, y, epoch, tau=0.6, change_epoch=1, margin=1.0, gamma=2.0):
    """The Hill paper's released ``SPLC.forward`` restated (0/1 targets, summed)."""
    logits = torch.where(y == 1, x - margin, x)
    if epoch >= change_epoch:
        y = torch.where(torch.sigmoid(logits) > tau, torch.ones_like(y), y)
    pred = torch.sigmoid(logits)
    pt = (1 - pred) * y + pred * (1 - y)
    loss = -(y * F.logsigmoid(logits) + (1 - y) * F.logsigmoid(-logits)) * pt**gamma
    return loss.sum()
