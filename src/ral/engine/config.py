"""The training configuration: a YAML file (plus ``key=value`` overrides) read into dataclasses.

    seed: 0
    output_dir: runs/my-run
    dataset:   {train: train.csv, val: val.csv, test: test.csv, format: null, root: null,
                image_size: 64, uncertain: ignore, classes: null, augment: false, ...}
    model:     {backbone: tiny, options: {}, pretrained_path: null}
    loss:      {name: ral, params: {}}
    optimizer: {name: adamw, lr: 1.0e-3, weight_decay: 1.0e-4, momentum: 0.9}
    schedule:  {name: cosine, warmup_epochs: 0, min_lr_ratio: 0.0}
    train:     {epochs: 10, batch_size: 64, precision: "32", devices: 1, strategy: auto, ...}

Every key and value is checked by :func:`validate_config` before anything is trained; a bad
one raises ``ValueError`` naming the key (``optimizer.lr``) and the received value. Relative
paths are relative to the current directory. See docs/usage.md for every key.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("cosine", "none")
PRECISIONS = ("32", "32-true", "bf16-mixed", "16-mixed")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")


@dataclass
class DatasetConfig:
    """Where the labels and images are, and how images are prepared."""

    train: str | None = None
    val: str | None = None
    test: str | None = None
    format: str | None = None
    root: str | None = None
    image_size: int = 64
    uncertain: str = "ignore"
    classes: list[str] | None = None
    augment: bool = False
    cache_dir: str | None = None
    num_workers: int = 0
    skip_bad: bool = False
    group_thresholds: list[float] | None = None


@dataclass
class ModelConfig:
    """Backbone name (see ``ral.models.BACKBONES``), its options and optional local weights."""

    backbone: str = "tiny"
    options: dict[str, Any] = field(default_factory=dict)
    pretrained_path: str | None = None


@dataclass
class LossConfig:
    """Loss name (a key of ``ral.losses.LOSSES``) and its constructor parameters."""

    name: str = "ral"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimizerConfig:
    name: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9


@dataclass
class ScheduleConfig:
    """Per-step learning-rate schedule: linear warm-up, then cosine decay (or constant)."""

    name: str = "cosine"
    warmup_epochs: float = 0.0
    min_lr_ratio: float = 0.0


@dataclass
class TrainerConfig:
    epochs: int = 10
    batch_size: int = 64
    eval_batch_size: int | None = None
    precision: str = "32"
    accelerator: str = "auto"
    devices: Union[int, str, list[int]] = 1
    strategy: str = "auto"
    num_nodes: int = 1
    accumulate_grad_batches: int = 1
    gradient_clip_val: float | None = None
    early_stopping_patience: int | None = None
    sync_batchnorm: bool = False
    deterministic: bool = False
    progress_bar: bool = True
    log_every_n_steps: int = 10


@dataclass
class Config:
    """A whole training run. Build with :func:`load_config` or :func:`config_from_dict`."""

    seed: int = 0
    output_dir: str = "runs/train"
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainerConfig = field(default_factory=TrainerConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (str / int / float / bool / None / list / dict only)."""
        return dataclasses.asdict(self)


