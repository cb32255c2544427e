"""The one base class of every loss: options declared once as typed fields, validated once,
per-class vectors as buffers, and the shared validate -> element-wise loss -> mask / weight /
reduce pipeline.

Every loss is a dataclass-style ``nn.Module``: its options are annotated class attributes
(fields), and the constructor is generated from them (with the fields of the classes above it),
so each option is written once, has a type and a default, and appears in
``inspect.signature(cls)`` and in an IDE (``dataclass_transform``). Fields given with
``field(kw_only=True)`` are keyword-only; the others may also be passed by position, in order.
A loss validates its own fields in ``__post_init__`` (after ``super().__post_init__()``) with the
``check_*`` helpers of ``_common`` and implements ``elementwise(x, y)``: float32 (float64 for
float64 input) logits and targets (N, C) in, the per-element loss (N, C) out. A loss without a
per-element form (its terms compare labels with each other, e.g. ZLPR) overrides
``reduced_loss(x, y, valid)`` instead. Its functional form applies a module cached per setting,
so both forms share one code path.

Training statistics are passed one way: a loss lists the ones its constructor needs in the
class attribute ``statistics`` and the ones it can use in ``optional_statistics``
("class_counts": positive training samples per class, (C,); "num_samples": training images),
declares them as fields, and :func:`ral.losses.build_loss` passes exactly those.
"""

from __future__ import annotations

import dataclasses
import typing
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from typing_extensions import dataclass_transform

from ._common import (
    ClassVector,
    check_bool,
    check_class_vector,
    check_epoch,
    check_in_range,
    check_num_samples,
    check_reduction,
    prepare_multilabel,
    prepare_single_label,
    reduce_loss,
    reduce_per_sample,
)
from ._space import SearchSpace, declared_space, tunable

#: Fields stored as (non-persistent) buffers: per-class vectors that follow ``.to(device)``.
CLASS_VECTORS = ("class_weights", "class_counts", "pos_weight")


def as_loss_dataclass(cls: type) -> None:
    """Generate ``cls``'s constructor from its fields (and its bases'), with resolved type
    annotations; keep ``nn.Module``'s identity, hash and repr. A per-class-vector field loses
    its class-level default (the field keeps it) so that ``register_buffer`` can take the name."""
    dataclasses.dataclass(cls, eq=False, repr=False)
    cls.search_space = declared_space(cls)
    # the generated constructor's annotations resolved (each field's in its own module), so
    # inspect.signature(cls, eval_str=True) and config tools see types, not strings
    hints = typing.get_type_hints(cls)
    cls.__init__.__annotations__ = {name: hints.get(name, hint) for name, hint in cls.__init__.__annotations__.items()}
    for name in CLASS_VECTORS:
        if name in vars(cls):
            delattr(cls, name)


