"""The fast path of a loss: its element-wise formula and the formula's gradient, compiled together.

``torch.func.grad_and_value`` differentiates the very formula the eager path runs, and
``torch.compile`` (Inductor: C++ on the CPU, Triton on CUDA) fuses the loss, its gradient and
the reduction into a few kernels. The forward pass keeps only the (N, C) gradient; the
backward pass is one multiply by the upstream gradient. Nothing is read back to the host.

Where torch.compile cannot run (no C++ compiler, an unsupported platform), the first call warns
once and every call then uses the eager formula: same values, slower.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import Tensor

#: An element-wise loss with its reduction: (x (N, C), y, valid, class_weights) -> reduced value.
ReducedLoss = Callable[[Tensor, Tensor, Tensor | None, Tensor | None], Tensor]

_unavailable: str | None = None  # why torch.compile failed in this process, once it did


def compile_value_and_grad(reduced: ReducedLoss) -> Callable[..., tuple[Tensor, Tensor]]:
    """Compile ``(x, y, valid, weights) -> (value, d sum(value) / dx)`` for ``reduced``.

    The value is the reduced loss (a scalar, or one value per element / sample for
    ``reduction="none"``). Every element (multi-label) or row (single-label) of a "none" loss
    depends on its own logits only, so the gradient of the sum holds each one's gradient.
    """

    def value_and_grad(x: Tensor, y: Tensor, valid: Tensor | None, weights: Tensor | None):
        def total(logits: Tensor) -> tuple[Tensor, Tensor]:
            value = reduced(logits, y, valid, weights)
            return value.sum(), value

        grad, (_, value) = torch.func.grad_and_value(total, has_aux=True)(x)
        return value, grad

    return torch.compile(value_and_grad, dynamic=None)


def can_use_fast_path(x: Tensor) -> bool:
    """Whether a call should take the fast path: a gradient is needed, compilation works, and
    the call is not itself being traced by an outer ``torch.compile`` (which fuses the eager
    formula on its own)."""
    return (
        _unavailable is None
        and torch.is_grad_enabled()
        and x.requires_grad
        and not torch.compiler.is_compiling()
    )


def fast_loss(
    build: Callable[[], Callable[..., tuple[Tensor, Tensor]]],
    eager: ReducedLoss,
    x: Tensor,
    y: Tensor,
    valid: Tensor | None,
    weights: Tensor | None,
    *,
    per_row: bool,
) -> Tensor:
    """The reduced loss through the compiled function ``build()``, differentiable in ``x``.

    ``per_row``: the value is one loss per sample (single-label, reduction "none"), so the
    upstream gradient (N,) is broadcast over the classes. Falls back to ``eager`` (with one
    warning per process) if torch.compile is unsupported here or its compiler fails.
    """
    from torch._dynamo.exc import TorchDynamoException

    try:
        compiled = build()  # cached by the caller; torch.compile refuses unsupported platforms here
        return _SavedGradient.apply(x, compiled, per_row, y, valid, weights)
    except (TorchDynamoException, RuntimeError) as exc:
        if not isinstance(exc, TorchDynamoException) and "compile" not in str(exc):
            raise  # not a compiler problem (e.g. out of memory)
        _disable(exc)
        return eager(x, y, valid, weights)


def _disable(exc: Exception) -> None:
    global _unavailable
    lines = str(exc).strip().splitlines()
    _unavailable = f"{type(exc).__name__}: {lines[0] if lines else ''}"
    warnings.warn(
        f"ral.losses: the compiled fast path is unavailable ({_unavailable}); using the eager formula "
        "(same values, slower). Pass impl='eager' to silence this.",
        RuntimeWarning,
        stacklevel=4,
    )


class _SavedGradient(torch.autograd.Function):
    """Forward: value and gradient from the compiled function; backward: gradient x upstream."""

    @staticmethod
    def forward(ctx, x, compiled, per_row, y, valid, weights):  # noqa: D102
        value, grad = compiled(x.detach(), y, valid, weights)
        ctx.save_for_backward(grad)
        ctx.per_row = per_row
        return value

    @staticmethod
    def backward(ctx, grad_output):  # noqa: D102
        if torch.is_grad_enabled():  # create_graph=True: the saved gradient is a constant
            raise RuntimeError("the compiled loss has no second derivatives (create_graph=True); use impl='eager'")
        (grad,) = ctx.saved_tensors
        if ctx.per_row:
            grad_output = grad_output[:, None]
        return grad * grad_output, None, None, None, None, None