# --- parsing -------------------------------------------------------------------------------
def _unknown_key(key: str, known: list[str]) -> ValueError:
    parent, _, leaf = key.rpartition(".")
    close = difflib.get_close_matches(leaf, known, n=1)
    hint = f" (did you mean {(parent + '.' if parent else '') + close[0]!r}?)" if close else ""
    return ValueError(f"unknown config key {key!r}{hint}; known keys here: {sorted(known)}")


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Convert a YAML value to the annotated type, or raise ValueError naming ``key``."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(errors[-1] if len(errors) == 1 else f"config key {key!r} has a bad value {value!r}")
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"config key {key!r} must be a list, got {value!r}")
        (item,) = typing.get_args(hint)
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ValueError(f"config key {key!r} must be a mapping, got {value!r}")
        return {str(k): v for k, v in value.items()}
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"config key {key!r} must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise ValueError(f"config key {key!r} must be an integer, got {value!r}")
        return int(value)
    if hint is float:
        if isinstance(value, bool):
            raise ValueError(f"config key {key!r} must be a number, got {value!r}")
        try:  # YAML reads 1e-3 (no dot) as a string
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"config key {key!r} must be a number, got {value!r}") from None
    if hint is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # e.g. precision: 32
        if not isinstance(value, str):
            raise ValueError(f"config key {key!r} must be a string, got {value!r}")
        return value
    if hint is Any:
        return value
    raise TypeError(f"unsupported annotation {hint!r} for {key!r}")


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ValueError(f"config section {prefix or 'top level'!r} must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values = {}
    for key, value in raw.items():
        full = f"{prefix}{key}"
        if key not in names:
            raise _unknown_key(full, names)
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            values[key] = _build(hint, value, f"{full}.")
        else:
            values[key] = _coerce(value, hint, full)
    return cls(**values)


def config_from_dict(raw: dict[str, Any]) -> Config:
    """Build a :class:`Config` from a nested dict; unknown keys and wrong types raise ValueError."""
    return _build(Config, raw, "")


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with ``section.key=value`` overrides applied (values parsed as YAML).

    ``loss.params.gamma_neg=2`` creates nested keys under the free-form ``loss.params`` and
    ``model.options``; elsewhere an unknown key raises ``ValueError``.
    """
    import copy

    out = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override must look like section.key=value, got {item!r}")
        parts = key.strip().split(".")
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ValueError(f"override {item!r}: {part!r} is not a section")
            node = child
        node[parts[-1]] = yaml.safe_load(text) if text.strip() else None
    config_from_dict(out)  # reject unknown keys now, naming the override
    return out


def load_config(path: str | os.PathLike | None, overrides: list[str] | None = None) -> Config:
    """Read a YAML config (or start from defaults when ``path`` is None), apply overrides, validate.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: YAML syntax error, unknown key, wrong type or bad value (see :func:`validate_config`).
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
    raw = apply_overrides(raw, list(overrides or []))
    config = config_from_dict(raw)
    validate_config(config)
    return config


# --- validation ----------------------------------------------------------------------------
def _check(condition: bool, key: str, value: Any, expected: str) -> None:
    if not condition:
        raise ValueError(f"config key {key!r} must be {expected}, got {value!r}")


def _positive_int(key: str, value: Any) -> None:
    _check(isinstance(value, int) and value >= 1, key, value, "an integer >= 1")


def validate_config(config: Config) -> Config:
    """Check every value that can be checked without reading data; return ``config``.

    Loss, backbone, optimiser, schedule and trainer settings are checked here; the tables
    (files, columns, format) are checked when they are read, also before training starts.

    Raises:
        ValueError: naming the key and the received value.
    """
    from ral.data.formats import FORMATS, UNCERTAIN_POLICIES
    from ral.losses import LOSSES
    from ral.models import check_backbone

    d, m, lo, o, s, t = config.dataset, config.model, config.loss, config.optimizer, config.schedule, config.train
    _check(isinstance(config.seed, int) and config.seed >= 0, "seed", config.seed, "an integer >= 0")
    _check(bool(config.output_dir), "output_dir", config.output_dir, "a folder path")
    _check(d.train is not None, "dataset.train", d.train, "the path of the training table")
    _check(d.format is None or d.format in FORMATS, "dataset.format", d.format, f"null (auto) or one of {FORMATS}")
    _check(d.uncertain in UNCERTAIN_POLICIES, "dataset.uncertain", d.uncertain, f"one of {UNCERTAIN_POLICIES}")
    _check(d.image_size >= 8, "dataset.image_size", d.image_size, "an integer >= 8")
    _check(d.num_workers >= 0, "dataset.num_workers", d.num_workers, "an integer >= 0")
    _check(d.classes is None or len(d.classes) > 0, "dataset.classes", d.classes, "null or a non-empty list")
    _check(d.group_thresholds is None or len(d.group_thresholds) == 2, "dataset.group_thresholds",
           d.group_thresholds, "null or [head, tail] prevalence thresholds")
    try:
        check_backbone(m.backbone)
    except ValueError as exc:
        raise ValueError(f"config key 'model.backbone': {exc}") from None
    _check(lo.name in LOSSES, "loss.name", lo.name, f"one of {sorted(LOSSES)}")
    _check(o.name in OPTIMIZERS, "optimizer.name", o.name, f"one of {OPTIMIZERS}")
    _check(math.isfinite(o.lr) and o.lr > 0, "optimizer.lr", o.lr, "a finite number > 0")
    _check(math.isfinite(o.weight_decay) and o.weight_decay >= 0, "optimizer.weight_decay", o.weight_decay, "a number >= 0")
    _check(0 <= o.momentum < 1, "optimizer.momentum", o.momentum, "in [0, 1)")
    _check(s.name in SCHEDULES, "schedule.name", s.name, f"one of {SCHEDULES}")
    _check(s.warmup_epochs >= 0, "schedule.warmup_epochs", s.warmup_epochs, "a number >= 0")
    _check(s.warmup_epochs < t.epochs or s.warmup_epochs == 0, "schedule.warmup_epochs", s.warmup_epochs,
           f"smaller than train.epochs ({t.epochs})")
    _check(0 <= s.min_lr_ratio <= 1, "schedule.min_lr_ratio", s.min_lr_ratio, "in [0, 1]")
    _positive_int("train.epochs", t.epochs)
    _positive_int("train.batch_size", t.batch_size)
    if t.eval_batch_size is not None:
        _positive_int("train.eval_batch_size", t.eval_batch_size)
    _check(t.precision in PRECISIONS, "train.precision", t.precision, f"one of {PRECISIONS}")
    _check(t.accelerator in ACCELERATORS, "train.accelerator", t.accelerator, f"one of {ACCELERATORS}")
    devices_ok = (
        (isinstance(t.devices, int) and t.devices >= 1)
        or t.devices == "auto"
        or (isinstance(t.devices, list) and len(t.devices) > 0 and all(i >= 0 for i in t.devices))
    )
    _check(devices_ok, "train.devices", t.devices, "an integer >= 1, 'auto' or a list of device indices")
    _positive_int("train.num_nodes", t.num_nodes)
    _positive_int("train.accumulate_grad_batches", t.accumulate_grad_batches)
    _positive_int("train.log_every_n_steps", t.log_every_n_steps)
    if t.gradient_clip_val is not None:
        _check(t.gradient_clip_val > 0, "train.gradient_clip_val", t.gradient_clip_val, "null or a number > 0")
    if t.early_stopping_patience is not None:
        _positive_int("train.early_stopping_patience", t.early_stopping_patience)
        _check(d.val is not None, "train.early_stopping_patience", t.early_stopping_patience,
               "null when dataset.val is not given (early stopping watches a validation metric)")
    return config


def dump_yaml(config: Config) -> str:
    """The config as YAML text (what ``ral train`` stores in ``<output_dir>/config.yaml``)."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
