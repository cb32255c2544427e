"""Targets of the simulated single-label sets: exact per-class quotas at published proportions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

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
    targets = rng.permutation(np.repeat(np.arange(len(classes)), counts))
    return targets, [c for c, flag in zip(classes, oversampled) if flag]
