"""RAL's element-wise loss and closed-form derivative, computed together (the fused kernel).

For one block of elements the kernel returns ``-l`` (the negated loss) and ``v = dl/dx``,
where x is the logit of a sigmoid (for softmax inputs the driver applies the Jacobian, see
``ral_fused.py``). Notation: p, q = 1 - p, s = p q = dp/dx; docs/losses.md ("RAL's
closed-form gradient") derives every formula below.

Every temporary lives in a :class:`Workspace` buffer that is reused by the next block, so a
call allocates a handful of block-sized buffers once instead of one tensor per operation.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ral.losses.ral_params import RALParams

_aten = torch.ops.aten


class Workspace:
    """Block-sized scratch buffers for one call: ``ws()`` hands out a free (rows, C) buffer.

    ``release(t)`` gives a buffer back for reuse within the block (fewer distinct buffers: a
    smaller cache footprint and less memory); ``reset(rows)`` frees all for the next block.
    """

    def __init__(self, rows: int, cols: int, like: Tensor) -> None:
        self._size = (rows, cols)
        self._like = like
        self._buffers: list[Tensor] = []
        self._free: list[int] = []
        self._taken: dict[int, int] = {}
        self._rows = rows
        self._consts: dict[float, Tensor] = {}

    def reset(self, rows: int) -> None:
        self._free = list(range(len(self._buffers) - 1, -1, -1))
        self._taken = {}
        self._rows = rows

    def __call__(self) -> Tensor:
        if self._free:
            index = self._free.pop()
        else:
            index = len(self._buffers)
            self._buffers.append(self._like.new_empty(self._size))
        buffer = self._buffers[index]
        view = buffer if self._rows == self._size[0] else buffer[: self._rows]
        self._taken[id(view)] = index
        return view

    def release(self, *tensors: Tensor | float | None, keep: tuple[Tensor | None, ...] = ()) -> None:
        """Give the buffers of ``tensors`` back, except those of ``keep`` (aliases are common:
        compared by identity; anything not handed out by this workspace is ignored)."""
        kept = {id(t) for t in keep}
        for tensor in tensors:
            if id(tensor) not in kept:
                index = self._taken.pop(id(tensor), None)
                if index is not None:
                    self._free.append(index)

    def const(self, value: float) -> Tensor:
        """A 0-dim tensor holding ``value`` (for ops whose scalar operand must be a tensor)."""
        if value not in self._consts:
            self._consts[value] = self._like.new_full((), value)
        return self._consts[value]


# --- polynomials and powers ------------------------------------------------------------------
def _horner(t: Tensor, c: tuple[float, ...], ws: Workspace, out: Tensor | None = None) -> Tensor | float:
    """c_1 + c_2 t + ... + c_K t^(K-1) (the float c_1 when K = 1), in K - 1 passes."""
    if len(c) == 1:
        return c[0]
    acc = torch.add(ws.const(c[-2]), t, alpha=c[-1], out=ws() if out is None else out)
    for ck in reversed(c[:-2]):
        torch.addcmul(ws.const(ck), t, acc, out=acc)
    return acc


def _derivative(c: tuple[float, ...]) -> tuple[float, ...]:
    """Coefficients of d/dt sum_k c_k t^k, i.e. k c_k for t^(k-1)."""
    return tuple(k * ck for k, ck in enumerate(c, start=1))


def _negated(c: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(-ck for ck in c)


def _int_pow(t: Tensor, k: int, ws: Workspace) -> Tensor | None:
    """t ** k for an integer k >= 0 (``None`` means 1; k = 1 returns ``t`` itself)."""
    if k == 0:
        return None
    if k == 1:
        return t
    if k <= 3:
        return torch.pow(t, k, out=ws())  # torch has fast paths for 2 and 3 only
    half = _int_pow(t, k // 2, ws)
    result = torch.mul(half, half, out=ws())
    return result.mul_(t) if k % 2 else result


def _axpy(acc: Tensor, t: Tensor, factor: Tensor | float, sign: float = 1.0) -> Tensor:
    """acc += sign * t * factor, in place (``factor`` a tensor or a float)."""
    if isinstance(factor, Tensor):
        return acc.addcmul_(t, factor, value=sign)
    return acc.add_(t, alpha=sign * factor)


# --- the two sides ---------------------------------------------------------------------------
def _positive(p, q, ns, log_p, log_q, prm: RALParams, grad: bool, ws: Workspace):
    """-L+ and -v+ for L+ = Q A with Q = q^gamma_pos (``log_p`` is overwritten; ns = -s).

    log form: A = -log p + sum_m e_m q^m,  -dA/dx = q + s D(q),  D = sum_m m e_m q^(m-1)
    series:   A = sum_m a_m q^m,           -dA/dx = s D(q),      D = sum_m m a_m q^(m-1)
    -v+ = Q (-dA/dx + gamma_pos p A)   (the second term is dropped with detach_focal)
    """
    gp = 0.0 if prm.detach_focal else prm.gamma_pos
    slope = None
    if prm.alpha is None:
        neg_loss = log_p
        coef = _horner(q, prm.eps_pos, ws) if prm.eps_pos else 0.0
        if prm.eps_pos:
            _axpy(neg_loss, q, coef, -1.0)
        if grad:
            if isinstance(coef, Tensor):
                if len(prm.eps_pos) == 2:  # D = (e1 + e2 q) + e2 q
                    d = coef.add_(q, alpha=prm.eps_pos[1])
                else:
                    d = _horner(q, _derivative(prm.eps_pos), ws, out=coef)
                slope = torch.addcmul(q, ns, d, value=-1.0, out=d)
            else:
                slope = torch.add(q, ns, alpha=-coef, out=ws()) if coef else ws().copy_(q)
    else:
        coef = _horner(q, _negated(prm.alpha), ws)
        neg_loss = coef.mul_(q) if isinstance(coef, Tensor) else torch.mul(q, coef, out=ws())
        if grad:
            d = _horner(q, _negated(_derivative(prm.alpha)), ws)  # -D, so that -D * ns = s D
            slope = d.mul_(ns) if isinstance(d, Tensor) else torch.mul(ns, d, out=ws())
    if grad and gp > 0:
        slope.addcmul_(p, neg_loss, value=-gp)
    if prm.gamma_pos > 0:
        focus = torch.mul(log_q, prm.gamma_pos, out=ws()).exp_()
        neg_loss.mul_(focus)
        if grad:
            slope.mul_(focus)
    return neg_loss, slope


def _hill(p: Tensor, p_tau: Tensor, prm: RALParams, grad: bool, ws: Workspace):
    """w(p) and w'(p) (``None`` for the paper's w' = -1)."""
    weight = torch.sub(ws.const(prm.lam), p, out=ws())  # lam - p
    if prm.weight_form != "official-code":
        return weight, None
    # w = (lam - p) p^2 c, c = lam - 1 + p_tau ; w' = p [c (2 lam - 3 p) + p (lam - p)]
    # (c' = 1 where p > tau; where p <= tau the p^2 (lam - p) term multiplies B(0) = 0.)
    c = torch.add(p_tau, prm.lam - 1.0, out=ws())
    weight_prime = None
    if grad:
        weight_prime = torch.mul(p, -3.0, out=ws()).add_(2.0 * prm.lam).mul_(c)
        weight_prime.addcmul_(p, weight).mul_(p)
    weight.mul_(p).mul_(p).mul_(c)
    return weight, weight_prime


