"""The training configuration: a YAML file (plus ``key=value`` overrides) read into a pydantic schema.

    seed: 0
    output_dir: runs/my-run
    dataset:   {train: train.csv, val: val.csv, test: test.csv, format: null, root: null,
                image_size: 64, uncertain: ignore, classes: null, augment: false, ...}
    model:     {backbone: tiny, options: {}, pretrained_path: null}
    loss:      {name: ral, params: {}}
    optimizer: {name: adamw, lr: 1.0e-3, weight_decay: 1.0e-4, momentum: 0.9}
    schedule:  {name: cosine, warmup_epochs: 0, min_lr_ratio: 0.0}
    train:     {epochs: 10, batch_size: 64, precision: "32", devices: 1, strategy: auto, ...}

Every constraint sits on its field (rules between sections on :class:`Config`); the first one a
config breaks becomes one ``ValueError`` line naming the dotted key (``optimizer.lr``) and the
received value. Relative paths are relative to the current directory. The field descriptions
are the config reference of docs/usage.md (``python -m ral.engine.config --reference``).
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import annotated_types
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from ral.data.classes import CLASS_SETS
from ral.data.formats import FORMATS, TASKS, UNCERTAIN_POLICIES, VINDR_AGREEMENTS
from ral.data.images import MIN_IMAGE_SIZE
from ral.data.transforms import AUGMENTATIONS, NORMALIZATIONS
from ral.losses import LOSSES

Optimizer = Literal["adamw", "adam", "sgd"]
Schedule = Literal["cosine", "none"]
Precision = Literal["32", "32-true", "bf16-mixed", "16-mixed"]
Accelerator = Literal["auto", "cpu", "gpu", "cuda", "mps"]

REFERENCE_START = "<!-- config-reference:start -->"
REFERENCE_END = "<!-- config-reference:end -->"
_CHECK_INSTALLED = "check_installed"  # validation context: False skips loss / backbone availability


def _yaml_number(value: Any) -> Any:
    """YAML 1.1 reads ``1e-3`` (no dot) as a string: hand the number to the float field."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _number_as_text(value: Any) -> Any:
    """``precision: 32`` is an int in YAML."""
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


Int = Annotated[int, Strict()]  # no true / false, no "3", no 3.0
Float = Annotated[float, Strict(), BeforeValidator(_yaml_number)]  # ints and "1e-3" too, never true / false


def _yaml_text(value: Any) -> str:
    """``value`` as written in YAML (strings that YAML would read as something else are quoted)."""
    if isinstance(value, str):
        return value if yaml.safe_load(value) == value else f'"{value}"'
    if isinstance(value, float):
        return f"{value:g}"
    return yaml.safe_dump(value, default_flow_style=True, width=1000).strip().removesuffix("\n...").strip()


def _codes(values: Sequence[Any]) -> str:
    """```a`, `b` or `c``` for the docs."""
    codes = [f"`{_yaml_text(v)}`" for v in values]
    return codes[0] if len(codes) == 1 else ", ".join(codes[:-1]) + " or " + codes[-1]


def _losses(task: str) -> str:
    return _codes([name for name, cls in LOSSES.items() if cls.task == task])


def _losses_taking_counts() -> str:
    return _codes([name for name, cls in LOSSES.items() if cls.statistics or cls.optional_statistics])


def _augment_preset(value: Any) -> Any:
    """``augment: true`` / ``false`` (configs and checkpoints before the presets) mean "light" / "none"."""
    if isinstance(value, bool):
        return "light" if value else "none"
    return value


def _class_set(value: Any) -> Any:
    """``classes: cxrlt2024-task2``: a name of ``ral.data.classes.CLASS_SETS`` stands for its list."""
    if isinstance(value, str):
        if value not in CLASS_SETS:
            raise PydanticCustomError(
                "class_set", "a list of class names or one of {names}", {"names": tuple(CLASS_SETS)}
            )
        return list(CLASS_SETS[value])
    return value


def _one_of(choices: Sequence[str], *, nullable: bool = False) -> PydanticCustomError:
    expected = ("null or " if nullable else "") + "one of {choices}"
    return PydanticCustomError("choice", expected, {"choices": tuple(choices)})


def _broken_rule(key: str, value: Any, expected: str) -> PydanticCustomError:
    """A rule between sections, reported like a field error: ``config key 'key' must be expected``."""
    return PydanticCustomError("config_rule", expected, {"key": key, "value": value})


