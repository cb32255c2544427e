"""Rebuild a trained model from its checkpoint and compute probabilities for a label table."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ral.data.table import LabelTable
from ral.engine.checkpoint import checkpoint_metadata, load_checkpoint


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
) -> LabelTable:
    """Read a table with the checkpoint's classes (in the checkpoint's order) and label policy.

    Raises:
        FileNotFoundError / ValueError: naming ``key`` (the CLI option) and the problem.
    """
    from ral.data import load_table

    try:
        table = load_table(
            path, format=format, root=root, uncertain=meta.get("uncertain", "ignore"), classes=meta["class_names"]
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


def unlabeled_table(images: list[str | os.PathLike], meta: dict[str, Any], ids: list[str] | None = None) -> LabelTable:
    """A table of image files without labels, for prediction (ids default to the file stems)."""
    paths = [Path(p) for p in images]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"image file(s) not found: {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    num_classes = meta["num_classes"]
    labels = np.zeros((len(paths), num_classes), dtype=np.float32)
    if meta["task"] == "multilabel":
        labels[:] = np.nan
    else:
        labels[:, 0] = 1.0  # placeholder one-hot rows; never used as targets
    ids = list(ids) if ids is not None else [p.stem for p in paths]
    return LabelTable(
        ids=ids,
        paths=[str(p.resolve()) for p in paths],
        subject_ids=ids,
        class_names=list(meta["class_names"]),
        labels=labels,
        task=meta["task"],
        root=Path("."),
        format="images",
    )


def unlabeled_csv(
    path: str | os.PathLike, meta: dict[str, Any], root: str | os.PathLike | None = None
) -> LabelTable | None:
    """A CSV with a ``path`` column and none of the checkpoint's class columns, as an unlabeled
    table (ids: the ``path`` values, relative to ``root`` or the CSV's folder); None otherwise."""
    import pandas as pd

    path = Path(path)
    if path.suffix.lower() != ".csv" or not path.is_file():
        return None
    header = pd.read_csv(path, nrows=0).columns.tolist()
    if "path" not in header or set(header) & set(meta["class_names"]):
        return None
    names = pd.read_csv(path, usecols=["path"], dtype=str, keep_default_na=False)["path"].str.strip().tolist()
    base = Path(root) if root is not None else path.parent
    return unlabeled_table([Path(n) if Path(n).is_absolute() else base / n for n in names], meta, ids=names)