def _below(p_tau: Tensor, gn: float, ws: Workspace) -> Tensor | None:
    """R = p_tau^(gn - 1) for gn > 0, finite where it multiplies a nonzero term (None means 1)."""
    if gn == int(gn):
        return _int_pow(p_tau, int(gn) - 1, ws)
    if gn > 1:
        return torch.pow(p_tau, gn - 1.0, out=ws())
    # gn < 1: p_tau^(gn-1) is infinite at p_tau = 0, where everything it multiplies is 0
    below = torch.sign(p_tau, out=ws())
    return torch.sub(ws.const(1.0), below, out=below).add_(p_tau).pow_(gn - 1.0)


def _negative_shifted_log(p, q, ns, prm: RALParams, grad: bool, ws: Workspace):
    """-L- and -v- for the log form with tau > 0 and gamma_neg > 0 (both presets), in few
    passes (ns = -s).

    With u = 1 - p_tau, NB = log(1 - p_tau) - sum_n f_n p_tau^n = -B, R = p_tau^(gn-1),
    F = R p_tau and B' = 1/u + D(p_tau):
        -L- = F (w NB)
        -v- = -s [ F (w B' - w' NB) - gn R (w NB) ]
    """
    gn = prm.gamma_neg
    p_tau = _aten.softshrink.out(p, prm.tau, out=ws())  # max(p - tau, 0) for p >= 0
    neg_base = torch.neg(p_tau, out=ws()).log1p_()
    coef = None
    if prm.eps_neg:
        coef = _horner(p_tau, prm.eps_neg, ws)
        _axpy(neg_base, p_tau, coef, -1.0)
    below = _below(p_tau, gn, ws)
    focus = p_tau if below is None else torch.mul(below, p_tau, out=ws())
    weight = weight_prime = None
    if prm.hill:
        weight, weight_prime = _hill(p, p_tau, prm, grad, ws)
    slope = None
    if grad:
        # p_tau is not read after 1 - p_tau unless the eps derivative or an alias (F or R) needs it
        reuse = not prm.eps_neg and focus is not p_tau and below is not p_tau
        u = torch.sub(ws.const(1.0), p_tau, out=p_tau if reuse else ws())
        if weight is None:  # w = 1, w' = 0: B'
            slope = torch.reciprocal(u, out=u)
        elif weight_prime is None:  # w B' + NB  (w' = -1)
            slope = torch.addcdiv(neg_base, weight, u, out=u)
        else:  # w B' - w' NB
            slope = weight_prime.mul_(neg_base).neg_().addcdiv_(weight, u)
        if prm.eps_neg:
            d = _horner(p_tau, _derivative(prm.eps_neg), ws, out=coef if isinstance(coef, Tensor) else None)
            if weight is None:
                slope.add_(d)
            else:
                _axpy(slope, weight, d)
        weighted = neg_base if weight is None else neg_base.mul_(weight)  # w NB
        slope.mul_(focus)
        if not prm.detach_focal:
            if below is None:
                slope.add_(weighted, alpha=-gn)
            else:
                slope.addcmul_(below, weighted, value=-gn)
        slope.mul_(ns)  # -v-
        ws.release(u, keep=(slope,))
    else:
        weighted = neg_base if weight is None else neg_base.mul_(weight)
    neg_loss = weighted.mul_(focus)
    ws.release(p_tau, below, focus, weight, coef, keep=(neg_loss, slope))
    return neg_loss, slope