def _checks_installed(info: ValidationInfo) -> bool:
    return not isinstance(info.context, Mapping) or info.context.get(_CHECK_INSTALLED, True)


class Section(BaseModel):
    """Shared settings: unknown keys are errors, numbers are never inf / nan, YAML numbers may fill strings."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, allow_inf_nan=False)


# Dataset keys whose values are one of the data layer's names.
_DATASET_CHOICES = {"uncertain": UNCERTAIN_POLICIES, "task": TASKS, "vindr_agreement": VINDR_AGREEMENTS}


class DatasetConfig(Section):
    """Where the label tables and images are, and how images are prepared."""

    train: str = Field(min_length=1, description="training label table; required")
    val: str | None = Field(
        None,
        description="validation label table: selects the best checkpoint and tunes the F1 thresholds of `ral evaluate`",
    )
    test: str | None = Field(None, description="test label table: the default table of `ral evaluate`")
    format: str | None = Field(None, description=f"{_codes(FORMATS)}; null detects it from the CSV header")
    root: str | None = Field(None, description="folder image paths are relative to (default: each table's folder)")
    image_size: Int = Field(
        64,
        ge=MIN_IMAGE_SIZE,
        description=f"images are resized to this square side (>= {MIN_IMAGE_SIZE}) and shipped as uint8; the "
        "model's device normalises them (`normalize`)",
    )
    channels: Literal[1, 3] = Field(
        1,
        description="input channels of the model: `1` reads images as grayscale; `3` (pretrained RGB stems) reads "
        "colour images as RGB, while a grayscale set (chest radiographs: a few image headers are checked) is "
        "read, cached and shipped as one channel and repeated to three on the device",
    )
    normalize: Literal[NORMALIZATIONS] | None = Field(  # type: ignore[valid-type]
        None,
        description="`unit`: `(pixel / 255 - 0.5) / 0.5`, in [-1, 1]; `imagenet`: ImageNet's per-channel "
        "mean / std (their averages for one channel); null follows the weights: the timm model's own "
        "pretrained mean / std for `timm:` backbones, `imagenet` for the others when `model.pretrained_path` "
        "is given, else `unit`. Stored in the checkpoint; `ral evaluate` / `ral predict` use the same",
    )
    uncertain: str = Field(
        "ignore",
        description="-1 labels (CheXpert, MIMIC-CXR-JPG): `ignore` (masked in the loss and the metrics), `ones`, "
        "`zeros`",
    )
    task: str = Field(
        "auto",
        description=f"{_codes(TASKS)}: `auto` lets the table decide (a generic table with one 0/1 column per class "
        "is multi-label); `single` reads such a table as single-label (exactly one 1 per row)",
    )
    classes: Annotated[list[str] | None, BeforeValidator(_class_set)] = Field(
        None,
        min_length=1,
        description="train on these class columns only, in this order; or the name of a list: "
        f"{_codes(list(CLASS_SETS))} (`cxrlt2024-task2`: CXR-LT 2024 task 2's 26 findings)",
    )
    max_classes: Int | None = Field(
        None,
        ge=1,
        description="train on the N most frequent classes of the training table only (e.g. for PadChest's "
        "open label list); not with `classes`",
    )
    views: list[Annotated[str, Field(min_length=1)]] | None = Field(
        None,
        min_length=1,
        description="keep only images of these views: the table's names (`PA`, `AP`, `LATERAL`, PadChest's `L`...) "
        "or `frontal` / `lateral` (MIMIC-CXR-JPG, PadChest, CheXpert, NIH, generic tables with a `view` column)",
    )
    vindr_agreement: str = Field(
        "any",
        description="VinDr-CXR: a class is positive if `any` radiologist marked it, or the `majority` of the "
        "image's radiologists",
    )
    augment: Annotated[Literal[AUGMENTATIONS], BeforeValidator(_augment_preset)] = Field(  # type: ignore[valid-type]
        "none",
        description="augmentation preset of the training images: `none`; `light`: random shift up to 1/16 of the "
        "side and brightness / contrast +-10%; `cxr` (MONAI): random affine (rotation <= 10 degrees, scale "
        "+-15%, shift <= 6%), gamma, contrast and brightness; `true` / `false` mean `light` / `none`",
    )
    hflip: StrictBool = Field(
        False,
        description="also flip training images horizontally with probability 0.5 (off by default: left and right "
        "matter on chest radiographs)",
    )
    cache_dir: str | None = Field(
        None,
        description="decode every image once into a memory-mapped uint8 cache in this folder, shared by all "
        "processes and later runs (one build by a pool of processes under a file lock; see "
        "[GPU-scale training](#gpu-scale-training)); the tables' image files are then not checked one by one",
    )
    cache_workers: Int | None = Field(
        None, ge=1, description="decoding processes of a cache build (null: the CPU count, at most 32)"
    )
    cache_must_exist: StrictBool = Field(
        False,
        description="refuse to build a missing or out-of-date cache (clusters: build it once with `ral data "
        "cache` before the run)",
    )
    num_workers: Int | None = Field(
        None,
        ge=0,
        description="loader worker processes per training process (null: the CPUs per process minus one, at most 8)",
    )
    persistent_workers: StrictBool = Field(
        True, description="keep the loader workers alive between epochs (when `num_workers` > 0)"
    )
    pin_memory: StrictBool | None = Field(
        None, description="page-locked loader batches for faster copies to the GPU (null: when training on CUDA)"
    )
    prefetch_factor: Int = Field(2, ge=1, description="batches each loader worker prepares ahead")
    skip_bad: StrictBool = Field(
        False,
        description="drop rows with invalid labels, missing or undecodable images (with a warning) instead of "
        "failing; the images that do not decode are listed in `<output_dir>/skipped_images.csv` (checked while "
        "`cache_dir` is built, else by decoding each image once before training)",
    )
    allow_outside_root: StrictBool = Field(
        False, description="accept relative image paths that lead out of the image root (`../`); refused by default"
    )
    group_thresholds: list[Float] | None = Field(
        None,
        min_length=2,
        max_length=2,
        description="`[head, tail]` training-prevalence thresholds of the head / medium / tail groups (default "
        "`[0.13, 0.014]`, which reproduces CXR-LT 2023's 8 / 10 / 8 split)",
    )

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str | None) -> str | None:
        if value is not None and value not in FORMATS:
            raise _one_of(FORMATS, nullable=True)
        return value

    @field_validator("channels", mode="before")
    @classmethod
    def _channels_are_integers(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):  # no true (== 1), no 3.0
            raise PydanticCustomError("channels", "1 or 3")
        return value

    @field_validator(*_DATASET_CHOICES)
    @classmethod
    def _known_choice(cls, value: str, info: ValidationInfo) -> str:
        choices = _DATASET_CHOICES[info.field_name]
        if value not in choices:
            raise _one_of(choices)
        return value

    @model_validator(mode="after")
    def _classes_or_max_classes(self) -> DatasetConfig:
        if self.classes is not None and self.max_classes is not None:
            raise _broken_rule("dataset.max_classes", self.max_classes, "null when dataset.classes is given")
        if self.cache_must_exist and self.cache_dir is None:
            raise _broken_rule("dataset.cache_must_exist", True, "false when dataset.cache_dir is not given")
        return self


class ModelConfig(Section):
    """Backbone name, its options and optional local weights."""

    backbone: str = Field(
        "tiny",
        description="a network of [Backbones and pretrained weights]"
        "(#backbones-and-pretrained-weights), or `timm:<name>`",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="passed to the backbone, e.g. `{width: 32, "
        "depth: 4, dropout: 0.1}` for `tiny`, `{dropout_prob: 0.2}` for DenseNets",
    )
    pretrained_path: str | None = Field(
        None,
        description="local weights file (see [Backbones and pretrained weights](#backbones-and-pretrained-weights))",
    )
    pretrained_min_match: Float = Field(
        0.9,
        ge=0,
        le=1,
        description="refuse pretrained weights that fill less than this share of the model's values (weights "
        "loaded or adapted to the input channels); what a load matched is printed and written to "
        "`<output_dir>/pretrained_load.json`",
    )

    @field_validator("backbone")
    @classmethod
    def _known_backbone(cls, name: str, info: ValidationInfo) -> str:
        from ral.models import check_backbone

        return check_backbone(name) if _checks_installed(info) else name


class LossConfig(Section):
    """Loss name (a key of ``ral.losses.LOSSES``) and its constructor parameters."""

    name: str = Field(
        "ral",
        description=f"any key of `ral.losses.LOSSES`: {_losses('multilabel')} for multi-label "
        f"tables; {_losses('single')} for single-label ones",
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="the loss's constructor arguments, e.g. `{gamma_neg: 4, tau: 0.05, lam: 1.5}`"
    )

    @field_validator("name")
    @classmethod
    def _registered(cls, name: str, info: ValidationInfo) -> str:
        if _checks_installed(info) and name not in LOSSES:
            raise _one_of(sorted(LOSSES))
        return name


class OptimizerConfig(Section):
    """Optimiser and its settings."""

    name: Optimizer = Field("adamw", description=f"{_codes(get_args(Optimizer))}; `sgd` uses Nesterov momentum")
    lr: Float = Field(1e-3, gt=0, description="peak learning rate")
    weight_decay: Float = Field(1e-4, ge=0, description="not applied to biases and normalisation weights")
    momentum: Float = Field(0.9, ge=0, lt=1, description="SGD momentum")


class ScheduleConfig(Section):
    """Per-step learning-rate schedule: linear warm-up, then cosine decay (or constant)."""

    name: Schedule = Field("cosine", description="`cosine` decay after the warm-up, or `none` (constant)")
    warmup_epochs: Float = Field(
        0.0, ge=0, description="linear warm-up, in epochs (may be fractional; less than `train.epochs`)"
    )
    min_lr_ratio: Float = Field(0.0, ge=0, le=1, description="the cosine decays to `lr * min_lr_ratio`")


DeviceCount = Annotated[Int, Field(ge=1)]
DeviceIndices = Annotated[list[Annotated[Int, Field(ge=0)]], Field(min_length=1)]


class TrainerConfig(Section):
    """Lightning trainer settings."""

    epochs: Int = Field(10, ge=1, description="maximum epochs")
    batch_size: Int = Field(
        64, ge=1, description="per process; the effective batch is `batch_size x processes x accumulate_grad_batches`"
    )
    eval_batch_size: Int | None = Field(None, ge=1, description="validation batch size (default: `batch_size`)")
    precision: Annotated[Precision, BeforeValidator(_number_as_text)] = Field(
        "32", description=f"{_codes(get_args(Precision))} (16-mixed: GPU; on CPU Lightning uses bf16)"
    )
    accelerator: Accelerator = Field("auto", description=_codes(get_args(Accelerator)))
    devices: DeviceCount | Literal["auto"] | DeviceIndices = Field(
        1, description="number of devices (or `auto`, or a list of GPU indices)"
    )
    strategy: str = Field("auto", min_length=1, description="Lightning strategy, e.g. `ddp`")
    num_nodes: Int = Field(1, ge=1, description="machines of a multi-node run")
    accumulate_grad_batches: Int = Field(1, ge=1, description="gradient accumulation")
    gradient_clip_val: Float | None = Field(None, gt=0, description="clip the gradient norm to this value")
    ema_decay: Float | None = Field(
        None,
        gt=0,
        lt=1,
        description="keep an exponential moving average of the weights with this decay (e.g. 0.999; the decay "
        "ramps up as `(1 + step) / (10 + step)` over the first steps); validation, `best.ckpt` selection, "
        "evaluate and predict use the averaged weights. Stored in checkpoints and restored on resume",
    )
    channels_last: StrictBool | None = Field(
        None,
        description="channels-last memory format for the model and its inputs (faster convolutions with mixed "
        "precision on GPUs; null: on CUDA with `16-mixed` / `bf16-mixed`)",
    )
    compile: StrictBool = Field(
        False, description="`torch.compile` the model (a compile warm-up at the start; checkpoints are unchanged)"
    )
    cudnn_benchmark: StrictBool = Field(
        True, description="let cuDNN pick the fastest convolution kernels (not with `deterministic`)"
    )
    early_stopping_patience: Int | None = Field(
        None, ge=1, description="stop after this many epochs without a better validation metric (needs `dataset.val`)"
    )
    sync_batchnorm: StrictBool = Field(False, description="synchronise BatchNorm statistics across processes")
    deterministic: StrictBool = Field(False, description="Lightning's `deterministic=True` (deterministic GPU kernels)")
    progress_bar: StrictBool = Field(
        True, description="Lightning's progress bar; when false, one line per epoch is printed"
    )
    log_every_n_steps: Int = Field(10, ge=1, description="logging interval of the step metrics")
    checkpoint_every_n_steps: Int = Field(
        1000,
        ge=0,
        description="write `checkpoints/mid-epoch.ckpt` every this many optimiser steps inside an epoch, so a "
        "killed run resumes from there instead of the epoch's start; 0 = only end-of-epoch checkpoints. The "
        "default bounds the work a kill loses to 1000 steps (on long epochs, e.g. CXR-LT at 1024 px, a small "
        "part of an epoch) for one save per 1000 steps, little next to the steps themselves; epochs shorter "
        "than that are only saved at their end",
    )

    @field_validator("devices", mode="wrap")
    @classmethod
    def _one_devices_error(cls, devices: Any, handler: ValidatorFunctionWrapHandler) -> int | str | list[int]:
        """One error for the three accepted forms instead of one per form."""
        try:
            return handler(devices)
        except ValidationError:
            raise PydanticCustomError(
                "devices", "an integer >= 1, 'auto' or a non-empty list of device indices (integers >= 0)"
            ) from None


class Config(Section):
    """A whole training run. Build with :func:`load_config` or :func:`config_from_dict`."""

    seed: Int = Field(
        0,
        ge=0,
        description="seeds Python, numpy, torch and the loader workers; shuffling depends "
        "only on the seed and the epoch",
    )
    output_dir: str = Field(
        "runs/train",
        min_length=1,
        description="the run folder; if it holds a run, `--resume` continues it and `--overwrite` starts it anew "
        "(without either, `ral train` refuses)",
    )
    dataset: DatasetConfig = Field(
        description="the label tables and how their images are read. Multi-label tables "
        "mark uncertain or missing labels as NaN; losses are built with "
        "`ignore_value=nan`, so those entries count neither in the loss nor in its mean."
    )
    model: ModelConfig = Field(default_factory=ModelConfig, description="the network")
    loss: LossConfig = Field(
        default_factory=LossConfig,
        description="the training loss. The training set's "
        "per-class positive counts (and its size) are passed to the losses that take them "
        f"({_losses_taking_counts()}).",
    )
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig, description="the optimiser")
    schedule: ScheduleConfig = Field(
        default_factory=ScheduleConfig,
        description="the per-step learning rate: linear warm-up, then cosine decay or a constant",
    )
    train: TrainerConfig = Field(default_factory=TrainerConfig, description="the Lightning trainer")

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, raw: Any) -> Any:
        """A section left out or left empty (``model:`` in YAML) takes its defaults."""
        if not isinstance(raw, Mapping):
            return raw
        return {**raw, **{name: {} for name in _sections(cls) if raw.get(name) is None}}

    @model_validator(mode="after")
    def _rules_between_sections(self) -> Config:
        schedule, train = self.schedule, self.train
        if schedule.warmup_epochs >= train.epochs:
            raise _broken_rule(
                "schedule.warmup_epochs", schedule.warmup_epochs, f"smaller than train.epochs ({train.epochs})"
            )
        if train.early_stopping_patience is not None and self.dataset.val is None:
            raise _broken_rule(
                "train.early_stopping_patience",
                train.early_stopping_patience,
                "null when dataset.val is not given (early stopping watches a validation metric)",
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (str / int / float / bool / None / list / dict only)."""
        return self.model_dump(mode="json")


