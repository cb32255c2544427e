"""Ensembles of checkpoints and flip test-time augmentation for ``ral predict`` / ``ral evaluate``.

An ensemble is the mean of the probabilities of several checkpoints of the same task and
classes. Each model gets its own inputs (image size, and whatever else its checkpoint says),
through :func:`ral.engine.inference.predict_probabilities`. Flip TTA wraps a model in
:class:`FlipAverage`, whose outputs are the logits of the mean probability of the image and
its horizontal flip, so any code that applies a sigmoid / softmax to a model's outputs gets the
averaged probabilities.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ral.data.images import MAX_IMAGE_PIXELS
from ral.data.table import LabelTable
from ral.engine.inference import load_trained_model, predict_probabilities, resolve_device

#: The values of ``tta=`` / ``--tta``.
#: Test-time augmentation: none, or the mean over each image and its horizontal flip.
Tta = Literal["none", "hflip"]
TTA_MODES: tuple[str, ...] = get_args(Tta)

Checkpoints = str | os.PathLike | Sequence[str | os.PathLike]


class FlipAverage(nn.Module):
    """A model whose outputs are the logits of the mean probability of an image and its horizontal flip.

    Multi-label: ``sigmoid(out) = (sigmoid(f(x)) + sigmoid(f(flip(x)))) / 2``; single-label:
    ``softmax(out) = (softmax(f(x)) + softmax(f(flip(x)))) / 2``. Computed in float32 log space
    (``logsigmoid`` / ``log_softmax``), so probabilities near 0 or 1 keep their precision.

    Args:
        model: maps (N, C_in, H, W) images to (N, C) logits.
        task: "multilabel" (sigmoid) or "single" (softmax).
    """

    def __init__(self, model: nn.Module, task: str) -> None:
        super().__init__()
        if task not in ("multilabel", "single"):
            raise ValueError(f"task must be 'multilabel' or 'single', got {task!r}")
        self.model, self.task = model, task

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) images -> (N, C) float32 logits of the flip-averaged probabilities."""
        first = self.model(images).float()
        flipped = self.model(torch.flip(images, dims=(-1,))).float()
        if self.task == "single":
            return torch.logaddexp(F.log_softmax(first, dim=1), F.log_softmax(flipped, dim=1)) - math.log(2)
        log_pos = torch.logaddexp(F.logsigmoid(first), F.logsigmoid(flipped))
        log_neg = torch.logaddexp(F.logsigmoid(-first), F.logsigmoid(-flipped))
        return log_pos - log_neg  # log(p / (1 - p)) of the mean p; the halves cancel


def check_tta(tta: str) -> str:
    """Return ``tta`` if it is one of :data:`TTA_MODES`; raise ``ValueError`` otherwise."""
    if tta not in TTA_MODES:
        raise ValueError(f"tta must be one of {TTA_MODES}, got {tta!r}")
    return tta


def checkpoint_paths(checkpoint: Checkpoints) -> list[Path]:
    """One path or a sequence of paths -> a non-empty list of paths."""
    paths = [checkpoint] if isinstance(checkpoint, (str, os.PathLike)) else list(checkpoint)
    if not paths:
        raise ValueError("checkpoint: give at least one checkpoint")
    return [Path(p) for p in paths]


@dataclass
class Member:
    """One checkpoint of an ensemble: its path, model (eval mode, on its device) and ``ral`` metadata."""

    path: Path
    model: nn.Module
    meta: dict[str, Any]


def _difference(first: Member, other: Member) -> str | None:
    """What keeps ``other`` out of an ensemble led by ``first`` (task, classes), or None."""
    if other.meta["task"] != first.meta["task"]:
        return f"task {other.meta['task']!r}, not {first.meta['task']!r}"
    mine, theirs = list(first.meta["class_names"]), list(other.meta["class_names"])
    if set(mine) != set(theirs):
        missing, extra = [c for c in mine if c not in theirs], [c for c in theirs if c not in mine]
        return f"other classes (missing {missing}, extra {extra})"
    return None


def load_members(checkpoint: Checkpoints, device: str | None = "auto") -> list[Member]:
    """Load every checkpoint and check that they can be ensembled: same task and the same class names.

    The classes may come in another order (the outputs are reordered to the first checkpoint's);
    image size, backbone and the other input settings may differ.

    Raises:
        FileNotFoundError / ValueError: a checkpoint is missing or unreadable, or differs from the
            first in its task or classes (naming both files and the difference).
    """
    resolve_device(device)  # an unavailable device is refused before any checkpoint is read
    members = []
    for path in checkpoint_paths(checkpoint):
        model, meta = load_trained_model(path, device)
        members.append(Member(path, model, meta))
        difference = _difference(members[0], members[-1])
        if difference is not None:
            raise ValueError(f"checkpoint {path} cannot be ensembled with {members[0].path}: it has {difference}")
    return members


def ensemble_probabilities(
    members: Sequence[Member],
    table: LabelTable,
    *,
    tta: str = "none",
    batch_size: int = 64,
    num_workers: int = 0,
    cache_dir: str | os.PathLike | None = None,
) -> np.ndarray:
    """Mean probabilities (N, C) float64 of the ``members`` on ``table``'s images, classes in the first's order.

    Each member predicts with its own image size (:func:`predict_probabilities`); with
    ``tta="hflip"`` each member is wrapped in :class:`FlipAverage`.
    """
    check_tta(tta)
    names = list(members[0].meta["class_names"])
    total = np.zeros((len(table), len(names)))
    if len(table) == 0:
        return total
    for member in members:
        task = member.meta["task"]
        model = FlipAverage(member.model, task) if tta == "hflip" else member.model
        probs = predict_probabilities(
            model,
            table,
            task=task,
            image_size=member.meta["image_size"],
            batch_size=batch_size,
            num_workers=num_workers,
            cache_dir=cache_dir,
            max_image_pixels=member.meta.get("config", {}).get("dataset", {}).get("max_image_pixels", MAX_IMAGE_PIXELS),
        )
        order = [list(member.meta["class_names"]).index(name) for name in names]
        total += probs[:, order]
    return total / len(members)