def _negative(p, q, s, log_p, log_q, prm: RALParams, grad: bool, ws: Workspace):
    """-L- and v- for L- = w(p) F B, F = p_tau^gn, B = -log(1 - p_tau) + sum_n f_n p_tau^n
    (log form) or sum_n b_n p_tau^n (series).

    With NB = -B:  v- = Phi [ -w' sigma NB + w (sigma B' - gn kappa NB) ], where
    (Phi, sigma, kappa) = (s R, p_tau, 1) for tau > 0 < gn (R = p_tau^(gn-1)),
    (F, s, q) for tau = 0 < gn, and (1, s, -) for gn = 0.
    """
    tau, gn = prm.tau, prm.gamma_neg
    p_tau = p if tau == 0 else _aten.softshrink.out(p, tau, out=ws())  # max(p - tau, 0)

    # NB = -B(p_tau)
    coef = None
    if prm.beta is None:
        if tau == 0:
            neg_base = ws().copy_(log_q)
        else:
            neg_base = torch.neg(p_tau, out=ws()).log1p_()
        if prm.eps_neg:
            coef = _horner(p_tau, prm.eps_neg, ws)
            _axpy(neg_base, p_tau, coef, -1.0)
    else:
        coef = _horner(p_tau, _negated(prm.beta), ws)
        neg_base = coef.mul_(p_tau) if isinstance(coef, Tensor) else torch.mul(p_tau, coef, out=ws())
        coef = None  # its buffer now holds NB

    # focusing: F = p_tau^gn for the loss; R = p_tau^(gn-1) for the slope (tau > 0)
    focus = below = None
    if gn > 0 and tau == 0:
        focus = torch.mul(log_p, gn, out=ws()).exp_()
    elif gn > 0:
        below = _below(p_tau, gn, ws)

    weight = weight_prime = None
    if prm.hill:
        weight, weight_prime = _hill(p, p_tau, prm, grad, ws)

    slope = None
    if grad:
        tau_focal = gn > 0 and tau > 0
        sigma = p_tau if tau_focal else s
        # sigma * B'
        if prm.beta is None:
            if tau == 0:
                slope = ws().copy_(p)  # s / (1 - p) = p
            else:
                slope = torch.sub(ws.const(1.0), p_tau, out=ws())
                torch.div(sigma, slope, out=slope)
            if prm.eps_neg:
                d = _horner(p_tau, _derivative(prm.eps_neg), ws, out=coef if isinstance(coef, Tensor) else None)
                _axpy(slope, sigma, d)
        else:
            d = _horner(p_tau, _derivative(prm.beta), ws)
            slope = d.mul_(sigma) if isinstance(d, Tensor) else torch.mul(sigma, d, out=ws())
        if gn == 0 and tau > 0:
            slope.mul_(torch.sign(p_tau, out=ws()))  # no slope where p <= tau
        if gn > 0 and not prm.detach_focal:
            if tau_focal:
                slope.add_(neg_base, alpha=-gn)
            else:
                slope.addcmul_(q, neg_base, value=-gn)
        if weight is not None:
            slope.mul_(weight)
            if weight_prime is None:  # w' = -1
                slope.addcmul_(sigma, neg_base)
            else:
                slope.addcmul_(weight_prime.mul_(sigma), neg_base, value=-1.0)
        if tau_focal:
            if below is not None:
                slope.mul_(below)
            slope.mul_(s)
        elif focus is not None:
            slope.mul_(focus)

    neg_loss = neg_base  # -L- = w F NB
    if focus is not None:
        neg_loss.mul_(focus)
    elif gn > 0:
        neg_loss.mul_(p_tau)
        if below is not None:
            neg_loss.mul_(below)
    if weight is not None:
        neg_loss.mul_(weight)
    return neg_loss, slope