# --- schema navigation and error messages ----------------------------------------------------
def _section_type(info: FieldInfo | None) -> type[Section] | None:
    annotation = info.annotation if info is not None else None
    return annotation if isinstance(annotation, type) and issubclass(annotation, Section) else None


def _sections(model: type[BaseModel]) -> list[str]:
    return [name for name, info in model.model_fields.items() if _section_type(info) is not None]


def _is_mapping(info: FieldInfo) -> bool:
    return info.annotation is dict or get_origin(info.annotation) is dict


def _unknown_key(key: str, known: Sequence[str]) -> ValueError:
    parent, _, leaf = key.rpartition(".")
    close = difflib.get_close_matches(leaf, list(known), n=1)
    hint = f" (did you mean {(parent + '.' if parent else '') + close[0]!r}?)" if close else ""
    return ValueError(f"unknown config key {key!r}{hint}; known keys here: {sorted(known)}")


def _locate(loc: tuple[int | str, ...]) -> tuple[str, type[BaseModel], FieldInfo | None]:
    """Dotted key of an error location, the section holding its last name, and that field (None if unknown)."""
    key, holder, info = "", Config, None
    section: type[BaseModel] | None = Config
    for item in loc:
        if isinstance(item, int):
            key += f"[{item}]"
        elif section is not None:
            key = f"{key}.{item}" if key else item
            holder, info = section, section.model_fields.get(item)
            section = _section_type(info)
        # other names (union members, mapping keys) are not part of the key
    return key, holder, info


