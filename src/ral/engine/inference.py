"""Rebuild a trained model from its checkpoint and compute probabilities for a label table."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ral.data.table import LabelTable
from ral.engine.checkpoint import checkpoint_metadata, load_checkpoint

#: Hints of data-layer errors in ``ral evaluate`` / ``ral predict`` (which have no --skip-bad).
INFERENCE_HINTS = {"skip_bad": None, "allow_outside_root": "--allow-outside-root"}


def resolve_device(device: str | None) -> torch.device:
    """``None`` / "auto" -> CUDA when available, else CPU; otherwise ``torch.device(device)``."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from None


def load_trained_model(path: str | os.PathLike, device: str | None = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Model (eval mode, on ``device``) and ``ral`` metadata of a ``ral train`` checkpoint.

    The architecture comes from the metadata (backbone, options, num_classes); weights from
    the checkpoint's ``state_dict``, read with ``torch.load(weights_only=True)``.

    Raises:
        FileNotFoundError: no such file. ValueError: not a ``ral train`` checkpoint.
    """
    from ral.models import build_model

    checkpoint = load_checkpoint(path)
    meta = checkpoint_metadata(checkpoint, path)
    model = build_model(
        meta["backbone"], meta["num_classes"], in_channels=meta.get("in_channels", 1), **meta.get("model_options", {})
    )
    prefix = "model."
    state = {k[len(prefix) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"checkpoint {path} does not match its own model description: {exc}") from None
    return model.to(resolve_device(device)).eval(), meta


def load_eval_table(
    path: str | os.PathLike,
    meta: dict[str, Any],
    *,
    format: str | None = None,
    root: str | os.PathLike | None = None,
    key: str = "data",
    allow_outside_root: bool = False,
    split: str | None = None,
) -> LabelTable:
    """Read a table with the checkpoint's classes (in the checkpoint's order), task and label
    policy, and the run's view filter and VinDr agreement rule.

    ``split``: the part of an official split file to read (MIMIC-CXR-JPG: "validate", "test").

    Raises:
        FileNotFoundError / ValueError: naming ``key`` (the CLI option) and the problem.
    """
    from ral.data import load_table

    dataset = meta.get("config", {}).get("dataset", {})
    try:
        table = load_table(
            path,
            format=format,
            root=root,
            uncertain=meta.get("uncertain", "ignore"),
            classes=meta["class_names"],
            task=meta["task"],
            views=dataset.get("views"),
            split=split,
            vindr_agreement=dataset.get("vindr_agreement", "any"),
            allow_outside_root=allow_outside_root,
            hints=INFERENCE_HINTS,
        )
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{key}: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from None
    if table.task != meta["task"]:
        raise ValueError(f"{key}: {path} is a {table.task} table but the checkpoint's model is {meta['task']}")
    return table


def predict_probabilities(
    model: nn.Module,
    table: LabelTable,
    *,
    task: str,
    image_size: int,
    batch_size: int = 64,
    num_workers: int = 0,
    cache_dir: str | os.PathLike | None = None,
) -> np.ndarray:
    """Probabilities (N, C) float64 of every image of ``table``, in table order.

    Sigmoid for "multilabel", softmax for "single"; computed in float32. ``cache_dir``: the
    decoded-image cache of :class:`ral.data.ImageDataset` (None decodes every file).
    """
    from ral.data import ImageDataset

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    device = next(model.parameters()).device
    loader = DataLoader(
        ImageDataset(table, image_size=image_size, augment=False, cache_dir=cache_dir),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
    )
    parts = []
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for images, _ in loader:
            logits = model(images.to(device)).float()
            probs = torch.sigmoid(logits) if task == "multilabel" else torch.softmax(logits, dim=1)
            parts.append(probs.cpu().double().numpy())
    model.train(was_training)
    if not parts:
        return np.zeros((0, table.num_classes))
    return np.concatenate(parts)


def image_table(images: Sequence[str | os.PathLike]) -> LabelTable:
    """A table without labels of image files and folders of images (searched recursively, sorted).

    Ids: a file's name without its extension; for a file found in a folder, its path inside
    that folder without the extension (``sub/scan1``), so equal names in sub-folders stay apart.
    Other files in the folders are left out with one warning.

    Returns:
        LabelTable with no classes (labels of shape (N, 0)), paths absolute.

    Raises:
        FileNotFoundError: a file or folder does not exist. ValueError: a folder holds no image.
    """
    from ral.data.formats import list_images

    missing = [str(p) for p in images if not Path(p).exists()]
    if missing:
        raise FileNotFoundError(f"image file(s) not found: {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    ids, paths, others = [], [], []
    for item in map(Path, images):
        if item.is_dir():
            found, skipped = list_images(item)
            if not found:
                raise ValueError(f"{item}: no image files in this folder or below it")
            ids += [file.relative_to(item).with_suffix("").as_posix() for file in found]
            paths += found
            others += skipped
        else:
            ids.append(item.stem)
            paths.append(item)
    if others:
        warnings.warn(f"left out {len(others)} file(s) that are not images (first: {others[0]})", stacklevel=2)
    return LabelTable(
        ids=ids,
        paths=[str(p.resolve()) for p in paths],
        subject_ids=ids,
        class_names=[],
        labels=np.zeros((len(paths), 0), dtype=np.float32),
        root=Path("."),
        format="images",
    )
