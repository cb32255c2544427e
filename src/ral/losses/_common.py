"""Validation, masking, class weighting and reduction shared by every loss in ``ral.losses``.

Every loss (see ``_base.py``) computes an element-wise loss tensor of shape (N, C) in float32
(float64 when the logits are float64, so that exact reference checks and ``gradcheck`` work)
and hands it to :func:`reduce_loss`, so "mean" / "sum" / "none", masks and class weights behave
the same everywhere. Nothing here imports from the rest of the package.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

REDUCTIONS = ("mean", "sum", "none")

#: A per-class vector as users pass it: a 1-D tensor, a sequence of numbers, or None.
ClassVector = Tensor | Sequence[float] | None


def compute_dtype(logits: Tensor) -> torch.dtype:
    """The dtype losses compute in: float64 for float64 logits, float32 for every other float."""
    return torch.float64 if logits.dtype == torch.float64 else torch.float32


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``; else ``ValueError`` naming ``name``, the
    choices and the received value."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_reduction(reduction: str) -> str:
    """Return ``reduction`` if it is one of "mean", "sum", "none"; raise ``ValueError`` otherwise."""
    return check_choice("reduction", reduction, REDUCTIONS)


def check_finite(name: str, value: float, requirement: str = "a finite number") -> float:
    """Return ``value`` as float if it is a finite real number; else ``ValueError`` saying
    that ``name`` must be ``requirement`` and showing the received value."""
    try:
        number = float(value)
    except (TypeError, ValueError, RuntimeError):
        number = math.nan
    if not math.isfinite(number):
        raise ValueError(f"{name} must be {requirement}, got {value!r}")
    return number


def check_nonnegative(name: str, value: float) -> float:
    """Return ``value`` as float if it is a finite number >= 0."""
    number = check_finite(name, value, "a finite number >= 0")
    if number < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return number


def check_in_range(name: str, value: float, low: float, high: float, *, high_inclusive: bool = False) -> float:
    """Return ``value`` as float if ``low <= value < high`` (``<= high`` with ``high_inclusive``).

    The value must be finite in any case, so ``high=math.inf`` means "at least ``low``".
    """
    interval = f"[{low}, {high}{']' if high_inclusive else ')'}"
    number = check_finite(name, value, f"a finite number in {interval}")
    upper_ok = number <= high if high_inclusive else number < high
    if not (number >= low and upper_ok):
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return number


def check_float_tuple(name: str, values: Sequence[float] | None) -> tuple[float, ...]:
    """Return a tuple of finite floats (``None`` gives ``()``)."""
    if values is None:
        return ()
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ValueError(f"{name} must be a sequence of numbers, got {values!r}")
    try:
        return tuple(check_finite(name, item) for item in values)
    except ValueError:
        raise ValueError(f"{name} must contain only finite numbers, got {values!r}") from None


def check_bool(name: str, value: bool) -> bool:
    """Return ``value`` if it is True or False (not 0 / 1 / None); ``ValueError`` otherwise."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def check_epoch(name: str, value: int | None, *, optional: bool = False) -> int | None:
    """Return ``value`` if it is an int >= 0 (a 0-based epoch; not a bool); ``None`` passes when
    ``optional``. ``ValueError`` naming ``name`` and the value otherwise."""
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        requirement = "None or an int >= 0" if optional else "an int >= 0"
        raise ValueError(f"{name} must be {requirement}, got {value!r}")
    return value


def check_num_samples(num_samples: float, counts: Tensor | None) -> float:
    """Return the number of training images as float: >= 2 and >= every class count."""
    total = check_nonnegative("num_samples", num_samples)
    if total < 2:
        raise ValueError(f"num_samples must be the number of training images (>= 2), got {num_samples!r}")
    most = float(counts.max()) if counts is not None and counts.numel() else 0.0
    if most > total:
        raise ValueError(f"num_samples must be >= every class count, got {num_samples!r} < {most:g}")
    return total


