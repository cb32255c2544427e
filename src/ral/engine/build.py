"""Everything a run needs before training starts: tables, groups, loss and model, all validated.

:func:`prepare_run` reads the tables and builds the loss and the model, so a bad file, column,
format, loss parameter or backbone option fails here, before any training step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ral.data.table import LabelTable
from ral.engine.config import Config, DatasetConfig, validate_config


@dataclass
class PreparedRun:
    """Validated inputs of one training run."""

    config: Config
    train: LabelTable
    val: LabelTable | None
    model: nn.Module
    loss: nn.Module
    meta: dict[str, Any]


#: The part of an official split file (MIMIC-CXR-JPG's) each table key reads.
OFFICIAL_SPLIT = {"dataset.train": "train", "dataset.val": "validate", "dataset.test": "test"}


def load_split(path: str | os.PathLike, key: str, dataset: DatasetConfig, classes: list[str] | None) -> LabelTable:
    """Read one table of the config (``key`` names it in errors), keeping ``classes`` in order.

    ``dataset.max_classes`` applies when ``classes`` is None (the training table); a table
    without labels (one to predict) is refused.
    """
    from ral.data import load_table

    try:
        table = load_table(
            path,
            format=dataset.format,
            root=dataset.root,
            uncertain=dataset.uncertain,
            skip_bad=dataset.skip_bad,
            classes=classes,
            task=dataset.task,
            views=dataset.views,
            split=OFFICIAL_SPLIT.get(key),
            vindr_agreement=dataset.vindr_agreement,
            max_classes=dataset.max_classes if classes is None else None,
        )
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{key}: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from None
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


def prepare_run(config: Config) -> PreparedRun:
    """Validate ``config`` completely and build the run's tables, loss and model.

    Raises:
        ValueError / FileNotFoundError: naming the config key and the bad value or file.
    """
    from ral.data.groups import frequency_groups
    from ral.models import build_model

    validate_config(config)
    d = config.dataset
    train = load_split(d.train, "dataset.train", d, d.classes)
    val = load_split(d.val, "dataset.val", d, train.class_names) if d.val else None
    if val is not None and val.task != train.task:
        raise ValueError(f"dataset.val is a {val.task} table but dataset.train is {train.task}")
    if len(train) == 0:
        raise ValueError(f"dataset.train {d.train} has no rows")
    counts = train.class_counts()
    try:
        groups = frequency_groups(
            counts, len(train), thresholds=tuple(d.group_thresholds) if d.group_thresholds else None
        )
    except ValueError as exc:
        raise ValueError(f"config key 'dataset.group_thresholds': {exc}") from None
    loss = build_run_loss(config.loss.name, config.loss.params, train.task, train)
    m = config.model
    try:
        model = build_model(
            m.backbone, train.num_classes, in_channels=1, pretrained_path=m.pretrained_path, **m.options
        )
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"model.pretrained_path: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"config section 'model': {exc}") from None
    meta = {
        "task": train.task,
        "class_names": list(train.class_names),
        "train_counts": [int(c) for c in counts],
        "num_train_images": len(train),
        "groups": list(groups),
        "backbone": m.backbone,
        "model_options": dict(m.options),
        "num_classes": train.num_classes,
        "in_channels": 1,
        "image_size": d.image_size,
        "dataset_format": train.format,
        "uncertain": d.uncertain,
    }
    return PreparedRun(config=config, train=train, val=val, model=model, loss=loss, meta=meta)


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
