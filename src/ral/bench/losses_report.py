"""Tables and figures of a loss comparison (``ral bench losses``), from its result rows.

Used by ``ral bench losses`` for the folder's ``summary.md`` and by the project's report
(``benchmarks/report.py``) for docs/results.md, so both always show the same numbers. The
paired table reads each difference over seeds by its Student t interval at 95 %
(``ral.bench.summary``): the reference RAL row is higher / lower when the interval lies above /
below 0, level when it holds 0.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ral.bench.summary import mean_std_table, paired_differences, summarize
from ral.data.table import Task
from ral.metrics import headline_metric, metric_names

#: The RAL row every other loss is paired against, per task.
REFERENCE: dict[Task, str] = {"multilabel": "ral", "single": "ral_single"}
#: Per-class score column of each task's per-class table.
SCORE_NAME: dict[Task, str] = {"multilabel": "AP", "single": "accuracy"}


def _signed(value: float, digits: int = 4) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:+.{digits}f}"


def _interval(low: float, high: float, digits: int = 4) -> str:
    if not (np.isfinite(low) and np.isfinite(high)):
        return "n/a"
    return f"[{low:+.{digits}f}, {high:+.{digits}f}]"


def summary_frame(results: pd.DataFrame, task: Task) -> pd.DataFrame:
    """Mean and sample std over seeds of every metric and of the seconds per epoch, per loss."""
    return summarize(results, [*metric_names(task), "seconds_per_epoch"])


def summary_markdown(results: pd.DataFrame, task: Task) -> str:
    """The mean ± std table (best mean of each metric in bold)."""
    from ral.report import markdown_table

    metrics = metric_names(task)
    table = mean_std_table(
        summary_frame(results, task),
        [*metrics, "seconds_per_epoch"],
        digits=[3] * len(metrics) + [1],
        best=metrics,
    )
    return markdown_table(table)


def paired_frame(results: pd.DataFrame, task: Task, metric: str | None = None) -> pd.DataFrame:
    """The reference RAL row minus every other loss on ``metric`` (default: the headline), paired by
    seed; empty when the reference is absent or has no one to compare with."""
    reference = REFERENCE[task]
    if reference not in set(results["loss"]) or results["loss"].nunique() < 2:
        return pd.DataFrame()
    return paired_differences(results, metric or headline_metric(task), reference)


def paired_table(diffs: pd.DataFrame, first: str, winner: str) -> str:
    """Markdown of :func:`ral.bench.summary.paired_differences` rows: ``first`` names the first
    column (the compared rows or metrics), ``winner`` the row whose difference it is."""
    from ral.report import markdown_table

    shown = pd.DataFrame(
        {
            first: diffs.iloc[:, 0],
            "pairs": diffs["pairs"],
            "mean diff": diffs["mean_diff"].map(_signed),
            "95% t interval": [_interval(a, b) for a, b in zip(diffs["ci_low"], diffs["ci_high"])],
            "min": diffs["min_diff"].map(_signed),
            "max": diffs["max_diff"].map(_signed),
            f"seeds where {winner} is higher": diffs["wins"],
            f"{winner} is": diffs["verdict"],
        }
    )
    return markdown_table(shown)


def paired_markdown(results: pd.DataFrame, task: Task) -> str:
    """Markdown: the paired-difference table against the reference, with its explanation; "" without one."""
    diffs = paired_frame(results, task)
    if diffs.empty:
        return ""
    reference, metric = REFERENCE[task], headline_metric(task)
    return (
        f"Paired by seed (same seed = same initialisation and batch order): `{reference}` {metric} minus each "
        f"other loss's {metric}; 95% Student t interval of the mean difference over seeds; `{reference}` is "
        "higher / lower when the interval lies above / below 0, level when it holds 0.\n\n"
        + paired_table(diffs, "loss", reference)
    )


def plot_losses(
    results: pd.DataFrame,
    per_class: pd.DataFrame,
    task: Task,
    metrics_path: str | os.PathLike,
    per_class_path: str | os.PathLike,
    *,
    budget_name: str,
) -> tuple[Path, Path]:
    """The bar chart of the means (std error bars) and the loss x class heat map of the per-class score."""
    from ral.report import plot_heatmap, plot_metric_bars

    metrics = metric_names(task)
    summary = summary_frame(results, task)
    plot_metric_bars(
        summary[["loss", *[f"{m}_{s}" for m in metrics for s in ("mean", "std")]]],
        metrics_path,
        metrics=list(metrics),
        title=f"Test metrics, mean over seeds (error bars: sample std), budget {budget_name}",
    )
    score = SCORE_NAME[task]
    mean_scores = per_class.groupby(["loss", "class"], sort=False)[score].mean().unstack("class")
    counts = per_class.drop_duplicates("class").set_index("class")["count"]
    labels = list(pd.unique(results["loss"]))
    mean_scores = mean_scores.reindex(index=labels, columns=list(counts.index))
    plot_heatmap(
        mean_scores.to_numpy(),
        labels,
        [f"{c} ({n})" for c, n in counts.items()],
        per_class_path,
        title=f"Per-class test {score}, mean over seeds (columns: training count, most frequent first)",
        fmt=".2f",
        sort_cols_by=counts.to_numpy(dtype=float),
        colorbar_label=score,
    )
    return Path(metrics_path), Path(per_class_path)