def check_class_vector(
    name: str,
    value: Sequence[float] | Tensor | None,
    num_classes: int | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor | None:
    """Validate a per-class vector (class weights or class counts): 1-D, finite, >= 0.

    Returns a detached tensor of ``dtype`` (float32 by default) on ``device`` (default: where
    ``value`` is, CPU for a sequence), or ``None``. ``num_classes`` is checked when given.
    """
    if value is None:
        return None
    try:
        tensor = torch.as_tensor(value, dtype=dtype).detach()
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name} must be a 1-D sequence of numbers, got {value!r}") from None
    if tensor.ndim != 1:
        raise ValueError(f"{name} must be 1-D with one entry per class, got shape {tuple(tensor.shape)}")
    if num_classes is not None and tensor.numel() != num_classes:
        raise ValueError(f"{name} must have {num_classes} entries (one per class), got {tensor.numel()}")
    if not torch.isfinite(tensor).all() or (tensor < 0).any():
        raise ValueError(f"{name} must be finite and >= 0, got {tensor.tolist()}")
    return tensor if device is None else tensor.to(device)


def _check_logits(logits: Tensor, min_classes: int = 1) -> None:
    if not isinstance(logits, Tensor):
        raise ValueError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (N, C), got shape {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise ValueError(f"logits must be a floating-point tensor, got dtype {logits.dtype}")
    if logits.shape[1] < min_classes:
        raise ValueError(f"single-label logits need at least {min_classes} classes, got shape {tuple(logits.shape)}")


def prepare_multilabel(
    logits: Tensor,
    targets: Tensor,
    *,
    ignore_value: float | None = None,
    mask: Tensor | None = None,
    check_targets: bool = True,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Validate multi-label inputs and split off the elements that must be ignored.

    Args:
        logits: (N, C) floating tensor, any float dtype.
        targets: (N, C) tensor with values in [0, 1] (soft targets allowed); entries equal to
            ``ignore_value`` (or NaN when ``ignore_value`` is NaN) are ignored.
        ignore_value: target value marking an element to ignore (e.g. -1, or ``float("nan")``).
        mask: optional (N, C) tensor, True / nonzero where the element counts.
        check_targets: check that the targets are in [0, 1]; this reads a value back from the
            device (a host-device synchronisation on a GPU), so a training loop whose labels were
            validated when they were read may switch it off.

    Returns:
        ``(logits32, targets32, valid)``: float32 logits; float32 targets with ignored entries
        replaced by 0; float32 valid mask (N, C), or ``None`` when every element counts
        (float64 throughout when the logits are float64, see :func:`compute_dtype`).

    Raises:
        ValueError: wrong ndim or shapes, non-float logits, targets outside [0, 1] (other than
            ``ignore_value``), NaN targets without ``ignore_value=nan``.
    """
    _check_logits(logits)
    if not isinstance(targets, Tensor):
        targets = torch.as_tensor(targets)
    if targets.shape != logits.shape:
        raise ValueError(
            f"targets must have the same shape as logits {tuple(logits.shape)}, got {tuple(targets.shape)}"
        )
    dtype = compute_dtype(logits)
    logits32 = logits.to(dtype)
    targets32 = targets.detach().to(device=logits.device, dtype=dtype)

    valid = None
    if ignore_value is not None:
        ignore = float(ignore_value)
        ignored = torch.isnan(targets32) if math.isnan(ignore) else targets32 == ignore
        valid = ~ignored
    if mask is not None:
        if not isinstance(mask, Tensor):
            mask = torch.as_tensor(mask)
        if mask.shape != logits.shape:
            raise ValueError(f"mask must have shape {tuple(logits.shape)}, got {tuple(mask.shape)}")
        mask_bool = mask.to(device=logits.device) != 0
        valid = mask_bool if valid is None else valid & mask_bool

    if valid is not None:
        targets32 = torch.where(valid, targets32, torch.zeros_like(targets32))
    if check_targets and targets32.numel():
        # One reduction pass: NaN propagates into aminmax, so it fails the range check too.
        low, high = torch.aminmax(targets32)
        if not (low >= 0 and high <= 1):
            bad = targets32[torch.isnan(targets32) | (targets32 < 0) | (targets32 > 1)][0].item()
            hint = "" if ignore_value is not None else " (pass ignore_value to mark uncertain labels)"
            raise ValueError(f"targets must be in [0, 1]{hint}, got a value {bad!r}")

    if valid is None:
        return logits32, targets32, None
    return logits32, targets32, valid.to(dtype)


def prepare_single_label(
    logits: Tensor,
    targets: Tensor,
    *,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    check_targets: bool = True,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Validate single-label inputs and return one-hot (optionally smoothed) float targets.

    Args:
        logits: (N, C) floating tensor.
        targets: (N,) integer class indices (``ignore_index`` rows are ignored) or (N, C)
            one-hot / probability rows.
        ignore_index: class index marking a sample to ignore.
        label_smoothing: eps in [0, 1): targets become (1 - eps) * onehot + eps / C.
        check_targets: check class indices / probability rows (a host-device synchronisation
            on a GPU; see :func:`prepare_multilabel`).

    Returns:
        ``(logits32, targets32, valid)`` with targets32 (N, C) and valid (N, C) or None, in
        float32 (float64 for float64 logits). Reduce per sample with :func:`reduce_per_sample`.

    Raises:
        ValueError: wrong ndim or shapes, fewer than 2 classes, float class indices, indices
            outside [0, C), probability rows outside [0, 1], ``label_smoothing`` outside [0, 1).
    """
    _check_logits(logits, min_classes=2)
    eps = check_in_range("label_smoothing", label_smoothing, 0.0, 1.0)
    dtype = compute_dtype(logits)
    n, c = logits.shape
    if not isinstance(targets, Tensor):
        targets = torch.as_tensor(targets)
    valid = None
    if targets.ndim == 1:
        if targets.shape[0] != n:
            raise ValueError(f"targets must have shape ({n},) or ({n}, {c}), got {tuple(targets.shape)}")
        if targets.is_floating_point():
            raise ValueError(f"class-index targets must be integers, got dtype {targets.dtype}")
        index = targets.to(device=logits.device, dtype=torch.long)
        keep = index != ignore_index
        bad = keep & ((index < 0) | (index >= c))
        if check_targets and bad.any():
            raise ValueError(f"targets must be class indices in [0, {c}), got {index[bad][0].item()}")
        # scatter, not boolean indexing: no host-device synchronisation on a GPU
        rows = keep[:, None].to(dtype)
        onehot = torch.zeros(n, c, device=logits.device, dtype=dtype).scatter_(1, index.clamp(0, c - 1)[:, None], rows)
        valid = rows.expand(n, c)
    elif targets.shape == logits.shape:
        onehot = targets.detach().to(device=logits.device, dtype=dtype)
        outside = torch.isnan(onehot) | (onehot < 0) | (onehot > 1)
        if check_targets and outside.any():
            bad = onehot[outside][0].item()
            raise ValueError(f"one-hot / probability targets must be in [0, 1], got a value {bad!r}")
    else:
        raise ValueError(f"targets must have shape ({n},) or ({n}, {c}), got {tuple(targets.shape)}")
    if eps > 0:
        onehot = onehot * (1.0 - eps) + eps / c
    return logits.to(dtype), onehot, valid


def reduce_loss(
    loss: Tensor,
    *,
    valid: Tensor | None = None,
    class_weights: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Weight, mask and reduce an element-wise loss of shape (N, C).

    "mean" divides by the number of valid elements (not by the sum of weights), like
    ``torch.nn.BCEWithLogitsLoss``; "sum" adds them up; "none" returns (N, C) with ignored
    elements set to 0. An empty or fully masked batch gives 0 with a gradient, never NaN.
    """
    check_reduction(reduction)
    if class_weights is not None:
        loss = loss * class_weights.to(device=loss.device, dtype=loss.dtype)
    if valid is not None:
        # where(), not a product: an ignored element's loss may be inf/NaN and must vanish.
        loss = torch.where(valid > 0, loss, torch.zeros_like(loss))
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return total
    count = loss.numel() if valid is None else valid.sum()
    if isinstance(count, Tensor):
        return total / count.clamp_min(1.0)
    return total / max(count, 1)


def reduce_per_sample(
    loss: Tensor, *, valid: Tensor | None = None, class_weights: Tensor | None = None, reduction: str = "mean"
) -> Tensor:
    """Reduce a single-label element-wise loss (N, C): sum over classes, then over samples.

    Class weights multiply column c before the class sum (with one-hot targets this is
    ``weight[target] * loss``, as in ``torch.nn.CrossEntropyLoss``). "mean" divides by the
    number of valid samples (torch divides by the sum of the targets' weights instead);
    "none" returns (N,) with ignored samples set to 0. ``valid`` marks whole rows (it is
    constant along each row), so masking the elements already zeroes an ignored sample.
    """
    check_reduction(reduction)
    per_sample = reduce_loss(loss, valid=valid, class_weights=class_weights, reduction="none").sum(dim=1)
    return reduce_samples(per_sample, valid_rows=None if valid is None else valid[:, 0], reduction=reduction)


def reduce_samples(per_sample: Tensor, *, valid_rows: Tensor | None = None, reduction: str = "mean") -> Tensor:
    """Reduce per-sample losses (N,) whose ignored samples are already 0.

    "mean" divides by the number of valid samples (``valid_rows`` (N,), 1 / True where a sample
    counts; all of them when None), at least 1, so an empty batch gives 0 with a gradient;
    "sum" adds them up; "none" returns ``per_sample``.
    """
    check_reduction(reduction)
    if reduction == "none":
        return per_sample
    total = per_sample.sum()
    if reduction == "sum":
        return total
    if valid_rows is None:
        return total / max(per_sample.numel(), 1)
    return total / valid_rows.to(per_sample.dtype).sum().clamp_min(1.0)


#: Elements per block of :func:`lean_elementwise`: the formula's autograd graph exists for one
#: block of rows at a time.
BLOCK_ELEMENTS = 1 << 16

#: An element-wise formula of a block of logits and the block's rows (a slice of the batch).
BlockFormula = Callable[[Tensor, slice], Tensor]


def lean_elementwise(formula: BlockFormula, x: Tensor) -> Tensor:
    """``formula(x, slice(None))`` for an element-wise formula (element (i, j) depends on
    ``x[i, j]`` only), differentiable, keeping one (N, C) tensor for the backward pass instead
    of the formula's whole autograd graph (torch has no such mode for a composite formula).

    The forward pass runs the formula and autograd block of rows by block of rows and keeps the
    slope d formula[i, j] / d x[i, j]; the backward pass multiplies it by the upstream gradient.
    A backward pass that builds a graph itself (``create_graph=True``: second derivatives)
    differentiates the formula afresh on the whole batch. A batch of one block, a call without
    a gradient to compute, or one inside a user's ``torch.compile`` (which plans the memory
    itself) runs the formula under plain autograd.
    """
    plain = x.numel() <= BLOCK_ELEMENTS or not (torch.is_grad_enabled() and x.requires_grad)
    if plain or torch.compiler.is_compiling():
        return formula(x, slice(None))
    return _SavedSlope.apply(x, formula)


class _SavedSlope(torch.autograd.Function):
    """Forward: value and per-element slope, block by block; backward: slope x upstream."""

    @staticmethod
    def forward(ctx, x: Tensor, formula: BlockFormula) -> Tensor:  # noqa: D102
        value, slope = torch.empty_like(x), torch.empty_like(x)
        rows = max(1, BLOCK_ELEMENTS // max(x.shape[1], 1))
        with torch.enable_grad():
            for start in range(0, x.shape[0], rows):
                block = slice(start, start + rows)
                logits = x[block].detach().requires_grad_()
                block_value = formula(logits, block)
                (slope[block],) = torch.autograd.grad(block_value.sum(), logits)
                value[block] = block_value.detach()
        ctx.save_for_backward(x, slope)
        ctx.formula = formula
        return value

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> tuple[Tensor, None]:  # noqa: D102
        x, slope = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: a gradient that is itself differentiable
            with torch.enable_grad():
                (grad,) = torch.autograd.grad(ctx.formula(x, slice(None)), x, grad_output, create_graph=True)
            return grad, None
        return grad_output * slope, None
