"""The thin ``nn.Module`` wrappers around the functional losses.

A module stores its options, keeps per-class vectors (class weights, class counts, a vector
``pos_weight``) as non-persistent buffers so that ``.to(device)`` moves them, validates every
option once at construction, and calls its functional form in ``forward``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ._common import check_class_vector

#: Options holding one number per class; stored as buffers when given as a vector.
VECTOR_OPTIONS = ("class_weights", "class_counts", "pos_weight")


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (int, float)) or (isinstance(value, Tensor) and value.ndim == 0)


class LossModule(nn.Module):
    """Base class: ``function(logits, targets, **options)`` behind an ``nn.Module``.

    Subclasses set ``task`` ("multilabel" or "single") and pass their functional form and
    options to ``__init__``.
    """

    task: ClassVar[str] = ""

    def __init__(self, function: Callable[..., Tensor], **options: Any) -> None:
        super().__init__()
        self._function = function
        self._options: dict[str, Any] = {}
        num_classes = 1
        for name, value in options.items():
            if name in VECTOR_OPTIONS and not _is_scalar(value):
                # float64 stays float64 (exact checks); everything else is stored as float32.
                dtype = torch.float64 if getattr(value, "dtype", None) == torch.float64 else torch.float32
                vector = check_class_vector(name, value, dtype=dtype)
                self.register_buffer(name, vector, persistent=False)
                num_classes = num_classes if vector is None else vector.numel()
            else:
                self._options[name] = value
        # Validate every option once, now, on a 1 x C batch (the functional form checks them).
        self.forward(torch.zeros(1, num_classes), self._example_targets(num_classes))

    def _example_targets(self, num_classes: int) -> Tensor:
        return torch.zeros(1, num_classes)

    def call_options(self) -> dict[str, Any]:
        """The keyword arguments ``forward`` passes to the functional form."""
        buffers = {name: getattr(self, name) for name in VECTOR_OPTIONS if hasattr(self, name)}
        return {**self._options, **buffers}

    def extra_repr(self) -> str:
        shown = {name: value for name, value in self.call_options().items() if value is not None}
        return ", ".join(
            f"{name}=<{tuple(value.shape)} tensor>" if isinstance(value, Tensor) else f"{name}={value!r}"
            for name, value in shown.items()
        )


class MultiLabelLoss(LossModule):
    """Base of multi-label (sigmoid) losses: ``loss(logits (N, C), targets (N, C), mask=None)``."""

    task: ClassVar[str] = "multilabel"

    def forward(self, logits: Tensor, targets: Tensor, mask: Tensor | None = None) -> Tensor:
        """Loss of logits (N, C) against targets (N, C) in [0, 1]; ``mask`` (N, C) keeps elements."""
        return self._function(logits, targets, mask=mask, **self.call_options())


class SingleLabelLoss(LossModule):
    """Base of single-label (softmax) losses: ``loss(logits (N, C), targets (N,) or (N, C))``."""

    task: ClassVar[str] = "single"

    def _example_targets(self, num_classes: int) -> Tensor:
        return torch.zeros(1, dtype=torch.long)

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        """Loss of logits (N, C) against class indices (N,) or one-hot / probability rows (N, C)."""
        return self._function(logits, targets, **self.call_options())
