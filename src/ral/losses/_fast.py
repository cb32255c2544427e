"""The opt-in compiled path of RAL (``impl="compiled"``; the default is the eager formula): its
element-wise formula and the formula's gradient, compiled together. Imported only when a loss
with ``impl="compiled"`` first runs; it uses private torch APIs (``make_fx``,
``torch._inductor.compile``) and a C++ compiler on a CPU.

``torch.func.grad_and_value`` differentiates the very formula the eager path runs; ``make_fx``
records it as one graph of tensor operations and TorchInductor (C++ on the CPU, Triton on CUDA)
fuses the loss, its gradient and the reduction into a few kernels. The forward pass keeps only
the (N, C) gradient; the backward pass is one multiply by the upstream gradient. Nothing is read
back to the host.

Why not ``torch.compile`` on the function: its frame-evaluation and guard checks cost about
50 us per call on a CPU, a third of BCE's whole forward + backward at a CXR-LT batch. The graph
here has no Python control flow that depends on values, so it is compiled once per input
layout (shape, dtype, device, strides) and looked up by that layout.

Each new kernel is checked once against the eager formula (value and gradient) on the batch
it was built for. Where compilation fails (no C++ compiler, an unsupported platform) or a
kernel disagrees (a compiler bug), the call warns once and every call then uses the eager
formula: same values, slower.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import Tensor

#: An element-wise loss with its reduction: (x (N, C), *tensors) -> reduced value; the other
#: tensors (targets, valid mask, class weights, ...) are constants, any of them may be None.
ReducedLoss = Callable[..., Tensor]

#: Compiled kernels kept per loss setting (least recently used dropped): one per batch shape.
MAX_LAYOUTS = 16

_unavailable: str | None = None  # why compilation failed in this process, once it did


class CompiledLoss:
    """``(x, *others) -> (value, d sum(value) / dx)`` of ``reduced``, compiled per layout.

    The value is the reduced loss (a scalar, or one value per element / sample for
    ``reduction="none"``). Every element (multi-label) or row (single-label) of a "none" loss
    depends on its own logits only, so the gradient of the sum holds each one's gradient.
    """

    def __init__(self, reduced: ReducedLoss) -> None:
        self.reduced = reduced
        self.kernels: OrderedDict[tuple, Callable[..., list[Tensor]]] = OrderedDict()

    def __call__(self, x: Tensor, *others: Tensor | None) -> tuple[Tensor, Tensor]:
        inputs = (x, *others)
        # contiguous: the kernels are generated for dense inputs (an expanded mask gave wrong sums)
        given = [t.contiguous() for t in inputs if t is not None]
        key = tuple(None if t is None else (t.shape, t.dtype, t.device) for t in inputs)
        kernel = self.kernels.get(key)
        if kernel is not None:
            self.kernels.move_to_end(key)
            value, grad = kernel(*given)
            return value, grad
        try:  # the first run too: a compiler may finish its work lazily
            kernel = self._compile(given, [t is not None for t in inputs])
            value, grad = kernel(*given)
            self._check(value, grad, *inputs)
        except Exception as exc:
            raise _CompileFailed from exc
        self.kernels[key] = kernel
        if len(self.kernels) > MAX_LAYOUTS:
            self.kernels.popitem(last=False)
        return value, grad

    def _check(self, value: Tensor, grad: Tensor, x: Tensor, *others: Tensor | None) -> None:
        """Raise if a new kernel's value or gradient differs from the eager formula's."""
        with torch.enable_grad():
            logits = x.detach().requires_grad_()
            expected = self.reduced(logits, *others)
            (expected_grad,) = torch.autograd.grad(expected.sum(), logits)
        for name, got, want in (("value", value, expected.detach()), ("gradient", grad, expected_grad)):
            scale = want.abs().max().item() if want.numel() else 0.0
            if not torch.allclose(got, want, rtol=1e-3, atol=1e-5 * scale + 1e-12, equal_nan=True):
                difference = (got - want).abs().max().item()
                raise RuntimeError(f"the compiled {name} differs from the eager formula by up to {difference:.3g}")

    def _compile(self, given: list[Tensor], present: list[bool]) -> Callable[..., list[Tensor]]:
        from torch.fx.experimental.proxy_tensor import make_fx

        def value_and_grad(*tensors: Tensor) -> tuple[Tensor, Tensor]:
            supplied = iter(tensors)
            x, *others = (next(supplied) if flag else None for flag in present)

            def total(logits: Tensor) -> tuple[Tensor, Tensor]:
                value = self.reduced(logits, *others)
                return value.sum(), value

            grad, (_, value) = torch.func.grad_and_value(total, has_aux=True)(x)
            return value, grad

        graph = make_fx(value_and_grad)(*given)
        return torch._inductor.compile(graph, given)


def can_use_fast_path(x: Tensor) -> bool:
    """Whether a call should take the fast path: a gradient is needed, compilation works, and
    the call is not itself being traced by an outer ``torch.compile`` (which fuses the eager
    formula on its own)."""
    return _unavailable is None and torch.is_grad_enabled() and x.requires_grad and not torch.compiler.is_compiling()


def fast_loss(compiled: CompiledLoss, x: Tensor, *others: Tensor | None, per_row: bool) -> Tensor:
    """The reduced loss ``compiled.reduced(x, *others)`` through ``compiled``, differentiable
    with respect to ``x`` (``others`` are constants).

    ``per_row``: the value is one loss per sample (single-label, reduction "none"), so the
    upstream gradient (N,) is broadcast over the classes. Falls back to the eager formula
    (with one warning per process) if compilation fails.
    """
    try:
        return _SavedGradient.apply(x, compiled, per_row, *others)
    except _CompileFailed as failure:
        _disable(failure.__cause__)
        return compiled.reduced(x, *others)


class _CompileFailed(Exception):
    """Raised (from the compiler's exception) when a kernel could not be built."""


def _disable(exc: BaseException | None) -> None:
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
    """Forward: value and gradient from the compiled kernel; backward: gradient x upstream."""

    @staticmethod
    def forward(ctx, x, compiled, per_row, *others):  # noqa: D102
        value, grad = compiled(x.detach(), *others)
        ctx.save_for_backward(grad)
        ctx.per_row = per_row
        ctx.num_others = len(others)
        return value

    @staticmethod
    def backward(ctx, grad_output):  # noqa: D102
        if torch.is_grad_enabled():  # create_graph=True: the saved gradient is a constant
            raise RuntimeError("the compiled loss has no second derivatives (create_graph=True); use impl='eager'")
        (grad,) = ctx.saved_tensors
        if ctx.per_row:
            grad_output = grad_output[:, None]
        return grad * grad_output, None, None, *([None] * ctx.num_others)