def _is_integer(info: FieldInfo) -> bool:
    """Whether the field holds an int (``Int``, ``Int | None``)."""
    options = get_args(info.annotation) or (info.annotation,)
    return int in (get_args(t)[0] if get_origin(t) is Annotated else t for t in options)


def _range(info: FieldInfo, *, item: bool) -> str:
    """``an integer >= 1``, ``a finite number in [0, 1)``, ``null or a finite number > 0`` ... (``item``: of a list)"""
    kind = "an integer" if _is_integer(info) else "a finite number"
    low = high = None
    for bound in info.metadata:
        if isinstance(bound, (annotated_types.Ge, annotated_types.Gt)):
            low = ("[", ">=", bound.ge) if isinstance(bound, annotated_types.Ge) else ("(", ">", bound.gt)
        elif isinstance(bound, (annotated_types.Le, annotated_types.Lt)):
            high = ("]", "<=", bound.le) if isinstance(bound, annotated_types.Le) else (")", "<", bound.lt)
    if low and high:
        text = f"{kind} in {low[0]}{low[2]}, {high[2]}{high[0]}"
    else:
        one = low or high
        text = f"{kind} {one[1]} {one[2]}" if one else kind
    return ("null or " if not item and type(None) in get_args(info.annotation) else "") + text


