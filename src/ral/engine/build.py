"""Everything a run needs before training starts: tables, images, groups, loss and model, all validated.

:func:`prepare_run` reads the tables, checks them (and, when resuming, the checkpoint against
them), prepares the images and builds the loss and the model, so a bad file, column, format,
loss parameter, backbone option or mismatched checkpoint fails here, before any training step.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ral.data.dataset import ImageDataset, read_channels
from ral.data.table import LabelTable
from ral.engine.config import Config, DatasetConfig, ModelConfig
from ral.engine.configfile import validate_config


@contextmanager
def named(key: str) -> Iterator[None]:
    """Errors raised inside start with ``key`` (``dataset.val: ...``), keeping their type and fields."""
    try:
        yield
    except (ValueError, OSError) as exc:
        if len(exc.args) == 1 and isinstance(exc.args[0], str):
            exc.args = (f"{key}: {exc.args[0]}",)
        raise


@dataclass
class PreparedRun:
    """Validated inputs of one training run.

    ``train`` / ``val`` are the rows kept (undecodable images dropped with ``skip_bad``);
    ``skipped`` lists the dropped images (``{"table", "row", "id", "path", "reason"}``);
    ``pretrained`` is what loading ``model.pretrained_path`` matched (see
    :func:`ral.models.load_pretrained`), or None without pretrained weights.
    """

    config: Config
    train: LabelTable
    val: LabelTable | None
    model: nn.Module
    loss: nn.Module
    meta: dict[str, Any]
    train_images: ImageDataset
    val_images: ImageDataset | None = None
    skipped: list[dict[str, Any]] = field(default_factory=list)
    pretrained: dict[str, Any] | None = None


#: The part of an official split file (MIMIC-CXR-JPG's) each table key reads.
OFFICIAL_SPLIT = {"dataset.train": "train", "dataset.val": "validate", "dataset.test": "test"}


def load_split(path: str | os.PathLike, key: str, dataset: DatasetConfig, classes: list[str] | None) -> LabelTable:
    """Read one table of the config (``key`` names it in errors), keeping ``classes`` in order.

    ``dataset.max_classes`` applies when ``classes`` is None (the training table); a table
    without labels (one to predict) is refused. With ``dataset.cache_dir`` the image files are
    not checked one by one here: an up-to-date cache does not need them, and a cache build reads
    (and checks) every one of them.
    """
    from ral.data import load_table

    with named(key):
        table = load_table(
            path,
            dataset,
            classes=classes,
            max_classes=dataset.max_classes if classes is None else None,
            split=OFFICIAL_SPLIT.get(key),
            check_images="none" if dataset.cache_dir is not None else "exists",
        )
    if table.num_classes == 0 or (len(table) and np.isnan(table.labels).all()):
        raise ValueError(f"{key}: {path} has no labels (a table without label columns can only be predicted)")
    return table


def build_run_loss(name: str, params: dict[str, Any], task: str, train: LabelTable) -> nn.Module:
    """Build loss ``name`` for ``train``'s task with the training statistics it takes.

    Multi-label losses get ``ignore_value=nan`` (uncertain labels are NaN in the targets). The
    labels were validated when the tables were read, so the loss does not check targets on
    every step (on a GPU that check is a host-device synchronisation).

    Raises:
        ValueError: loss for the other task, or parameters the loss rejects.
    """
    from ral.losses import LOSSES, build_loss, loss_class

    cls = loss_class(name)
    if cls.task != task:
        fitting = sorted(n for n, c in LOSSES.items() if c.task == task)
        raise ValueError(
            f"config key 'loss.name': {name!r} is a {cls.task} loss but the dataset is {task}; use one of {fitting}"
        )
    kwargs = {"check_targets": False, **params}
    if task == "multilabel":
        kwargs.setdefault("ignore_value", float("nan"))
    try:
        return build_loss(
            name, class_counts=train.class_counts().astype(float).tolist(), num_samples=len(train), **kwargs
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"config key 'loss.params' {params!r} rejected by loss {name!r}: {exc}") from None


def _differences(stored: list[str], current: list[str]) -> str:
    if set(stored) == set(current):
        return "the same classes in another order"
    only_stored = [c for c in stored if c not in current]
    only_current = [c for c in current if c not in stored]
    return f"classes only in the checkpoint {only_stored}, only in the tables {only_current}"


def check_resume(checkpoint: Mapping[str, Any], path: str | os.PathLike, config: Config, train: LabelTable) -> None:
    """Check that the run stored in ``checkpoint`` (read from ``path``) is the one ``config`` and its
    training table describe: task, classes, backbone and its options, input channels and
    normalisation, loss.

    Raises:
        ValueError: one line naming the first difference.
    """
    from ral.engine.checkpoint import checkpoint_metadata
    from ral.engine.configfile import config_from_checkpoint

    meta = checkpoint_metadata(dict(checkpoint), path)
    stored = config_from_checkpoint(meta, path)
    checks = [
        ("task", meta.get("task"), train.task),
        ("classes", list(meta.get("class_names", [])), list(train.class_names)),
        ("model.backbone", meta.get("backbone"), config.model.backbone),
        ("model.options", dict(meta.get("model_options", {})), dict(config.model.options)),
        ("dataset.channels", int(meta.get("in_channels", 1)), config.dataset.channels),
        ("dataset.normalize", stored.dataset.normalize, config.dataset.normalize),
        ("loss.name", stored.loss.name, config.loss.name),
    ]
    for what, before, now in checks:
        if before != now:
            detail = _differences(before, now) if what == "classes" else f"{before!r} in the checkpoint, {now!r} now"
            raise ValueError(
                f"--resume: {path} does not match the config: {what} differs ({detail}); resume with the run's "
                "settings, or start a new run (--overwrite, or another output_dir)"
            )


def check_weights_fit(checkpoint: Mapping[str, Any], path: str | os.PathLike, model: nn.Module) -> None:
    """Check that the model weights of ``checkpoint`` have the names and shapes of ``model``'s.

    Raises:
        ValueError: one line naming the first weight that differs.
    """
    prefix = "model."
    stored = {k[len(prefix) :]: v for k, v in checkpoint.get("state_dict", {}).items() if k.startswith(prefix)}
    current = model.state_dict()
    for name in sorted(set(stored) | set(current)):
        before, now = stored.get(name), current.get(name)
        if before is None or now is None or tuple(before.shape) != tuple(now.shape):
            shape = lambda t: "missing" if t is None else tuple(t.shape)  # noqa: E731
            raise ValueError(
                f"--resume: {path} does not fit the model: weight {name!r} is {shape(before)} in the checkpoint "
                f"and {shape(now)} in the model; resume with the run's settings, or start a new run"
            )


def input_normalization(dataset: DatasetConfig, model_config: ModelConfig, model: nn.Module) -> dict[str, Any]:
    """``{"name", "mean", "std"}`` of the model's input (``dataset.normalize``; null follows the weights:
    a timm model's own pretrained statistics, ImageNet's for other pretrained backbones, else "unit")."""
    from ral.data.transforms import channel_stats, normalization
    from ral.models import pretrained_normalization

    name = dataset.normalize
    if name is None and model_config.pretrained_path is not None:
        found = pretrained_normalization(model)
        if found is not None:
            mean, std = channel_stats(*found, dataset.channels)
            return {"name": "timm", "mean": mean, "std": std}
        name = "imagenet"
    mean, std = normalization(name or "unit", dataset.channels)
    return {"name": name or "unit", "mean": mean, "std": std}


def build_run_model(config: Config, num_classes: int) -> tuple[nn.Module, dict[str, Any] | None]:
    """The network of ``config.model`` for ``num_classes`` classes and ``dataset.channels`` inputs, with
    its pretrained weights loaded; returns it and what the load matched (None without weights).

    Raises:
        FileNotFoundError / ValueError: naming the config key (bad options, a missing weights file,
            weights below ``model.pretrained_min_match``).
    """
    from ral.models import build_model, load_pretrained

    m = config.model
    try:
        model = build_model(m.backbone, num_classes, in_channels=config.dataset.channels, **m.options)
        report = (
            None
            if m.pretrained_path is None
            else load_pretrained(model, m.pretrained_path, min_match=m.pretrained_min_match)
        )
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"model.pretrained_path: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"config section 'model': {exc}") from None
    return model, report


def image_options(config: Config, table: LabelTable) -> dict[str, Any]:
    """The :class:`~ral.data.ImageDataset` arguments of ``config`` (without augmentation) for ``table``."""
    d = config.dataset
    return {
        "image_size": d.image_size,
        "channels": read_channels(table, d.channels),
        "cache_dir": d.cache_dir,
        "cache_workers": d.cache_workers,
        "cache_must_exist": d.cache_must_exist,
        "skip_bad": d.skip_bad,
        "seed": config.seed,
        "max_image_pixels": d.max_image_pixels,
    }


def read_tables(config: Config) -> tuple[LabelTable, LabelTable | None]:
    """The training and validation tables of ``config``, read and checked (before any image is decoded).

    Raises:
        ValueError / FileNotFoundError: naming the config key and the bad value or file.
    """
    from ral.data.checks import check_training_classes, check_validation_classes, warn_training_classes

    d = config.dataset
    train = load_split(d.train, "dataset.train", d, d.classes)
    val = load_split(d.val, "dataset.val", d, train.class_names) if d.val else None
    if val is not None and val.task != train.task:
        raise ValueError(f"dataset.val is a {val.task} table but dataset.train is {train.task}")
    if len(train) == 0:
        raise ValueError(f"dataset.train {d.train} has no rows")
    check_training_classes(train, f"dataset.train {d.train}")
    warn_training_classes(train, f"dataset.train {d.train}")
    if val is not None:
        check_validation_classes(val, f"dataset.val {d.val}")
    return train, val


def build_caches(config: Config) -> list[Path]:
    """Build (or find up to date) the image caches of ``config``'s training and validation tables,
    as a run would (``ral data cache``).

    Raises:
        ValueError: ``dataset.cache_dir`` is not set; or as :func:`read_tables` and
            :class:`~ral.data.ImageDataset`.
    """
    validate_config(config)
    if config.dataset.cache_dir is None:
        raise ValueError("config key 'dataset.cache_dir' must be set to build the image caches, got None")
    train, val = read_tables(config)
    options = image_options(config, train) | {"cache_must_exist": False}  # this is the build they wait for
    images = [ImageDataset(table, **options) for table in (train, val) if table is not None]
    return [image.cache_file for image in images if image.cache_file is not None]


def prepare_run(
    config: Config, checkpoint: Mapping[str, Any] | None = None, checkpoint_path: str | os.PathLike = "checkpoint"
) -> PreparedRun:
    """Validate ``config`` completely and build the run's tables, images, loss and model.

    Order: the tables are read and checked (classes without positives, a validation set without
    any: see :mod:`ral.data.checks`); with a ``checkpoint`` to resume from, it is compared with
    them (:func:`check_resume`); the model is built and its pretrained weights loaded (checked
    against ``model.pretrained_min_match``); then the images are prepared (the cache built,
    undecodable images dropped with ``skip_bad``) and the loss built.

    Raises:
        ValueError / FileNotFoundError: naming the config key and the bad value or file.
    """
    from ral.data.groups import frequency_groups

    validate_config(config)
    d = config.dataset
    train, val = read_tables(config)
    if checkpoint is not None:
        check_resume(checkpoint, checkpoint_path, config, train)
    model, pretrained = build_run_model(config, train.num_classes)  # before the images: a bad weights file fails fast
    if checkpoint is not None:
        check_weights_fit(checkpoint, checkpoint_path, model)

    images = image_options(config, train)  # the validation images are read like the training ones
    train_images = ImageDataset(train, augment=d.augment, hflip=d.hflip, **images)
    val_images = ImageDataset(val, **images) if val is not None else None
    skipped = [{"table": "train", **row} for row in train_images.skipped]
    if val_images is not None:
        skipped += [{"table": "val", **row} for row in val_images.skipped]
    train, val = train_images.table, val_images.table if val_images is not None else None
    if len(train) == 0:
        raise ValueError(f"dataset.train {d.train}: no image could be read")

    counts = train.class_counts()
    try:
        groups = frequency_groups(
            counts, len(train), thresholds=tuple(d.group_thresholds) if d.group_thresholds else None
        )
    except ValueError as exc:
        raise ValueError(f"config key 'dataset.group_thresholds': {exc}") from None
    loss = build_run_loss(config.loss.name, config.loss.params, train.task, train)
    m = config.model
    meta = {
        "task": train.task,
        "class_names": list(train.class_names),
        "train_counts": [int(c) for c in counts],
        "num_train_images": len(train),
        "groups": list(groups),
        "backbone": m.backbone,
        "model_options": dict(m.options),
        "num_classes": train.num_classes,
        "in_channels": d.channels,
        "image_channels": images["channels"],
        "normalize": input_normalization(d, m, model),
        "image_size": d.image_size,
        "dataset_format": train.format,
        "uncertain": d.uncertain,
    }
    return PreparedRun(
        config=config,
        train=train,
        val=val,
        model=model,
        loss=loss,
        meta=meta,
        train_images=train_images,
        val_images=val_images,
        skipped=skipped,
        pretrained=pretrained,
    )


def absolute_paths(config: Config) -> Config:
    """Copy of ``config`` whose dataset / weights paths are absolute (checkpoints outlive the cwd)."""
    import copy

    out = copy.deepcopy(config)
    d = out.dataset
    for key in ("train", "val", "test", "root", "cache_dir"):
        value = getattr(d, key)
        if value is not None:
            setattr(d, key, str(Path(value).expanduser().resolve()))
    if out.model.pretrained_path is not None:
        out.model.pretrained_path = str(Path(out.model.pretrained_path).expanduser().resolve())
    return out
