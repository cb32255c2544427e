"""Percentile bootstrap confidence intervals for the headline metrics.

Each resample draws N images with replacement (the same draw for every class, so the
correlation between labels of one image is kept). A resample is represented by how often
it drew each image (a weight vector), and every metric is computed with those weights in
one vectorised pass over all resamples of a chunk. With integer weights these weighted
formulas equal scikit-learn's metric on the explicitly repeated rows (the tests check
that), including ties in the scores. As in the point estimate, a class without a positive
(AUC: or a negative) in a resample is skipped in that resample's macro mean, and a
resample where a metric is undefined (NaN) is left out of that metric's interval.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ral.metrics._checks import (
    check_groups,
    check_multilabel,
    check_single_label,
    check_thresholds,
    nanmean,
)
from ral.metrics.names import METRIC_NAMES

_CHUNK_ELEMENTS = 2_000_000  # resamples x images per chunk (bounds the working memory)


def bootstrap_ci(
    y_true: np.ndarray,
    y_score: np.ndarray,
    *,
    metric_names: Sequence[str],
    n_boot: int = 1000,
    seed: int = 0,
    groups: Sequence[str] | None = None,
    thresholds: np.ndarray | None = None,
    level: float = 0.95,
    baseline: np.ndarray | None = None,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval of each named metric, resampling images.

    With ``baseline`` (a second model's (N, C) probabilities of the same images), the interval is
    of the paired difference ``metric(y_score) - metric(baseline)``: both models are scored on
    the same resamples, so the image-to-image variation they share cancels out.

    Args:
        y_true: multi-label (N, C) with 1 / 0 / NaN, or single-label (N,) class indices
            (or one-hot (N, C)); which one is decided by ``metric_names``.
        y_score: (N, C) probabilities.
        metric_names: names of one task in ``METRIC_NAMES``: "multilabel" ("mAP", "mAUC", "mF1",
            "head_mAP", "medium_mAP", "tail_mAP") or "single" ("accuracy", "balanced_accuracy",
            "macro_f1", "head_acc", "medium_acc", "tail_acc"), not mixed.
        n_boot: number of resamples. seed: seed of the resampling (same seed, same interval).
        groups: (C,) "head" / "medium" / "tail", needed for the group metrics.
        thresholds: (C,) F1 thresholds for "mF1" (None means 0.5; with ``baseline``, of both models).
        level: coverage of the interval (0.95 gives the 2.5th and 97.5th percentiles).
        baseline: (N, C) probabilities of the model to compare with (None: plain intervals).

    Returns:
        ``{name: (low, high)}``; ``(nan, nan)`` when the metric is undefined in every resample.

    Raises:
        ValueError: unknown or mixed metric names, n_boot < 1, level outside (0, 1), and
            the input errors of :func:`multilabel_metrics` / :func:`single_label_metrics`.
    """
    names = list(metric_names)
    multilabel_names, single_names = METRIC_NAMES["multilabel"], METRIC_NAMES["single"]
    unknown = [n for n in names if n not in multilabel_names + single_names]
    if not names or unknown:
        raise ValueError(
            f"metric_names must be non-empty names from {multilabel_names} or {single_names}, got {names!r}"
        )
    multilabel = names[0] in multilabel_names
    if any((n in multilabel_names) != multilabel for n in names):
        raise ValueError(f"metric_names mixes multi-label and single-label metrics: {names!r}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be an integer >= 1, got {n_boot!r}")
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")

    models = [y_score] if baseline is None else [y_score, baseline]
    if multilabel:
        cuts = None
        computes = []
        for scores in models:
            truth, score = check_multilabel(y_true, scores)
            cuts = check_thresholds(thresholds, truth.shape[1]) if cuts is None else cuts
            computes.append(_MultilabelResampler(truth, score, cuts))
    else:
        computes = [_SingleLabelResampler(*check_single_label(y_true, scores)) for scores in models]
    group_names = check_groups(groups, np.shape(y_score)[1])

    rng = np.random.default_rng(seed)
    num_images = np.shape(y_score)[0]
    chunk = max(1, _CHUNK_ELEMENTS // num_images)
    samples: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for start in range(0, n_boot, chunk):
        weights = resample_weights(rng, num_images, min(chunk, n_boot - start))
        values = [compute(weights, names, group_names) for compute in computes]
        for name in names:
            samples[name].append(values[0][name] - values[1][name] if baseline is not None else values[0][name])

    outside = 100.0 * (1.0 - float(level)) / 2.0
    intervals = {}
    for name in names:
        values = np.concatenate(samples[name])
        values = values[~np.isnan(values)]
        if values.size == 0:
            intervals[name] = (float("nan"), float("nan"))
        else:
            low, high = np.percentile(values, [outside, 100.0 - outside])
            intervals[name] = (float(low), float(high))
    return intervals


def resample_weights(rng: np.random.Generator, num_images: int, num_resamples: int) -> np.ndarray:
    """(num_resamples, num_images) float32 counts: how often each resample drew each image.

    Counts are small integers, so float32 holds them (and their running sums up to 2**24)
    exactly while halving the memory traffic of the vectorised metrics.
    """
    draws = rng.integers(0, num_images, size=(num_resamples, num_images))
    flat = draws + num_images * np.arange(num_resamples)[:, None]
    counts = np.bincount(flat.ravel(), minlength=num_resamples * num_images)
    return counts.reshape(num_resamples, num_images).astype(np.float32)


def _group_values(per_class: np.ndarray, group_names: np.ndarray | None, group: str) -> np.ndarray:
    """Per-resample mean over the classes of ``group`` (NaN everywhere without groups)."""
    if group_names is None:
        return np.full(per_class.shape[0], np.nan)
    return nanmean(per_class[:, group_names == group], axis=1)


class _MultilabelResampler:
    """Weighted AP / AUC / F1 per class, for many weight vectors (resamples) at once.

    Per class, the known rows are sorted once by decreasing score; a run of tied scores is
    one threshold of scikit-learn's curves. Only runs that hold a positive change AP or AUC:
    with ``tp`` / ``seen`` the weighted positives / images scoring at least the run's score,
    ``gain`` the weighted positives in the run and ``ties`` its weighted negatives,

        AP  = sum(gain * tp / seen) / n_pos
        AUC = sum(gain * (negatives below the run + ties / 2)) / (n_pos * n_neg)

    (the step-wise AP and the trapezoidal ROC area with ties, as in scikit-learn).
    """

    def __init__(self, truth: np.ndarray, score: np.ndarray, cuts: np.ndarray) -> None:
        known = ~np.isnan(truth)
        positive = known & (np.nan_to_num(truth) == 1)
        predicted = score >= cuts
        # (N, C) indicator matrices: weights @ matrix gives weighted counts per class
        self.positive = positive.astype(np.float32)
        self.negative = (known & ~positive).astype(np.float32)
        self.hit = (positive & predicted).astype(np.float32)
        self.flagged = (known & predicted).astype(np.float32)
        self.runs = [self._positive_runs(score[:, c], known[:, c], positive[:, c]) for c in range(truth.shape[1])]

    @staticmethod
    def _positive_runs(score: np.ndarray, known: np.ndarray, positive: np.ndarray) -> tuple:
        """Sorted known rows and, for each tie run holding a positive: its first and last
        sorted position and the index (among the sorted positives) of its last positive."""
        rows = np.flatnonzero(known)
        order = rows[np.argsort(-score[rows], kind="stable")]
        run = np.concatenate([[0], np.cumsum(np.diff(score[order]) != 0)])
        pos_at = np.flatnonzero(positive[order])
        pos_runs, last_pos = np.unique(run[pos_at][::-1], return_index=True)
        last_pos = pos_at.size - 1 - last_pos
        first = np.searchsorted(run, pos_runs, side="left")
        last = np.searchsorted(run, pos_runs, side="right") - 1
        return order, order[pos_at], first, last, last_pos

    def per_class(self, weights: np.ndarray, need: set[str]) -> dict[str, np.ndarray]:
        """``{"AP", "AUC", "F1": (B, C)}`` for weights (B, N), only the ones in ``need``."""
        num_boot, num_classes = weights.shape[0], len(self.runs)
        out = {key: np.full((num_boot, num_classes), np.nan) for key in need}
        n_pos = (weights @ self.positive).astype(np.float64)
        n_neg = (weights @ self.negative).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            if "F1" in need:
                hits = (weights @ self.hit).astype(np.float64)
                flagged = (weights @ self.flagged).astype(np.float64)
                out["F1"] = np.where(n_pos > 0, 2.0 * hits / (flagged + n_pos), np.nan)
            if not need & {"AP", "AUC"}:
                return out
            for c, (order, pos_rows, first, last, last_pos) in enumerate(self.runs):
                if pos_rows.size == 0:
                    continue
                seen_all = np.cumsum(weights[:, order[: last[-1] + 1]], axis=1)
                seen = seen_all[:, last].astype(np.float64)
                seen_before = np.where(first > 0, seen_all[:, first - 1], 0).astype(np.float64)
                tp = np.cumsum(weights[:, pos_rows], axis=1)[:, last_pos].astype(np.float64)
                gain = np.diff(tp, axis=1, prepend=0.0)
                if "AP" in need:
                    precision = np.divide(tp, seen, out=np.zeros_like(tp), where=seen > 0)
                    out["AP"][:, c] = (gain * precision).sum(axis=1) / n_pos[:, c]
                if "AUC" in need:
                    below = n_neg[:, c, None] - (seen - tp)
                    ties = seen - seen_before - gain
                    area = (gain * (below + 0.5 * ties)).sum(axis=1)
                    out["AUC"][:, c] = area / (n_pos[:, c] * n_neg[:, c])
        if "AP" in out:
            out["AP"][n_pos == 0] = np.nan
        if "AUC" in out:
            out["AUC"][(n_pos == 0) | (n_neg == 0)] = np.nan
        return out

    def __call__(self, weights: np.ndarray, names: list[str], group_names: np.ndarray | None) -> dict[str, np.ndarray]:
        need = {"AUC"} if "mAUC" in names else set()
        need |= {"F1"} if "mF1" in names else set()
        need |= {"AP"} if any(n.endswith("mAP") for n in names) else set()
        per_class = self.per_class(weights, need)
        values = {}
        for name in names:
            if name in ("mAP", "mAUC", "mF1"):
                values[name] = nanmean(per_class[name[1:]], axis=1)
            else:
                values[name] = _group_values(per_class["AP"], group_names, name.split("_")[0])
        return values


class _SingleLabelResampler:
    """Weighted accuracy, per-class recall and F1 of argmax predictions, many weights at once."""

    def __init__(self, labels: np.ndarray, score: np.ndarray) -> None:
        num_classes = score.shape[1]
        predicted = np.argmax(score, axis=1)
        self.true_onehot = np.eye(num_classes)[labels]
        self.pred_onehot = np.eye(num_classes)[predicted]
        self.correct = (predicted == labels).astype(np.float64)

    def __call__(self, weights: np.ndarray, names: list[str], group_names: np.ndarray | None) -> dict[str, np.ndarray]:
        support = weights @ self.true_onehot
        hits = weights @ (self.true_onehot * self.correct[:, None])
        flagged = weights @ self.pred_onehot
        present = support > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            recall = np.where(present, hits / support, np.nan)
            f1 = np.where(present, 2.0 * hits / (support + flagged), np.nan)
        values = {}
        for name in names:
            if name == "accuracy":
                values[name] = (weights @ self.correct) / weights.sum(axis=1)
            elif name == "balanced_accuracy":
                values[name] = nanmean(recall, axis=1)
            elif name == "macro_f1":
                values[name] = nanmean(f1, axis=1)
            else:
                values[name] = _group_values(recall, group_names, name.split("_")[0])
        return values


def per_class_ci(
    y_true: np.ndarray,
    y_score: np.ndarray,
    *,
    metric: str = "AP",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> np.ndarray:
    """(C, 2) percentile bootstrap interval of each class's multi-label "AP" or "AUC" (the resamples
    of :func:`bootstrap_ci`); NaN where the metric is undefined in every resample."""
    if metric not in ("AP", "AUC"):
        raise ValueError(f"metric must be 'AP' or 'AUC', got {metric!r}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be an integer >= 1, got {n_boot!r}")
    truth, score = check_multilabel(y_true, y_score)
    resampler = _MultilabelResampler(truth, score, check_thresholds(None, truth.shape[1]))
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ELEMENTS // max(len(score), 1))
    parts = [
        resampler.per_class(resample_weights(rng, len(score), min(chunk, n_boot - start)), {metric})[metric]
        for start in range(0, n_boot, chunk)
    ]
    outside = 100.0 * (1.0 - float(level)) / 2.0
    values = np.concatenate(parts)
    out = np.full((truth.shape[1], 2), np.nan)
    for c in range(truth.shape[1]):
        finite = values[:, c][~np.isnan(values[:, c])]
        if finite.size:
            out[c] = np.percentile(finite, [outside, 100.0 - outside])
    return out