@dataclass_transform(field_specifiers=(field, tunable))
class Loss(nn.Module):
    """Base of every loss in ``ral.losses``.

    Args:
        reduction: "mean" over valid elements (samples for single-label losses), "sum", or
            "none".
        class_weights: optional (C,) non-negative weights multiplying each class's loss.
        check_targets: check the target values on every call (a host-device synchronisation on
            a GPU; switch it off when the labels were validated when they were read).

    Subclasses that take training statistics declare them as fields: ``class_counts`` (C,)
    positive training samples per class, ``num_samples`` the number of training images (>= 2
    and >= every class count); ``statistics`` lists the needed ones (None is an error),
    ``optional_statistics`` the ones that may be None.

    Per-class vectors (``class_weights``, ``class_counts``) are non-persistent buffers:
    ``.to(device)`` moves them and they are not part of ``state_dict``.
    """

    task: ClassVar[str] = ""
    #: Training statistics the constructor needs (``build_loss`` refuses None for them).
    statistics: ClassVar[tuple[str, ...]] = ()
    #: Training statistics the constructor can use (for an option) but does not need.
    optional_statistics: ClassVar[tuple[str, ...]] = ()
    #: The options worth tuning and their ranges (``ral tune``), derived from the fields declared
    #: with ``tunable`` (``_space``); empty when none.
    search_space: ClassVar[SearchSpace] = {}

    reduction: str = field(default="mean", kw_only=True)
    class_weights: ClassVector = field(default=None, kw_only=True)
    check_targets: bool = field(default=True, kw_only=True)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        as_loss_dataclass(cls)

    def __post_init__(self) -> None:
        """Set up the module and validate the common options and the statistics."""
        nn.Module.__init__(self)
        self.reduction = check_reduction(self.reduction)
        self.check_targets = check_bool("check_targets", self.check_targets)
        self.register_class_vector("class_weights", self.class_weights)
        taken = self.statistics + self.optional_statistics
        if "class_counts" in taken:
            self.register_class_vector("class_counts", self.class_counts, required="class_counts" in self.statistics)
        if "num_samples" in taken:
            if self.num_samples is None and "num_samples" in self.statistics:
                raise ValueError("num_samples must be given (the number of training images), got None")
            if self.num_samples is not None:
                self.num_samples = check_num_samples(self.num_samples, getattr(self, "class_counts", None))

    def register_class_vector(self, name: str, value: ClassVector, *, required: bool = False) -> None:
        """Validate a per-class vector (1-D, finite, >= 0) and store it as a buffer (or None).

        float64 input stays float64 (exact reference checks); everything else becomes float32.
        ``required``: None is an error (a training statistic the loss cannot work without).
        """
        if required and value is None:
            raise ValueError(f"{name} must be given (from the training set, one number per class), got None")
        dtype = torch.float64 if isinstance(value, Tensor) and value.dtype == torch.float64 else torch.float32
        self.__dict__.pop(name, None)  # the field's plain value makes way for the buffer
        self.register_buffer(name, check_class_vector(name, value, dtype=dtype), persistent=False)

    def weights(self) -> Tensor | None:
        """The class weights applied at this call (a subclass may add scheduled weights)."""
        return self.class_weights

    def times_class_weights(self, weights: Tensor) -> Tensor:
        """Per-class ``weights`` (C,) of the loss itself times the user's ``class_weights`` (if any)."""
        return weights if self.class_weights is None else weights * self.class_weights.to(weights.dtype)

    def check_classes(self, x: Tensor) -> None:
        """Every per-class buffer must have one entry per logit column."""
        for name, buffer in self.named_buffers(recurse=False):
            if buffer is not None and buffer.ndim == 1 and buffer.numel() != x.shape[1]:
                raise ValueError(f"{name} must have {x.shape[1]} entries (one per class), got {buffer.numel()}")

    def extra_repr(self) -> str:
        shown = []
        for name, value in self.options().items():
            if isinstance(value, Tensor):
                shown.append(f"{name}=<{tuple(value.shape)} tensor>")
            elif value is not None:
                shown.append(f"{name}={value!r}")
        return ", ".join(shown)

    def options(self) -> dict[str, Any]:
        """The loss's settings by name (for ``repr``); buffers are included."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_") and k != "training"} | dict(
            self.named_buffers(recurse=False)
        )

    def elementwise(self, x: Tensor, y: Tensor) -> Tensor:
        """The per-element loss (N, C) of compute-dtype logits ``x`` and targets ``y`` (N, C).

        Every element-wise loss implements it; a loss without a per-element form overrides
        ``reduced_loss`` instead.
        """
        raise NotImplementedError(f"{type(self).__name__} has no element-wise form; it overrides reduced_loss")


as_loss_dataclass(Loss)


class MultiLabelLoss(Loss):
    """Base of multi-label (sigmoid) losses: ``loss(logits (N, C), targets (N, C), mask=None)``.

    Args:
        ignore_value: target value marking an element to ignore (e.g. -1 for CheXpert's
            uncertain labels, or ``float("nan")``); such elements count neither in the loss
            nor in the mean's denominator.
        reduction, class_weights, check_targets: see :class:`Loss`.
    """

    task: ClassVar[str] = "multilabel"

    ignore_value: float | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        value = self.ignore_value
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"ignore_value must be a number (e.g. -1 or float('nan')) or None, got {value!r}")
        self.ignore_value = None if value is None else float(value)

    def prepare(self, logits: Tensor, targets: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
        """Validated compute-dtype logits, targets (ignored entries 0) and the valid mask or None."""
        x, y, valid = prepare_multilabel(
            logits, targets, ignore_value=self.ignore_value, mask=mask, check_targets=self.check_targets
        )
        self.check_classes(x)
        return x, y, valid

    def forward(self, logits: Tensor, targets: Tensor, mask: Tensor | None = None) -> Tensor:
        """Loss of logits (N, C) against targets (N, C) in [0, 1]; ``mask`` (N, C) keeps elements.

        Returns a scalar ("mean", "sum") or (N, C) ("none"), float32 (float64 for float64 logits).
        """
        return self.reduced_loss(*self.prepare(logits, targets, mask))

    def reduced_loss(self, x: Tensor, y: Tensor, valid: Tensor | None) -> Tensor:
        """The reduced loss of prepared inputs (see :meth:`prepare`): element-wise loss, class
        weights, mask and reduction."""
        return reduce_loss(self.elementwise(x, y), valid=valid, class_weights=self.weights(), reduction=self.reduction)


class SingleLabelLoss(Loss):
    """Base of single-label (softmax) losses: ``loss(logits (N, C), targets (N,) or (N, C))``.

    Args:
        ignore_index: class index marking a sample to ignore.
        label_smoothing: eps in [0, 1): targets become (1 - eps) * onehot + eps / C.
        reduction, class_weights, check_targets: see :class:`Loss`. With one-hot targets, class
            weights weight sample i by ``class_weights[target_i]``; "mean" divides by the number
            of samples (torch's ``CrossEntropyLoss(weight=...)`` divides by the sum of weights).
    """

    task: ClassVar[str] = "single"

    label_smoothing: float = field(default=0.0, kw_only=True)
    ignore_index: int = field(default=-100, kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.label_smoothing = check_in_range("label_smoothing", self.label_smoothing, 0.0, 1.0)
        if isinstance(self.ignore_index, bool) or not isinstance(self.ignore_index, int):
            raise ValueError(f"ignore_index must be an integer, got {self.ignore_index!r}")

    def prepare(self, logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """Validated compute-dtype logits, one-hot (smoothed) targets (N, C) and the valid mask."""
        x, q, valid = prepare_single_label(
            logits,
            targets,
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
            check_targets=self.check_targets,
        )
        self.check_classes(x)
        return x, q, valid

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        """Loss of logits (N, C) against class indices (N,) or one-hot / probability rows (N, C).

        Returns a scalar ("mean", "sum") or (N,) ("none").
        """
        return self.reduced_loss(*self.prepare(logits, targets))

    def reduced_loss(self, x: Tensor, q: Tensor, valid: Tensor | None) -> Tensor:
        """The reduced loss of prepared inputs (see :meth:`prepare`): element-wise loss, class
        weights, class sum per sample, then the reduction over samples."""
        return reduce_per_sample(
            self.elementwise(x, q), valid=valid, class_weights=self.weights(), reduction=self.reduction
        )


class EpochSchedule:
    """Mixin of losses whose form changes with the training epoch (LDAM's deferred
    re-weighting, SPLC's label correction): the trainer calls :meth:`set_epoch` at the start of
    every epoch (``ral``'s engine does); ``epoch`` is 0 until then."""

    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        """Tell the loss the current (0-based) epoch."""
        self.epoch = check_epoch("epoch", epoch)


#: Modules the functional forms built, by class and settings (least recently used dropped).
_MODULES: OrderedDict[tuple, Loss] = OrderedDict()
MAX_CACHED_MODULES = 64


def _frozen(value: Any) -> Any:
    """A hashable stand-in for a constructor argument: sequences and tensors by their values."""
    if isinstance(value, Tensor):
        return ("tensor", str(value.dtype), str(value.device), tuple(value.detach().cpu().reshape(-1).tolist()))
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(item) for item in value)
    return value


def cached_module(cls: type[Loss], statistics: tuple[Any, ...], options: dict[str, Any]) -> Loss:
    """The module ``cls(*statistics, **options)``, built once per distinct setting and reused."""
    key = (cls, _frozen(statistics), tuple(sorted((name, _frozen(v)) for name, v in options.items())))
    try:
        module = _MODULES.get(key)
    except TypeError:  # an argument without a hashable value: build it for this call
        return cls(*statistics, **options)
    if module is None:
        module = _MODULES[key] = cls(*statistics, **options)
        if len(_MODULES) > MAX_CACHED_MODULES:
            _MODULES.popitem(last=False)
    _MODULES.move_to_end(key)
    return module


def functional(cls: type[Loss], name: str) -> Callable[..., Tensor]:
    """The functional form of loss class ``cls``: ``name(logits, targets, *statistics, mask=None,
    epoch=None, **options)`` applies ``cls(*statistics, **options)`` (built once per distinct
    setting, see :func:`cached_module`) at the given training epoch (losses with an epoch
    schedule; 0 when None), so module and function share one code path. ``mask`` is for
    multi-label losses only."""

    def loss(
        logits: Tensor,
        targets: Tensor,
        *statistics: Any,
        mask: Tensor | None = None,
        epoch: int | None = None,
        **options: Any,
    ) -> Tensor:
        module = cached_module(cls, statistics, options)
        if isinstance(module, EpochSchedule):
            module.set_epoch(0 if epoch is None else epoch)
        elif epoch is not None:
            raise ValueError(f"{name} has no epoch schedule, got epoch={epoch!r}")
        if cls.task == "multilabel":
            return module(logits, targets, mask)
        if mask is not None:
            raise ValueError(f"{name} is a single-label loss and takes no mask; ignore samples with ignore_index")
        return module(logits, targets)

    loss.__name__ = loss.__qualname__ = name
    loss.__doc__ = (
        f"Functional form of :class:`{cls.__name__}`: applies it, built with the given training statistics "
        "(positionally) and keyword options, to ``logits`` and ``targets``."
    )
    return loss
