"""The training configuration: a YAML file (plus overrides) read into a pydantic schema.

    seed: 0
    output_dir: runs/my-run
    dataset:   {train: train.csv, val: val.csv, test: test.csv, format: null, root: null,
                image_size: 64, uncertain: ignore, classes: null, augment: false, ...}
    model:     {backbone: tiny, options: {}, pretrained_path: null}
    loss:      {name: ral, params: {}}
    optimizer: {name: adamw, lr: 1.0e-3, weight_decay: 1.0e-4, momentum: 0.9}
    schedule:  {name: cosine, warmup_epochs: 0, min_lr_ratio: 0.0}
    train:     {epochs: 10, batch_size: 64, precision: "32", devices: 1, strategy: auto, ...}

Each option is declared once, on its field here (type, default, constraint, description); the
`ral train` flags (``--optimizer.lr``), the ``key=value`` overrides, validation and the config
reference of docs/usage.md (:mod:`ral.engine.reference`) are derived from these declarations.
The first error becomes one ``ValueError`` line naming the dotted key and the received value
(:func:`ral.engine.configfile.config_error`). Relative paths are relative to the current directory.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    StrictBool,
    Tag,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from ral.data.images import MAX_IMAGE_PIXELS, MIN_IMAGE_SIZE
from ral.data.options import TableOptions
from ral.data.transforms import AUGMENTATIONS, NORMALIZATIONS
from ral.losses import LOSSES, Choice, FloatRange, IntRange

Optimizer = Literal["adamw", "adam", "sgd"]
Schedule = Literal["cosine", "none"]
Precision = Literal["32", "32-true", "bf16-mixed", "16-mixed"]
Accelerator = Literal["auto", "cpu", "gpu", "cuda", "mps"]
Tracker = Literal["csv", "tensorboard", "mlflow", "wandb"]

CHECK_INSTALLED = "check_installed"  # validation context: False skips loss / backbone availability


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


#: Integers fit in 64 bits: a larger one is refused naming its key (not later, inside Lightning or numpy).
MAX_INT = 2**63 - 1
Int = Annotated[int, Strict(), Field(le=MAX_INT)]  # no true / false, no "3", no 3.0
Float = Annotated[float, Strict(), BeforeValidator(_yaml_number)]  # ints and "1e-3" too, never true / false


def yaml_text(value: Any) -> str:
    """``value`` as written in YAML (strings that YAML would read as something else are quoted)."""
    if isinstance(value, str):
        return value if yaml.safe_load(value) == value else f'"{value}"'
    if isinstance(value, float):
        return f"{value:g}"
    return yaml.safe_dump(value, default_flow_style=True, width=1000).strip().removesuffix("\n...").strip()


def _codes(values: Sequence[Any]) -> str:
    """```a`, `b` or `c``` for the docs."""
    codes = [f"`{yaml_text(v)}`" for v in values]
    return codes[0] if len(codes) == 1 else ", ".join(codes[:-1]) + " or " + codes[-1]


def _losses(task: str) -> str:
    return _codes([name for name, cls in LOSSES.items() if cls.task == task])


def _losses_taking_counts() -> str:
    return _codes([name for name, cls in LOSSES.items() if cls.statistics or cls.optional_statistics])


def _strict_int(value: Any) -> Any:
    """Literal integers take no ``true`` (== 1) and no ``3.0``."""
    if isinstance(value, bool) or (isinstance(value, float) and value.is_integer()):
        raise ValueError("an integer expected")
    return value


def _augment_preset(value: Any) -> Any:
    """``augment: true`` / ``false`` (configs and checkpoints before the presets) mean "light" / "none"."""
    if isinstance(value, bool):
        return "light" if value else "none"
    return value


def _checks_installed(info: ValidationInfo) -> bool:
    return not isinstance(info.context, Mapping) or info.context.get(CHECK_INSTALLED, True)


def section_type(info: FieldInfo | None) -> type[BaseModel] | None:
    annotation = info.annotation if info is not None else None
    return annotation if isinstance(annotation, type) and issubclass(annotation, Section) else None


def unknown_key(key: str, known: Sequence[str]) -> ValueError:
    """``unknown config key 'train.epoch' (did you mean 'train.epochs'?)`` as one line."""
    parent, _, leaf = key.rpartition(".")
    close = difflib.get_close_matches(leaf, list(known), n=1)
    hint = f" (did you mean {(parent + '.' if parent else '') + close[0]!r}?)" if close else ""
    return ValueError(f"unknown config key {key!r}{hint}; known here: {sorted(known)}")


class Section(BaseModel):
    """Shared settings: unknown keys are errors, numbers are never inf / nan, YAML numbers may fill strings."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, allow_inf_nan=False)


