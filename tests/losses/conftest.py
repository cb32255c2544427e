"""Shared setup of tests/losses: one intra-op thread, the RAL implementations under test
(fixture ``impl``), and independent float64 reference formulas, never computed by calling
ral.losses: ``ral_ref`` (torch, written from docs/ral-spec.md, and released code of RAL and of
some peers restated, so autograd gives reference gradients) and ``peer_ref`` (NumPy, the peer
losses from the papers' maths in docs/losses.md)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F


@pytest.fixture(autouse=True, scope="module")
def _single_intra_op_thread():
    """The loss tests use tiny tensors: one intra-op thread avoids thread-pool overhead (tens
    of ms per op on a busy 2-core machine). Restored after each test module."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(params=["eager", pytest.param("compiled", marks=pytest.mark.slow)])
def impl(request) -> str:
    """Both RAL implementations: the default eager formula, and the opt-in compiled path (it
    compiles once per setting, seconds each: slow suite only)."""
    return request.param


@pytest.fixture(scope="session")
def ral_ref() -> SimpleNamespace:
    """The torch float64 reference formulas of RAL and the released code restated (below)."""
    names = ["PAPER", "ral_terms", "ral_multilabel", "ral_single", "reduce", "asl", "official_ralloss"]
    names += ["official_two_way_loss", "official_splc"]
    return SimpleNamespace(**{name: globals()[name] for name in names})


@pytest.fixture(scope="session")
def peer_ref() -> SimpleNamespace:
    """The NumPy float64 reference formulas of the peer losses (below)."""
    names = ["softplus", "sigmoid", "bce", "focal", "apl", "hill", "cb_weights", "cb", "db", "splc", "zlpr"]
    names += ["two_way", "log_softmax", "one_hot", "focal_ce", "ce", "poly1", "logit_adjusted"]
    names += ["balanced_softmax", "ldam", "reduce_rows"]
    return SimpleNamespace(asl=asl_np, reduce=reduce_np, **{name: globals()[name] for name in names})


# ============================================================================= RAL (torch float64)
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


# ============================================================================= peers (NumPy float64)
def softplus(x):
    """log(1 + e^x), exact in float64."""
    return np.logaddexp(0.0, x)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def neg_log_p(x):
    """-log sigmoid(x)."""
    return softplus(-x)


def neg_log_1mp(x):
    """-log(1 - sigmoid(x))."""
    return softplus(x)


# ----------------------------------------------------------------------------- multi-label
def bce(x, y, pos_weight=1.0):
    return pos_weight * y * neg_log_p(x) + (1 - y) * neg_log_1mp(x)


def focal(x, y, alpha=0.25, gamma=2.0):
    p = sigmoid(x)
    a_pos, a_neg = (1.0, 1.0) if alpha is None else (alpha, 1.0 - alpha)
    return a_pos * y * (1 - p) ** gamma * neg_log_p(x) + a_neg * (1 - y) * p**gamma * neg_log_1mp(x)


def _series(t, eps):
    return sum(e * t ** (m + 1) for m, e in enumerate(eps)) if eps else 0.0 * t


def apl(x, y, gamma_pos=0.0, gamma_neg=4.0, clip=0.05, eps_pos=(-1.0, 1.25), eps_neg=()):
    p = sigmoid(x)
    p_m = np.maximum(p - clip, 0.0)
    positive = (1 - p) ** gamma_pos * (neg_log_p(x) + _series(1 - p, eps_pos))
    negative = p_m**gamma_neg * (-np.log1p(-p_m) + _series(p_m, eps_neg))
    return y * positive + (1 - y) * negative


def asl_np(x, y, gamma_pos=0.0, gamma_neg=4.0, clip=0.05):
    p = sigmoid(x)
    p_m = np.maximum(p - clip, 0.0)
    return y * (1 - p) ** gamma_pos * neg_log_p(x) + (1 - y) * p_m**gamma_neg * -np.log1p(-p_m)


def hill(x, y, lam=1.5, margin=1.0, gamma=2.0):
    p = sigmoid(x)
    p_margin = sigmoid(x - margin)
    positive = (1 - p_margin) ** gamma * neg_log_p(x - margin)
    return y * positive + (1 - y) * (lam - p) * p**2


def cb_weights(counts, beta):
    n = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
    w = (1 - beta) / (1 - beta**n)
    return w * len(n) / w.sum()


def cb(x, y, counts, beta=0.9999, base="focal", gamma=2.0):
    inner = focal(x, y, alpha=None, gamma=gamma) if base == "focal" else bce(x, y)
    return cb_weights(counts, beta)[None, :] * inner


def db(x, y, counts, num_samples, map_alpha=0.1, map_beta=10.0, map_mu=0.2, init_bias=0.05, neg_scale=2.0, gamma=0.0):
    n = np.asarray(counts, dtype=np.float64)
    inv = 1.0 / np.maximum(n, 1.0)
    weights = np.empty_like(x)
    for k in range(x.shape[0]):
        rate = (y[k] * inv).sum()  # instance-level sampling probability (up to a constant)
        weights[k] = map_alpha + 1.0 if rate == 0 else map_alpha + sigmoid(map_beta * (inv / rate - map_mu))
    prior = np.clip(n, 1.0, num_samples - 1.0) / num_samples
    z = x + init_bias * np.log(prior / (1 - prior))
    lam = neg_scale
    positive = (1 - sigmoid(z)) ** gamma * neg_log_p(z)
    negative = sigmoid(lam * z) ** gamma * neg_log_1mp(lam * z) / lam
    return weights * (y * positive + (1 - y) * negative)