_TYPE_PHRASES = {
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a string",
    "string_too_short": "a non-empty string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}
_RANGE_ERRORS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number")


def _message(error: Mapping[str, Any]) -> str:
    """One line for pydantic's ``error``: the dotted key, what it must be, the received value."""
    kind, ctx = error["type"], error.get("ctx") or {}
    key, holder, info = _locate(tuple(error["loc"]))
    key, value = ctx.get("key", key), ctx.get("value", error.get("input"))
    where = f"config key {key!r}" if key else "the config"
    if kind == "extra_forbidden":
        return str(_unknown_key(key, list(holder.model_fields)))
    if kind == "missing":
        return f"{where} is missing ({info.description if info else 'required'})"
    if kind == "value_error":  # a check the validator delegates (ral.models.check_backbone) explains itself
        return f"{where}: {ctx['error']}"
    if kind in _RANGE_ERRORS and info is not None:
        expected = _range(info, item=isinstance(error["loc"][-1], int))
    elif kind == "literal_error":
        choices = get_args(info.annotation) if info is not None and get_origin(info.annotation) is Literal else ()
        expected = f"one of {choices}" if choices else f"one of {ctx['expected']}"
    elif kind in ("too_short", "too_long"):
        size = ctx.get("min_length", ctx.get("max_length"))
        bound = "at least" if kind == "too_short" else "at most"
        expected = f"a list of {bound} {size} item{'s' if size != 1 else ''}"
    else:
        expected = _TYPE_PHRASES.get(kind, error["msg"])
    return f"{where} must be {expected}, got {value!r}"


def _validate(raw: Any, *, check_installed: bool = True) -> Config:
    try:
        return Config.model_validate(raw, context={_CHECK_INSTALLED: check_installed})
    except ValidationError as exc:
        raise ValueError(_message(exc.errors(include_url=False)[0])) from None


# --- public API ----------------------------------------------------------------------------
def config_from_dict(raw: Mapping[str, Any]) -> Config:
    """Build and validate a :class:`Config` from a nested dict (missing keys take their defaults).

    Raises:
        ValueError: one line naming the first unknown key, wrong type or bad value.
    """
    return _validate(raw)


def validate_config(config: Config) -> Config:
    """Validate ``config`` again, e.g. after changes in Python (lists, dicts, rules between sections); return it.

    Raises:
        ValueError: naming the key and the received value.
    """
    _validate(config.model_dump())
    return config


def config_from_checkpoint(meta: Mapping[str, Any], path: str | os.PathLike = "checkpoint") -> Config:
    """The :class:`Config` that ``ral train`` stored in ``checkpoint["ral"]`` (``meta``, see
    :func:`ral.engine.checkpoint.checkpoint_metadata`).

    The loss and backbone names are not checked against this installation: a checkpoint stays
    readable when the loss it was trained with is not registered here.

    Raises:
        ValueError: ``meta`` holds no config, or one this version of ``ral`` cannot read.
    """
    raw = meta.get("config")
    if not isinstance(raw, Mapping):
        raise ValueError(f"{path} holds no stored config (checkpoint['ral']['config']), got {raw!r}")
    try:
        return _validate(raw, check_installed=False)
    except ValueError as exc:
        raise ValueError(f"{path}: stored {exc}") from None


def _check_override_key(parts: list[str], item: str) -> None:
    """Raise unless ``parts`` names a config key (anything below ``loss.params`` / ``model.options`` is free)."""
    section: type[BaseModel] | None = Config
    for depth, part in enumerate(parts):
        key = ".".join(parts[: depth + 1])
        if section is None:  # inside a free-form mapping
            return
        info = section.model_fields.get(part)
        if info is None:
            raise _unknown_key(key, list(section.model_fields))
        section = _section_type(info)
        if section is None and not _is_mapping(info) and depth < len(parts) - 1:
            raise ValueError(f"override {item!r}: {key!r} is not a section")


def apply_overrides(raw: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with ``section.key=value`` overrides applied (values parsed as YAML).

    ``loss.params.gamma_neg=2`` creates nested keys under the free-form ``loss.params`` and
    ``model.options``; elsewhere an unknown key raises ``ValueError``. Values are checked by
    :func:`config_from_dict`.
    """
    import copy

    out = copy.deepcopy(dict(raw))
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override must look like section.key=value, got {item!r}")
        parts = key.strip().split(".")
        _check_override_key(parts, item)
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ValueError(f"override {item!r}: {part!r} is not a section")
            node = child
        node[parts[-1]] = yaml.safe_load(text) if text.strip() else None
    return out


def load_config(path: str | os.PathLike | None, overrides: Sequence[str] | None = None) -> Config:
    """Read a YAML config (or start from defaults when ``path`` is None), apply overrides, validate.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: YAML syntax error, unknown key, wrong type or bad value.
    """
    raw: Any = {}
    if path is not None:
        path = Path(path)
        if not path.exists() or path.is_dir():
            raise FileNotFoundError(f"config file not found: {path}")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"config file {path} is not valid YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise ValueError(f"config file {path} must hold a mapping at the top level, got {type(raw).__name__}")
    return config_from_dict(apply_overrides(raw, list(overrides or [])))


def dump_yaml(config: Config) -> str:
    """The config as YAML text (what ``ral train`` stores in ``<output_dir>/config.yaml``)."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)


# --- the reference in docs/usage.md ----------------------------------------------------------
def _table(fields: Mapping[str, FieldInfo]) -> str:
    rows = ["| key | default | meaning |", "| --- | --- | --- |"]
    for name, info in fields.items():
        default = "—" if info.is_required() else _yaml_text(info.get_default(call_default_factory=True))
        meaning = (info.description or "").replace("|", "\\|")
        rows.append(f"| `{name}` | {default} | {meaning} |")
    return "\n".join(rows)


def config_reference() -> str:
    """Markdown: one table (key, default, meaning) for the top-level keys and one per section."""
    sections = _sections(Config)
    blocks = ["**top level**", _table({n: f for n, f in Config.model_fields.items() if n not in sections})]
    for name in sections:
        info = Config.model_fields[name]
        blocks += [f"**`{name}`**: {info.description}", _table(_section_type(info).model_fields)]
    return "\n\n".join(blocks) + "\n"


def with_reference(text: str) -> str:
    """``text`` (docs/usage.md) with the part between the config-reference markers regenerated.

    Raises:
        ValueError: the markers are missing or out of order.
    """
    start, end = text.find(REFERENCE_START), text.find(REFERENCE_END)
    if start < 0 or end < start:
        raise ValueError(f"the text needs {REFERENCE_START!r} followed by {REFERENCE_END!r}")
    return text[: start + len(REFERENCE_START)] + "\n\n" + config_reference() + "\n" + text[end:]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ral.engine.config", description="The config reference.")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--reference", action="store_true", help="print the markdown config reference")
    action.add_argument("--update", metavar="DOC", help="regenerate the marked config reference in DOC (docs/usage.md)")
    args = parser.parse_args(argv)
    if args.reference:
        print(config_reference(), end="")
        return 0
    doc = Path(args.update)
    try:
        doc.write_text(with_reference(doc.read_text(encoding="utf-8")), encoding="utf-8")
    except (OSError, ValueError) as exc:
        print(f"python -m ral.engine.config: error: {doc}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
