"""Multi-label metrics of CXR-LT: per-class AP / AUC / F1 and their macro and group means.

Definitions are scikit-learn's (``average_precision_score``, ``roc_auc_score``, ``f1_score``),
computed one class at a time on the rows whose label is known (NaN in ``y_true`` marks an
uncertain or missing label and removes that (row, class) pair only). A class enters a macro
mean only if it has at least one positive among its known rows (AUC also needs a negative);
otherwise its per-class value is NaN and it is skipped, as the CXR-LT evaluation does.
scikit-learn rather than torchmetrics because the challenge and the paper report
scikit-learn numbers and because the NaN-per-class masking is explicit here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from ral.data.groups import GROUPS
from ral.metrics._checks import (
    check_groups,
    check_multilabel,
    check_thresholds,
    nanmean,
)


def per_class_metrics(
    y_true: np.ndarray, y_score: np.ndarray, *, thresholds: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """AP, AUC and F1 of every class (scikit-learn definitions).

    Args:
        y_true: (N, C) with 1 / 0 / NaN (NaN = unknown label, ignored for that class).
        y_score: (N, C) scores; probabilities when F1 thresholds are probabilities.
        thresholds: (C,) per-class decision thresholds (predict positive when
            ``score >= threshold``); None means 0.5 for every class.

    Returns:
        Arrays of shape (C,): "AP", "AUC", "F1" (NaN for a class without positives; AUC
        also NaN without negatives), "threshold", "n_pos", "n_neg" (known labels only).

    Raises:
        ValueError: shapes differ, labels other than 0 / 1 / NaN, non-finite scores,
            thresholds of the wrong length.
    """
    truth, score = check_multilabel(y_true, y_score)
    num_classes = truth.shape[1]
    cuts = check_thresholds(thresholds, num_classes)
    ap = np.full(num_classes, np.nan)
    auc = np.full(num_classes, np.nan)
    f1 = np.full(num_classes, np.nan)
    n_pos = np.zeros(num_classes, dtype=np.int64)
    n_neg = np.zeros(num_classes, dtype=np.int64)
    for c in range(num_classes):
        known = ~np.isnan(truth[:, c])
        labels, scores = truth[known, c], score[known, c]
        n_pos[c] = int(labels.sum())
        n_neg[c] = int(labels.size - n_pos[c])
        if n_pos[c] == 0:
            continue
        ap[c] = average_precision_score(labels, scores)
        if n_neg[c] > 0:
            auc[c] = roc_auc_score(labels, scores)
        predicted = scores >= cuts[c]
        tp = float(np.sum(predicted & (labels == 1)))
        # F1 = 2TP / (2TP + FP + FN) = sklearn's f1_score; the denominator is > 0 since n_pos > 0.
        f1[c] = 2.0 * tp / (float(predicted.sum()) + n_pos[c])
    return {"AP": ap, "AUC": auc, "F1": f1, "threshold": cuts, "n_pos": n_pos, "n_neg": n_neg}


def group_means(values: np.ndarray, groups: Sequence[str] | None) -> dict[str, float]:
    """Mean of per-class ``values`` (C,) within each of "head", "medium", "tail", NaN ignored.

    Returns ``{"head": ..., "medium": ..., "tail": ...}``; NaN for a group without classes
    (or without finite values), and all NaN when ``groups`` is None.
    """
    values = np.asarray(values, dtype=np.float64)
    names = check_groups(groups, values.shape[-1])
    if names is None:
        return {group: float("nan") for group in GROUPS}
    return {group: nanmean(values[..., names == group]) for group in GROUPS}


def multilabel_metrics(
    y_true: np.ndarray,
    y_score: np.ndarray,
    *,
    groups: Sequence[str] | None = None,
    thresholds: np.ndarray | None = None,
) -> dict:
    """CXR-LT multi-label metrics: macro mAP, mAUC, mF1 and head / medium / tail mAP.

    Args:
        y_true: (N, C) with 1 / 0 / NaN (NaN = uncertain, ignored per class).
        y_score: (N, C) predicted probabilities.
        groups: (C,) "head" / "medium" / "tail" per class (from training frequency);
            None leaves the group means NaN.
        thresholds: (C,) F1 decision thresholds (e.g. from :func:`tune_thresholds` on val);
            None means 0.5.

    Returns:
        ``{"mAP", "mAUC", "mF1", "head_mAP", "medium_mAP", "tail_mAP": float,
        "num_classes_evaluated": int, "per_class": dict of (C,) arrays}`` (see
        :func:`per_class_metrics`). Means are over classes with at least one positive
        (AUC: and one negative); NaN when no class qualifies.

    Example:
        >>> y = np.array([[1, 0], [0, 1], [1, np.nan], [0, 0]])
        >>> s = np.array([[0.9, 0.2], [0.1, 0.8], [0.8, 0.5], [0.3, 0.1]])
        >>> round(multilabel_metrics(y, s)["mAP"], 3)
        1.0
    """
    per_class = per_class_metrics(y_true, y_score, thresholds=thresholds)
    by_group = group_means(per_class["AP"], groups)
    return {
        "mAP": nanmean(per_class["AP"]),
        "mAUC": nanmean(per_class["AUC"]),
        "mF1": nanmean(per_class["F1"]),
        "head_mAP": by_group["head"],
        "medium_mAP": by_group["medium"],
        "tail_mAP": by_group["tail"],
        "num_classes_evaluated": int(np.sum(per_class["n_pos"] > 0)),
        "per_class": per_class,
    }


def tune_thresholds(y_true: np.ndarray, y_score: np.ndarray, *, default: float = 0.5) -> np.ndarray:
    """Per-class F1-optimal decision thresholds, to be tuned on val and applied to test.

    For each class, every distinct score of a known row is a candidate cut (predict positive
    when ``score >= cut``, as in ``sklearn.metrics.precision_recall_curve``); the cut with the
    highest F1 wins, the lowest such cut on ties. Classes without a positive get ``default``.

    Args:
        y_true: (N, C) with 1 / 0 / NaN. y_score: (N, C) scores.

    Returns:
        (C,) float64 thresholds.
    """
    truth, score = check_multilabel(y_true, y_score)
    cuts = np.full(truth.shape[1], float(default))
    for c in range(truth.shape[1]):
        known = ~np.isnan(truth[:, c])
        labels = truth[known, c]
        if labels.sum() == 0:
            continue
        precision, recall, candidates = precision_recall_curve(labels, score[known, c])
        precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
        denom = precision + recall
        f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
        cuts[c] = candidates[int(np.argmax(f1))]
    return cuts


def per_class_table(
    y_true: np.ndarray,
    y_score: np.ndarray,
    *,
    class_names: Sequence[str],
    counts: Sequence[float] | None = None,
    groups: Sequence[str] | None = None,
    thresholds: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per class: class, count, group, AP, AUC, F1, threshold, n_pos.

    Args:
        y_true, y_score: (N, C) as in :func:`multilabel_metrics`.
        class_names: C names. counts: (C,) TRAINING positives per class (NaN when None).
        groups: (C,) "head" / "medium" / "tail" ("" when None). thresholds: (C,) or None (0.5).

    Returns:
        DataFrame in class order; ``n_pos`` counts positives in the evaluated set.
    """
    per_class = per_class_metrics(y_true, y_score, thresholds=thresholds)
    num_classes = per_class["AP"].shape[0]
    names = [str(name) for name in class_names]
    if len(names) != num_classes:
        raise ValueError(f"class_names must have {num_classes} entries, got {len(names)}")
    if counts is None:
        count_values = np.full(num_classes, np.nan)
    else:
        count_values = np.asarray(counts, dtype=np.float64)
        if count_values.shape != (num_classes,):
            raise ValueError(f"counts must have shape ({num_classes},), got {count_values.shape}")
        if np.all(count_values == np.round(count_values)):
            count_values = count_values.astype(np.int64)
    group_names = check_groups(groups, num_classes)
    return pd.DataFrame(
        {
            "class": names,
            "count": count_values,
            "group": [""] * num_classes if group_names is None else list(group_names),
            "AP": per_class["AP"],
            "AUC": per_class["AUC"],
            "F1": per_class["F1"],
            "threshold": per_class["threshold"],
            "n_pos": per_class["n_pos"],
        }
    )