def splc(x, y, correcting, threshold=0.6, margin=1.0, gamma=2.0):
    """SPLC with the focal margin loss (Zhang et al. 2021): element-wise, one phase."""
    p = sigmoid(x)
    p_margin = sigmoid(x - margin)
    positive = (1 - p_margin) ** gamma * neg_log_p(x - margin)
    negative = p**gamma * neg_log_1mp(x)
    if correcting:  # a confident negative is trained as a positive (no margin)
        negative = np.where(p > threshold, (1 - p) ** gamma * neg_log_p(x), negative)
    return y * positive + (1 - y) * negative


def zlpr(x, y, valid):
    """ZLPR per sample (N,): log(1 + sum_neg e^x) + log(1 + sum_pos e^-x), soft targets as weights."""
    w_pos, w_neg = np.where(valid, y, 0.0), np.where(valid, 1 - y, 0.0)
    return np.log(1 + (w_neg * np.exp(x)).sum(axis=1)) + np.log(1 + (w_pos * np.exp(-x)).sum(axis=1))


def _two_way_term(logits, w_pos, w_neg, t_pos, t_neg):
    """softplus(T_n log sum_n w e^(x/T_n) + T_p log sum_p w e^(-x/T_p)) of one set; 0 without negatives."""
    negatives = (w_neg * np.exp(logits / t_neg)).sum()
    if negatives == 0:
        return 0.0
    inner = t_neg * np.log(negatives) + t_pos * np.log((w_pos * np.exp(-logits / t_pos)).sum())
    return softplus(inner)


def two_way(x, y, valid, t_pos=4.0, t_neg=1.0, reduction="mean"):
    """Two-way loss (Kobayashi 2023): rows (samples) and columns (classes) that hold a positive."""
    w_pos, w_neg = np.where(valid, y, 0.0), np.where(valid, 1 - y, 0.0)
    total = 0.0
    for logits, pos, neg in ((x, w_pos, w_neg), (x.T, w_pos.T, w_neg.T)):
        terms = [_two_way_term(lg, wp, wn, t_pos, t_neg) for lg, wp, wn in zip(logits, pos, neg) if (wp > 0).any()]
        total += sum(terms) if reduction == "sum" else sum(terms) / max(len(terms), 1)
    return total


# ----------------------------------------------------------------------------- single-label
def log_softmax(z):
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def one_hot(index, num_classes, smoothing=0.0):
    q = np.eye(num_classes)[index]
    return q * (1 - smoothing) + smoothing / num_classes


def focal_ce(x, q, gamma=2.0):
    log_p = log_softmax(x)
    return -q * (1 - np.exp(log_p)) ** gamma * log_p


def ce(x, q):
    return -q * log_softmax(x)


def poly1(x, q, epsilon=1.0):
    """Poly-1 (Leng et al. 2022) per class: q_c (-log p_c + epsilon (1 - p_c))."""
    log_p = log_softmax(x)
    return q * (-log_p + epsilon * (1 - np.exp(log_p)))


def logit_adjusted(x, q, counts, tau=1.0):
    n = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
    return ce(x + tau * np.log(n / n.sum())[None, :], q)


def balanced_softmax(x, q, counts):
    # Ren et al.: p_c = n_c e^{x_c} / sum_j n_j e^{x_j}
    n = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
    weighted = n[None, :] * np.exp(x - x.max(axis=1, keepdims=True))
    return -q * np.log(weighted / weighted.sum(axis=1, keepdims=True))


def ldam(x, q, counts, max_margin=0.5, scale=30.0):
    m = np.maximum(np.asarray(counts, dtype=np.float64), 1.0) ** -0.25
    m = m * max_margin / m.max()
    return ce(scale * (x - q * m[None, :]), q)


# ----------------------------------------------------------------------------- reductions
def reduce_np(elementwise, *, valid=None, class_weights=None, reduction="mean"):
    """Multi-label reduction: weights per class, ignored elements out of sum and count."""
    loss = elementwise if class_weights is None else elementwise * np.asarray(class_weights)[None, :]
    valid = np.ones_like(loss, dtype=bool) if valid is None else valid
    loss = np.where(valid, loss, 0.0)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / max(valid.sum(), 1)


def reduce_rows(elementwise, *, valid_rows=None, class_weights=None, reduction="mean"):
    """Single-label reduction: weighted sum over classes, then the multi-label reduction of
    that one column over the valid samples."""
    per_sample = reduce_np(elementwise, class_weights=class_weights, reduction="none").sum(axis=1, keepdims=True)
    valid = None if valid_rows is None else np.asarray(valid_rows)[:, None]
    reduced = reduce_np(per_sample, valid=valid, reduction=reduction)
    return reduced[:, 0] if reduction == "none" else reduced
