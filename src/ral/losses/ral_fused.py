"""Fused RAL: forward value and closed-form gradient together (``impl="fused"``, the default).

The forward pass computes, per element, the loss and its derivative with respect to the logit
(``ral_kernel.py``; docs/losses.md derives it) and keeps only the (N, C) gradient for the
backward pass: no per-term intermediates are saved for autograd, and backward is one multiply.
Rows are processed in blocks (at most ``_MAX_BLOCK`` elements) whose temporaries are reused
from block to block, so they stay in the CPU cache instead of streaming through main memory
once per operation, and the extra memory stays a fraction of the (N, C) gradient.

Single-label inputs reuse the kernel with p = softmax(x)[c] and apply the softmax Jacobian in
closed form (:func:`_softmax_backward`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ral.losses._common import reduce_loss, reduce_per_sample
from ral.losses.ral_autograd import softmax_logs
from ral.losses.ral_kernel import Workspace, ral_kernel, sigmoid_kernel
from ral.losses.ral_params import RALParams

#: Block size bounds in elements (512 KiB / 128 KiB of float32 per temporary).
_MAX_BLOCK = 1 << 17
_MIN_BLOCK = 1 << 15
#: Aim for at least this many blocks, so the temporaries stay a fraction of the gradient.
_MIN_BLOCKS = 6


def _block_rows(n: int, c: int) -> int:
    """Rows per block: about n*c / _MIN_BLOCKS elements, clamped to [_MIN_BLOCK, _MAX_BLOCK]."""
    target = min(max(-(-n * c // _MIN_BLOCKS), _MIN_BLOCK), _MAX_BLOCK)
    return max(1, min(n, target // max(c, 1)))


# --- driver: blocks of rows, class weights / masks / reduction, the autograd.Function -------
def _single_label_block(x: Tensor, y: Tensor, prm: RALParams, grad: bool, ws: Workspace):
    """Negated loss (rows, C), negated slope -v (rows, C) and the softmax terms for the backward."""
    log_p, log_q, top = softmax_logs(x)
    p, q = log_p.exp(), log_q.exp()
    neg_loss, slope = ral_kernel(p, q, log_p.clone(), log_q, y, prm, grad, ws)
    return neg_loss, slope, (p, q, log_p, log_q, top)


def _softmax_backward(slope: Tensor, terms) -> Tensor:
    """Gradient of sum_c l_c(p_c), p = softmax(x), from v_c = dl_c/dp_c * p_c (1 - p_c).

    dL/dx_j = v_j - p_j * sum_{c != j} v_c / (1 - p_c). Every class but the row's arg-max m has
    p_c <= 1/2, so v_c / (1 - p_c) is well conditioned; m's share is written p_j / (1 - p_m) * v_m
    with p_j / (1 - p_m) = exp(log p_j - log(1 - p_m)) <= 1 for j != m, so nothing overflows.
    """
    p, q, log_p, log_q, top = terms
    u = (slope / q).scatter_(1, top, 0.0)  # v_c / (1 - p_c), arg-max excluded
    slope_top = slope.gather(1, top)
    ratio = torch.exp(log_p - log_q.gather(1, top)).scatter_(1, top, 0.0)
    grad = p * (u.sum(dim=1, keepdim=True) - u)
    return torch.sub(slope, grad).sub_(ratio * slope_top)


def _valid_count(valid: Tensor | None, numel: int, single: bool) -> Tensor | int:
    if valid is None:
        return max(numel, 1)
    return (valid[:, 0] if single else valid).sum().clamp_min(1.0)


def fused_forward(
    logits: Tensor,
    targets: Tensor,
    valid: Tensor | None,
    class_weights: Tensor | None,
    prm: RALParams,
    reduction: str,
    single: bool,
    grad: bool,
) -> tuple[Tensor, Tensor | None]:
    """Reduced loss and, with ``grad``, d(loss)/d(logits) for a unit upstream gradient.

    Args:
        logits: (N, C) float32 / float64 (the compute dtype), detached.
        targets: (N, C) in [0, 1] (one-hot rows for ``single``), ignored entries set to 0.
        valid: (N, C) 1 / 0 mask or None; class_weights: (C,) or None.
    Returns:
        ``(value, grad)``: value is a scalar ("mean", "sum"), (N, C) or (N,) ("none",
        multi-label / single-label); grad is (N, C) or None.
    """
    n, c = logits.shape
    rows = _block_rows(n, c)
    ws = Workspace(rows, c, logits)
    grad_all = torch.empty_like(logits) if grad else None
    loss_all = None
    if reduction == "none":
        loss_all = logits.new_empty((n,) if single else (n, c))
    scale = 1.0
    if reduction == "mean":
        scale = 1.0 / _valid_count(valid, n if single else n * c, single)
    weighted = valid is not None or class_weights is not None
    total = None
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        x, y = (logits, targets) if rows >= n else (logits[start:stop], targets[start:stop])
        mask = None if valid is None else valid[start:stop]
        ws.reset(stop - start)
        if single:
            neg_loss, slope, terms = _single_label_block(x, y, prm, grad, ws)
            neg_loss = reduce_per_sample(neg_loss, valid=mask, class_weights=class_weights, reduction="none")
        else:
            neg_loss, slope = sigmoid_kernel(x, y, prm, grad, ws)
            if weighted:
                neg_loss = reduce_loss(neg_loss, valid=mask, class_weights=class_weights, reduction="none")
        if loss_all is not None:
            torch.neg(neg_loss, out=loss_all[start:stop])
        else:
            block_total = neg_loss.sum()
            total = block_total if total is None else total.add_(block_total)
        if grad:
            if weighted:
                slope = reduce_loss(slope, valid=mask, class_weights=class_weights, reduction="none")
            if single:
                slope = _softmax_backward(slope, terms)
            torch.mul(slope, -scale, out=grad_all[start:stop])  # the kernel returns -v
    if loss_all is not None:
        return loss_all, grad_all
    if total is None:  # no rows
        return logits.new_zeros(()), grad_all
    return total.mul_(-scale), grad_all


class _FusedRAL(torch.autograd.Function):
    """Loss value in forward; backward scales the gradient computed in forward."""

    @staticmethod
    def forward(ctx, logits, targets, valid, class_weights, prm, reduction, single):  # noqa: D102
        value, grad = fused_forward(logits, targets, valid, class_weights, prm, reduction, single, True)
        ctx.save_for_backward(grad)
        ctx.expand_rows = single and reduction == "none"
        return value

    @staticmethod
    def backward(ctx, grad_output):  # noqa: D102
        (grad,) = ctx.saved_tensors
        if ctx.expand_rows:
            grad_output = grad_output[:, None]
        return grad * grad_output, None, None, None, None, None, None


def fused_ral(
    logits: Tensor,
    targets: Tensor,
    valid: Tensor | None,
    class_weights: Tensor | None,
    prm: RALParams,
    reduction: str,
    single: bool = False,
) -> Tensor:
    """The fused RAL (see :func:`fused_forward`); differentiable with respect to ``logits``."""
    if torch.is_grad_enabled() and logits.requires_grad:
        return _FusedRAL.apply(logits, targets, valid, class_weights, prm, reduction, single)
    value, _ = fused_forward(logits, targets, valid, class_weights, prm, reduction, single, False)
    return value
