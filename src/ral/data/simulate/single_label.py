"""Targets of the simulated single-label sets: exact per-class quotas at published proportions."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ral.progress import progress

#: Minimum images per class in the clean evaluation splits (rare classes are oversampled).
MIN_POSITIVES = {"train": 0, "val": 20, "test": 40}


def class_quotas(n: int, prevalence: np.ndarray, min_positives: int, majority: int) -> tuple[np.ndarray, np.ndarray]:
    """(C,) images per class summing to ``n`` and (C,) whether the class was oversampled: rare
    classes are raised to ``min_positives``, taken from the ``majority`` class."""
    natural = np.rint(n * prevalence).astype(np.int64)
    counts = np.maximum(natural, min_positives)
    counts[majority] += n - counts.sum()
    oversampled = counts > natural
    oversampled[majority] = False
    return counts, oversampled


def draw_targets(
    split: str,
    n_images: int,
    published_counts: Mapping[str, int],
    classes: Sequence[str],
    majority: str,
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[str]]:
    """(N,) class indices (in ``classes`` order) at the published proportions, shuffled, and the
    names of the oversampled classes.

    Raises:
        ValueError: ``n_images`` too small to give every class its minimum in this split.
    """
    counts, oversampled = split_quotas(split, n_images, published_counts, classes, majority)
    targets = rng.permutation(np.repeat(np.arange(len(classes)), counts))
    return targets, [c for c, flag in zip(classes, oversampled) if flag]


def split_quotas(
    split: str, n_images: int, published_counts: Mapping[str, int], classes: Sequence[str], majority: str
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`class_quotas` of one split at the published proportions (checked before anything is drawn).

    Raises:
        ValueError: ``n_images`` too small to give every class its minimum in this split.
    """
    prevalence = np.array([published_counts[c] for c in classes], dtype=np.float64)
    prevalence /= prevalence.sum()
    low, top = MIN_POSITIVES[split], classes.index(majority)
    counts, oversampled = class_quotas(n_images, prevalence, low, top)
    if counts[top] < max(low, 1):
        needed = next(
            n
            for n in range(n_images, 100 * len(classes) * max(low, 1) + 1)
            if class_quotas(n, prevalence, low, top)[0][top] >= max(low, 1)
        )
        raise ValueError(
            f"n_{split} must be at least {needed} for this single-label set (every class needs "
            f"{low} images in {split}), got {n_images}"
        )
    return counts, oversampled


@dataclass(frozen=True)
class SingleLabelSet:
    """One simulated single-label set: its published proportions, drawing and file layout."""

    classes: Sequence[str]
    published_counts: Mapping[str, int]
    majority: str  # the class that gives up images when rare classes are raised to their minimum
    split_codes: Mapping[str, int]  # random-stream ids of the splits
    render: Callable[[np.ndarray, np.ndarray, int, np.random.Generator], np.ndarray]  # (targets, vis, size, rng)
    image_name: Callable[[int], str]  # running index -> file stem (the id column)
    suffix: str
    save_options: Mapping[str, object]
    table: Callable[[list[str], np.ndarray], pd.DataFrame]  # (names, targets) -> the label CSV
    layout: str  # the published layout, for dataset.json
    batch: int = 256


def simulate_split(
    spec: SingleLabelSet,
    split: str,
    n_images: int,
    out_dir: Path,
    *,
    seed: int,
    size: int,
    first_index: int,
    record: Callable[[list[str]], None] | None = None,
) -> dict:
    """Draw, render and write one split under ``out_dir/images``; returns ``frame`` (the label
    table) and ``oversampled`` (the classes raised to their minimum). ``record`` is called with the
    images' paths (relative to ``out_dir``) before they are written."""
    code = spec.split_codes[split]
    rng = np.random.default_rng([seed, code, 0])
    targets, oversampled = draw_targets(split, n_images, spec.published_counts, spec.classes, spec.majority, rng)
    visibility = rng.beta(1.2, 1.6, size=n_images).astype(np.float32)
    folder = out_dir / "images"
    folder.mkdir(parents=True, exist_ok=True)
    names = [spec.image_name(first_index + i) for i in range(n_images)]
    if record is not None:
        record([f"images/{name}{spec.suffix}" for name in names])
    bar = progress(total=n_images, desc=f"simulate {split}", unit="image")
    for index, start in enumerate(range(0, n_images, spec.batch)):
        rows = np.arange(start, min(start + spec.batch, n_images))
        brng = np.random.default_rng([seed, code, 1, index])
        for row, array in zip(rows, spec.render(targets[rows], visibility[rows], size, brng)):
            Image.fromarray(array).save(folder / f"{names[row]}{spec.suffix}", **spec.save_options)
            bar.update()
    bar.close()
    return {"frame": spec.table(names, targets), "oversampled": oversampled}