def ral_kernel(
    p: Tensor,
    q: Tensor,
    log_p: Tensor | None,
    log_q: Tensor | None,
    targets: Tensor,
    prm: RALParams,
    grad: bool,
    ws: Workspace,
) -> tuple[Tensor, Tensor | None]:
    """Negated element-wise loss -l and, with ``grad``, -v = -dl/dx (both shaped like ``p``).

    ``log_p`` / ``log_q`` are needed as :func:`needs_logs` says; ``log_p`` is overwritten.
    """
    ns = torch.addcmul(ws.const(0.0), p, q, value=-1.0, out=ws()) if grad else None  # -s = -p q
    if prm.tau > 0 and prm.gamma_neg > 0 and prm.beta is None:
        neg_loss, neg_slope = _negative_shifted_log(p, q, ns, prm, grad, ws)
    else:
        s = torch.neg(ns, out=ws()) if grad else None
        neg_loss, neg_slope = _negative(p, q, s, log_p, log_q, prm, grad, ws)
        if grad:
            neg_slope.neg_()
    neg_loss_pos, neg_slope_pos = _positive(p, q, ns, log_p, log_q, prm, grad, ws)
    neg_loss.lerp_(neg_loss_pos, targets)
    if grad:
        neg_slope.lerp_(neg_slope_pos, targets)  # -v
    return neg_loss, neg_slope


def needs_logs(prm: RALParams) -> tuple[bool, bool]:
    """Whether the kernel reads log p / log(1 - p)."""
    need_log_p = prm.alpha is None or (prm.gamma_neg > 0 and prm.tau == 0)
    need_log_q = prm.gamma_pos > 0 or (prm.tau == 0 and prm.beta is None)
    return need_log_p, need_log_q


def sigmoid_kernel(
    x: Tensor, targets: Tensor, prm: RALParams, grad: bool, ws: Workspace
) -> tuple[Tensor, Tensor | None]:
    """:func:`ral_kernel` for p = sigmoid(x): -l and dl/dx for one block of logits."""
    need_log_p, need_log_q = needs_logs(prm)
    # log p = -softplus(-x) (softplus with beta = -1), log(1 - p) = -softplus(x) and
    # 1 - p = sigmoid(-x): each accurate to a few ulp, no cancellation at large |x|.
    p = torch.sigmoid(x, out=ws())
    q = torch.neg(x, out=ws()).sigmoid_()
    log_p = _aten.softplus.out(x, -1.0, 20.0, out=ws()) if need_log_p else None
    log_q = _aten.softplus.out(x, 1.0, 20.0, out=ws()).neg_() if need_log_q else None
    return ral_kernel(p, q, log_p, log_q, targets, prm, grad, ws)