class DatasetConfig(Section, TableOptions):
    """Where the label tables and images are, how the tables are read (:class:`~ral.data.TableOptions`'s
    fields) and how images are prepared."""

    model_config = ConfigDict(frozen=False)

    train: str = Field(min_length=1, description="training label table; required")
    val: str | None = Field(
        None,
        description="validation label table: selects the best checkpoint and tunes the F1 thresholds of `ral evaluate`",
    )
    test: str | None = Field(None, description="test label table: the default table of `ral evaluate`")
    image_size: Int = Field(
        64,
        ge=MIN_IMAGE_SIZE,
        description=f"images are resized to this square side (>= {MIN_IMAGE_SIZE}) and shipped as uint8; the "
        "model's device normalises them (`normalize`)",
    )
    max_image_pixels: Int | None = Field(
        MAX_IMAGE_PIXELS,
        ge=1,
        description="an image of more pixels (width x height) is not decoded but a bad row, dropped with "
        "`skip_bad` (a decompression bomb); the default is PIL's limit; null: no limit",
    )
    channels: Annotated[Literal[1, 3], BeforeValidator(_strict_int)] = Field(
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
    group_thresholds: list[Float] | None = Field(
        None,
        min_length=2,
        max_length=2,
        description="`[head, tail]` training-prevalence thresholds of the head / medium / tail groups (default "
        "`[0.13, 0.014]`, which reproduces CXR-LT 2023's 8 / 10 / 8 split)",
    )

    @model_validator(mode="after")
    def _cache_must_exist_needs_cache_dir(self) -> DatasetConfig:
        if self.cache_must_exist and self.cache_dir is None:
            raise ValueError("dataset.cache_must_exist must be false when dataset.cache_dir is not given, got true")
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
            raise ValueError(f"one of {sorted(LOSSES)} expected")
        return name

    @model_validator(mode="after")
    def _known_params(self, info: ValidationInfo) -> LossConfig:
        """``params`` must be keyword arguments of the loss class (its signature is their declaration)."""
        if not _checks_installed(info):
            return self
        parameters = inspect.signature(LOSSES[self.name]).parameters
        if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            return self
        for key in self.params:
            if key not in parameters:
                close = difflib.get_close_matches(key, list(parameters), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"{self.name!r} takes no parameter {key!r}{hint}; it takes {sorted(parameters)}")
        return self


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
        0.0, ge=0, description="linear warm-up, in epochs (may be fractional; at most `train.epochs`)"
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
        True,
        description="Lightning's progress bar, where stderr is a terminal and without `--quiet`; when false (or "
        "not shown), one line per epoch is printed",
    )
    log_every_n_steps: Int = Field(10, ge=1, description="logging interval of the step metrics")
    logger: Annotated[list[Tracker], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)] = Field(
        ["csv"],
        description="experiment trackers: the CSV log (`logs/metrics.csv`) is always written; `tensorboard`, "
        "`mlflow` (an SQLite store in `<output_dir>/mlflow`) and `wandb` (offline) add theirs; one name or a list, "
        "e.g. `[tensorboard, mlflow]` (see [Experiment tracking](#experiment-tracking))",
    )
    checkpoint_every_n_steps: Int = Field(
        1000,
        ge=0,
        description="write `checkpoints/mid-epoch.ckpt` every this many optimiser steps inside an epoch, so a "
        "killed run resumes from there instead of the epoch's start; 0 = only end-of-epoch checkpoints. The "
        "default bounds the work a kill loses to 1000 steps (on long epochs, e.g. CXR-LT at 1024 px, a small "
        "part of an epoch) for one save per 1000 steps, little next to the steps themselves; epochs shorter "
        "than that are only saved at their end",
    )

    @field_validator("logger")
    @classmethod
    def _logger_installed(cls, names: list[str], info: ValidationInfo) -> list[str]:
        if _checks_installed(info) and set(names) - {"csv"}:
            from ral.engine.loggers import check_tracker

            return [check_tracker(name) for name in names]
        return names

    @field_validator("devices", mode="wrap")
    @classmethod
    def _one_devices_error(cls, devices: Any, handler: ValidatorFunctionWrapHandler) -> int | str | list[int]:
        """One error for the three accepted forms instead of one per form."""
        try:
            return handler(devices)
        except ValidationError:
            raise ValueError("an integer >= 1, 'auto' or a non-empty list of device indices (integers >= 0)") from None


