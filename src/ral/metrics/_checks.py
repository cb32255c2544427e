"""Input validation shared by the metric functions (clear ``ValueError`` messages)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ral.data.groups import GROUPS


def check_multilabel(y_true: object, y_score: object) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(y_true, y_score)`` as float64 arrays of the same shape (N, C).

    ``y_true`` holds 1 (positive), 0 (negative) or NaN (uncertain / missing: ignored);
    ``y_score`` must be finite.
    """
    truth = np.asarray(y_true, dtype=np.float64)
    score = np.asarray(y_score, dtype=np.float64)
    if truth.ndim != 2:
        raise ValueError(f"y_true must be a 2-D array (N, C), got shape {truth.shape}")
    if score.shape != truth.shape:
        raise ValueError(f"y_score must have the shape of y_true {truth.shape}, got shape {score.shape}")
    if truth.shape[0] == 0 or truth.shape[1] == 0:
        raise ValueError(f"y_true must have at least one row and one column, got shape {truth.shape}")
    known = truth[~np.isnan(truth)]
    bad = known[(known != 0) & (known != 1)]
    if bad.size:
        raise ValueError(f"y_true must contain only 0, 1 or NaN, got value {float(bad[0])!r}")
    if not np.all(np.isfinite(score)):
        row = int(np.argwhere(~np.isfinite(score))[0][0])
        raise ValueError(f"y_score must be finite, got a non-finite value in row {row}")
    return truth, score


def check_single_label(y_true: object, probs: object) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(labels (N,) int64, probs (N, C) float64)``.

    ``y_true`` may be class indices (N,) or one-hot rows (N, C).
    """
    score = np.asarray(probs, dtype=np.float64)
    if score.ndim != 2 or score.shape[0] == 0 or score.shape[1] == 0:
        raise ValueError(f"probs must be a non-empty 2-D array (N, C), got shape {score.shape}")
    if not np.all(np.isfinite(score)):
        row = int(np.argwhere(~np.isfinite(score))[0][0])
        raise ValueError(f"probs must be finite, got a non-finite value in row {row}")
    truth = np.asarray(y_true)
    if truth.ndim == 2:
        if truth.shape != score.shape:
            raise ValueError(f"one-hot y_true must have the shape of probs {score.shape}, got {truth.shape}")
        truth = np.argmax(truth, axis=1)
    if truth.ndim != 1 or truth.shape[0] != score.shape[0]:
        raise ValueError(f"y_true must be class indices of shape ({score.shape[0]},), got shape {truth.shape}")
    if truth.dtype.kind == "f":
        if not np.all(np.isfinite(truth)) or np.any(truth != np.round(truth)):
            raise ValueError("y_true must hold integer class indices, got non-integer values")
    elif truth.dtype.kind not in "iu":
        raise ValueError(f"y_true must hold integer class indices, got dtype {truth.dtype}")
    labels = truth.astype(np.int64)
    out = labels[(labels < 0) | (labels >= score.shape[1])]
    if out.size:
        raise ValueError(f"y_true class indices must be in [0, {score.shape[1] - 1}], got {int(out[0])}")
    return labels, score


def check_groups(groups: Sequence[str] | None, num_classes: int) -> np.ndarray | None:
    """Return ``groups`` as an array (C,) of "head" / "medium" / "tail"; None stays None."""
    if groups is None:
        return None
    names = np.asarray(list(groups), dtype=object)
    if names.shape != (num_classes,):
        raise ValueError(f"groups must have one entry per class ({num_classes}), got {len(names)}")
    for index, name in enumerate(names):
        if name not in GROUPS:
            raise ValueError(f"groups[{index}] must be one of {GROUPS}, got {name!r}")
    return names


def check_thresholds(thresholds: object, num_classes: int, default: float = 0.5) -> np.ndarray:
    """Return per-class thresholds (C,) float64; None gives ``default`` for every class."""
    if thresholds is None:
        return np.full(num_classes, default, dtype=np.float64)
    values = np.asarray(thresholds, dtype=np.float64)
    if values.ndim == 0:
        values = np.full(num_classes, float(values))
    if values.shape != (num_classes,):
        raise ValueError(f"thresholds must have shape ({num_classes},), got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"thresholds must be finite, got {values.tolist()}")
    return values


def nanmean(values: np.ndarray, axis: int = -1) -> np.ndarray | float:
    """Mean over ``axis`` ignoring NaN; NaN (without a warning) where every value is NaN."""
    values = np.asarray(values, dtype=np.float64)
    valid = ~np.isnan(values)
    total = np.where(valid, values, 0.0).sum(axis=axis)
    count = valid.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    return float(mean) if np.ndim(mean) == 0 else mean
