"""Calibration: expected calibration error (ECE) and the bins of a reliability diagram.

Equal-width bins of the predicted probability over [0, 1] (the last bin includes 1.0). In a bin,
``confidence`` is the mean predicted probability and ``frequency`` the observed rate; ECE is the
bin-size weighted mean of ``|frequency - confidence|``.

- Multi-label: every (image, class) pair with a known label is one binary prediction (the
  probability against the 0 / 1 label, as torchmetrics' ``BinaryCalibrationError``); the
  overall ECE pools all classes, a group's ECE the classes of that group, and
  :func:`per_class_ece` gives one value per class.
- Single-label: the top-label ECE (confidence = the largest probability, frequency = the
  rate at which that argmax is right), as torchmetrics' ``MulticlassCalibrationError``; a
  group's ECE is that of the images whose true class is in the group.

Written with numpy rather than with torchmetrics because the report needs the bins
themselves (its reliability diagram), the NaN (unknown) labels are masked per pair, and the
tests compare the values with torchmetrics'.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ral.data.groups import GROUPS

#: Bins of the reliability diagram and of the ECE.
N_BINS = 15


def reliability_bins(y_true: np.ndarray, y_prob: np.ndarray, n_bins: int = N_BINS) -> dict[str, np.ndarray]:
    """Per-bin ``confidence`` (mean probability), ``frequency`` (mean label) and ``count``.

    Args:
        y_true: (M,) binary outcomes 1 / 0 (NaN entries are left out).
        y_prob: (M,) predicted probabilities in [0, 1].
        n_bins: equal-width bins over [0, 1].

    Returns:
        Arrays of shape (n_bins,): "confidence" and "frequency" (NaN in empty bins), "count",
        and "edges" (n_bins + 1,).
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be an integer >= 1, got {n_bins!r}")
    truth = np.asarray(y_true, dtype=np.float64).ravel()
    prob = np.asarray(y_prob, dtype=np.float64).ravel()
    if truth.shape != prob.shape:
        raise ValueError(f"y_true and y_prob must have the same size, got {truth.size} and {prob.size}")
    known = ~np.isnan(truth)
    truth, prob = truth[known], prob[known]
    index = np.clip(np.floor(prob * n_bins).astype(np.int64), 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(index, weights=prob, minlength=n_bins) / count
        frequency = np.bincount(index, weights=truth, minlength=n_bins) / count
    return {
        "confidence": confidence,
        "frequency": frequency,
        "count": count,
        "edges": np.linspace(0.0, 1.0, n_bins + 1),
    }


def expected_calibration_error(y_true: np.ndarray, y_prob: np.ndarray, n_bins: int = N_BINS) -> float:
    """ECE of binary outcomes ``y_true`` against probabilities ``y_prob`` (NaN labels left out);
    NaN when no label is known."""
    bins = reliability_bins(y_true, y_prob, n_bins)
    total = bins["count"].sum()
    if total == 0:
        return float("nan")
    filled = bins["count"] > 0
    gaps = np.abs(bins["frequency"][filled] - bins["confidence"][filled])
    return float(np.sum(gaps * bins["count"][filled]) / total)


def top_label(y_true: np.ndarray, y_prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Single-label (N,) class indices and (N, C) probabilities -> (correct 1 / 0, confidence)."""
    labels = np.asarray(y_true).astype(np.int64)
    prob = np.asarray(y_prob, dtype=np.float64)
    return (prob.argmax(axis=1) == labels).astype(np.float64), prob.max(axis=1)


def per_class_ece(y_true: np.ndarray, y_prob: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """(C,) ECE of each class of multi-label (N, C) labels (1 / 0 / NaN) and probabilities."""
    truth = np.asarray(y_true, dtype=np.float64)
    prob = np.asarray(y_prob, dtype=np.float64)
    return np.array([expected_calibration_error(truth[:, c], prob[:, c], n_bins) for c in range(prob.shape[1])])


def calibration_pairs(
    y_true: np.ndarray, y_prob: np.ndarray, *, task: str, groups: Sequence[str] | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The (outcome, probability) pairs of the overall and of each group's calibration.

    Returns:
        ``{"overall": (truth, prob), "head": ..., "medium": ..., "tail": ...}`` (flat arrays;
        the groups only when ``groups`` is given, a group without classes left out).
    """
    prob = np.asarray(y_prob, dtype=np.float64)
    if task == "multilabel":
        truth = np.asarray(y_true, dtype=np.float64)
        if truth.shape != prob.shape:
            raise ValueError(f"y_true and y_prob must have the same shape, got {truth.shape} and {prob.shape}")
        pairs = {"overall": (truth.ravel(), prob.ravel())}
        for group in GROUPS if groups is not None else ():
            columns = np.array([g == group for g in groups], dtype=bool)
            if columns.any():
                pairs[group] = (truth[:, columns].ravel(), prob[:, columns].ravel())
        return pairs
    correct, confidence = top_label(y_true, prob)
    pairs = {"overall": (correct, confidence)}
    labels = np.asarray(y_true).astype(np.int64)
    for group in GROUPS if groups is not None else ():
        rows = np.array([groups[label] == group for label in labels], dtype=bool)
        if rows.any():
            pairs[group] = (correct[rows], confidence[rows])
    return pairs


def calibration_metrics(
    y_true: np.ndarray,
    y_prob: np.ndarray,
    *,
    task: str,
    groups: Sequence[str] | None = None,
    n_bins: int = N_BINS,
) -> dict[str, Any]:
    """The ECE entries of metrics.json: ``{"ECE": overall, "ECE_head": ..., "ECE_medium": ...,
    "ECE_tail": ..., "ECE_bins": n_bins}`` (a group without classes or images: NaN).

    Args:
        y_true: multi-label (N, C) 1 / 0 / NaN, or single-label (N,) class indices.
        y_prob: (N, C) probabilities. task: "multilabel" or "single".
        groups: (C,) "head" / "medium" / "tail" of the classes (None: only the overall ECE).
    """
    pairs = calibration_pairs(y_true, y_prob, task=task, groups=groups)
    out: dict[str, Any] = {"ECE": expected_calibration_error(*pairs["overall"], n_bins)}
    if groups is not None:
        for group in GROUPS:
            out[f"ECE_{group}"] = expected_calibration_error(*pairs[group], n_bins) if group in pairs else float("nan")
    out["ECE_bins"] = int(n_bins)
    return out