def _range_type(value: Any) -> str | None:
    """The ``type`` of a search range (a mapping without one is a float range)."""
    return value.get("type", "float") if isinstance(value, Mapping) else getattr(value, "type", None)


SearchRangeEntry = Annotated[
    Annotated[FloatRange, Tag("float")] | Annotated[IntRange, Tag("int")] | Annotated[Choice, Tag("choice")],
    Discriminator(_range_type),
]


class TuneConfig(Section):
    """What `ral tune` searches (its other settings are its flags: docs/tune.md)."""

    space: dict[str, SearchRangeEntry | None] = Field(
        default_factory=dict,
        description="changes to the loss's declared search space (`search_space` of its class, docs/tune.md): "
        "`name: {low: 1, high: 6}` (add `log: true`), `{type: int, low: 1, high: 4}`, `{type: choice, values: "
        "[...]}`; `name.i` is element i of a list option (`eps_pos.0`); null keeps the config's value; "
        "`optimizer.lr` / `optimizer.weight_decay` add the optimiser's",
    )
    params: list[str] | None = Field(
        None, min_length=1, description="search only these entries of the space, e.g. `[gamma_neg, tau]` (null: all)"
    )


class Config(Section):
    """A whole training run. Build with :func:`load_config` or :func:`config_from_dict`."""

    seed: Annotated[int, Strict()] = Field(  # not Int: its bound would replace this one
        0,
        ge=0,
        le=2**32 - 1,
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
    tune: TuneConfig = Field(default_factory=TuneConfig, description="the search space of `ral tune` (docs/tune.md)")

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, raw: Any) -> Any:
        """A section left out or left empty (``model:`` in YAML) takes its defaults."""
        if not isinstance(raw, Mapping):
            return raw
        sections = [name for name, info in cls.model_fields.items() if section_type(info) is not None]
        return {**raw, **{name: {} for name in sections if raw.get(name) is None}}

    @model_validator(mode="after")
    def _rules_between_sections(self) -> Config:
        schedule, train = self.schedule, self.train
        if schedule.warmup_epochs > train.epochs:  # equal: the whole run warms up (a 1-epoch trial of a config)
            raise ValueError(
                f"schedule.warmup_epochs must be at most train.epochs ({train.epochs}), got {schedule.warmup_epochs:g}"
            )
        if train.early_stopping_patience is not None and self.dataset.val is None:
            raise ValueError(
                "train.early_stopping_patience must be null when dataset.val is not given (early stopping watches "
                f"a validation metric), got {train.early_stopping_patience}"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (str / int / float / bool / None / list / dict only)."""
        return self.model_dump(mode="json")
