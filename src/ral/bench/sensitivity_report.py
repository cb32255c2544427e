"""Statistics, matched comparisons and figures of ``ral bench sensitivity``, from its grid rows.

Used by ``ral bench sensitivity`` (the folder's ``summary.md``) and the project's report
(``benchmarks/report.py``, docs/results.md). Per dataset (missing rate) and arm, over its grid points, with each point's
test metric averaged over the seeds: the ``mean``, sample ``std``, ``range`` (best - worst) and
``worst`` value, each with a 95 % percentile bootstrap interval over seeds
(:func:`ral.bench.summary.seed_bootstrap`: resample seeds, average, recompute the statistic).
A matched comparison (a pair of arms, e.g. :data:`ral.bench.sensitivity.MATCHED`) is the same
four statistics of the arm with the Hill weight minus those of the arm without it, bootstrapped
jointly over the seeds both share, read by :func:`sensitivity_verdict`: **less sensitive** only if
the intervals of both the std difference and the range difference lie below 0; **more
sensitive** only if both lie above 0; otherwise **not shown** (and **untested** with one seed).
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ral.bench.summary import seed_bootstrap
from ral.data.table import Task
from ral.metrics import headline_metric

#: The statistics over grid points, in this order in every table.
STATISTICS = ("mean", "std", "range", "worst")


def varying_params(frame: pd.DataFrame, arm: str) -> list[str]:
    """The parameters that take more than one value in ``arm``'s runs (its grid), in parameter order."""
    part = frame[frame["arm"] == arm]
    names = set(json.loads(part["params"].iloc[0]))
    return [name for name in frame.columns if name in names and part[name].nunique() > 1]


def grid_statistics(frame: pd.DataFrame, metric: str, params: Sequence[str]) -> dict[str, Any]:
    """Spread of ``metric`` over the grid points in ``frame`` (one row per point, one arm).

    Returns:
        ``points``, ``mean``, ``std`` (sample, ddof=1), ``worst``, ``best``, ``range``
        (best - worst), ``worst_params`` / ``best_params`` (as "k=v, ..." text) and, per
        parameter, ``effect_<param>``: max - min over its values of the metric averaged over
        all other parameters (its main effect).
    """
    values = frame[metric].astype(float)
    worst, best = int(values.idxmin()), int(values.idxmax())

    def describe(index: int) -> str:
        return ", ".join(f"{p}={frame.loc[index, p]}" for p in params)

    stats: dict[str, Any] = {
        "points": int(values.size),
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)) if values.size > 1 else float("nan"),
        "worst": float(values.min()),
        "best": float(values.max()),
        "range": float(values.max() - values.min()),
        "worst_params": describe(worst),
        "best_params": describe(best),
    }
    for name in params:
        marginal = frame.groupby(name, sort=False)[metric].mean()
        stats[f"effect_{name}"] = float(marginal.max() - marginal.min())
    return stats


def pair_matrix(frame: pd.DataFrame, metric: str, rows: str, cols: str) -> pd.DataFrame:
    """Mean of ``metric`` for each (rows value, cols value), averaged over the other parameters."""
    order_r = list(pd.unique(frame[rows]))
    order_c = list(pd.unique(frame[cols]))
    table = frame.groupby([rows, cols], sort=False)[metric].mean().unstack(cols)
    return table.reindex(index=order_r, columns=order_c)


def _spread(means: np.ndarray) -> np.ndarray:
    """(..., P) seed-averaged values over P grid points -> (..., 4) of :data:`STATISTICS`."""
    return np.stack(
        [
            np.nanmean(means, axis=-1),
            np.nanstd(means, axis=-1, ddof=1),
            np.nanmax(means, axis=-1) - np.nanmin(means, axis=-1),
            np.nanmin(means, axis=-1),
        ],
        axis=-1,
    )


def dataset_label(rate: float) -> str:
    """ "0.15" for a missing rate, "table" for a user's table (no rate)."""
    return "table" if not np.isfinite(rate) else f"{rate:g}"


def dataset_labels(frame: pd.DataFrame) -> list[str]:
    """The datasets of a grid frame in order of appearance (:func:`dataset_label` of each missing rate)."""
    return list(dict.fromkeys(dataset_label(r) for r in frame["missing_rate"]))


def _part(frame: pd.DataFrame, dataset: str) -> pd.DataFrame:
    return frame[[dataset_label(r) == dataset for r in frame["missing_rate"]]]


def _seed_matrix(part: pd.DataFrame, arm: str, metric: str) -> pd.DataFrame:
    """Seeds x grid points of ``metric`` for one arm (columns: the points' parameters as JSON)."""
    rows = part[part["arm"] == arm]
    return rows.pivot_table(index="seed", columns="params", values=metric, aggfunc="mean", sort=False, dropna=False)


def arm_statistics(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per (dataset, arm): ``dataset``, ``arm``, ``loss``, ``points``, ``seeds``, for each of
    :data:`STATISTICS` the value and its ``_low`` / ``_high`` bootstrap bounds, ``seed_std`` (the mean
    over points of the sample std over seeds: the noise of one run), ``worst_params`` / ``best_params``."""
    rows = []
    for dataset in dataset_labels(frame):
        part = _part(frame, dataset)
        for arm in pd.unique(part["arm"]):
            matrix = _seed_matrix(part, arm, metric)
            point, low, high = seed_bootstrap(matrix.to_numpy(dtype=float), _spread)
            params = varying_params(part, arm)
            means = part[part["arm"] == arm].groupby("params", sort=False).first()[params]
            means[metric] = matrix.mean(axis=0).reindex(means.index)
            named = grid_statistics(means.reset_index(drop=True), metric, params)
            row: dict[str, Any] = {
                "dataset": dataset,
                "arm": arm,
                "loss": part.loc[part["arm"] == arm, "loss"].iloc[0],
                "points": matrix.shape[1],
                "seeds": matrix.shape[0],
            }
            for index, name in enumerate(STATISTICS):
                row.update({name: point[index], f"{name}_low": low[index], f"{name}_high": high[index]})
            row["seed_std"] = float(matrix.std(axis=0, ddof=1).mean()) if matrix.shape[0] > 1 else float("nan")
            row.update(worst_params=named["worst_params"], best_params=named["best_params"])
            rows.append(row)
    return pd.DataFrame(rows)


def sensitivity_verdict(std_low: float, std_high: float, range_low: float, range_high: float) -> str:
    """The module's rule on the intervals of (with Hill - without) std and range."""
    bounds = (std_low, std_high, range_low, range_high)
    if not all(np.isfinite(b) for b in bounds):
        return "untested"
    if std_high < 0 and range_high < 0:
        return "less sensitive"
    if std_low > 0 and range_low > 0:
        return "more sensitive"
    return "not shown"


def matched_statistics(frame: pd.DataFrame, metric: str, pairs: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """One row per (dataset, pair ``(without Hill, with Hill)`` of ``pairs`` present): ``dataset``,
    ``without``, ``with``, ``seeds``, for each of :data:`STATISTICS` the difference (with - without)
    ``d_<stat>`` and its bootstrap bounds, and ``verdict`` (:func:`sensitivity_verdict`)."""
    rows = []
    for dataset in dataset_labels(frame):
        part = _part(frame, dataset)
        for without, with_hill in pairs:
            if not {without, with_hill} <= set(part["arm"]):
                continue
            a, b = _seed_matrix(part, without, metric), _seed_matrix(part, with_hill, metric)
            seeds = [s for s in a.index if s in b.index]
            values = np.stack([a.loc[seeds].to_numpy(dtype=float), b.loc[seeds].to_numpy(dtype=float)], axis=1)
            point, low, high = seed_bootstrap(values, lambda m: _spread(m[:, 1]) - _spread(m[:, 0]))
            row: dict[str, Any] = {"dataset": dataset, "without": without, "with": with_hill, "seeds": len(seeds)}
            for index, name in enumerate(STATISTICS):
                row.update({f"d_{name}": point[index], f"d_{name}_low": low[index], f"d_{name}_high": high[index]})
            row["verdict"] = sensitivity_verdict(
                row["d_std_low"], row["d_std_high"], row["d_range_low"], row["d_range_high"]
            )
            rows.append(row)
    return pd.DataFrame(rows)


def _cell(value: float, low: float, high: float, *, signed: bool = False) -> str:
    text = f"{value:+.4f}" if signed else f"{value:.4f}"
    if np.isfinite(low) and np.isfinite(high):
        form = "{:+.4f}" if signed else "{:.4f}"
        text += f" [{form.format(low)}, {form.format(high)}]"
    return text


def _arm_table(stats: pd.DataFrame) -> str:
    from ral.report import markdown_table

    shown = pd.DataFrame(
        {
            "arm": stats["arm"],
            "loss": stats["loss"],
            "points": stats["points"],
            "seeds": stats["seeds"],
            **{
                name: [_cell(v, lo, hi) for v, lo, hi in zip(stats[name], stats[f"{name}_low"], stats[f"{name}_high"])]
                for name in STATISTICS
            },
            "seed_std": stats["seed_std"].map(lambda v: "n/a" if not np.isfinite(v) else f"{v:.4f}"),
            "worst point": stats["worst_params"],
            "best point": stats["best_params"],
        }
    )
    return markdown_table(shown, index=False)


def _matched_table(matched: pd.DataFrame) -> str:
    from ral.report import markdown_table

    shown = pd.DataFrame(
        {
            "without Hill": matched["without"],
            "with Hill": matched["with"],
            "seeds": matched["seeds"],
            **{
                f"Δ {name}": [
                    _cell(v, lo, hi, signed=True)
                    for v, lo, hi in zip(matched[f"d_{name}"], matched[f"d_{name}_low"], matched[f"d_{name}_high"])
                ]
                for name in STATISTICS
            },
            "verdict": matched["verdict"],
        }
    )
    return markdown_table(shown, index=False)


def _rate_title(dataset: str) -> str:
    return "User table" if dataset == "table" else f"Missing rate {dataset} (share of training positives hidden)"


def sensitivity_markdown(
    frame: pd.DataFrame,
    task: Task,
    *,
    pairs: Sequence[tuple[str, str]],
    level: int = 3,
    notes: Mapping[str, str] | None = None,
) -> str:
    """The tables of every dataset (headings at ``level``): the arms' statistics and the matched
    comparisons of ``pairs``. ``notes`` maps a dataset label to markdown shown under its tables."""
    metric = headline_metric(task)
    stats = arm_statistics(frame, metric)
    matched = matched_statistics(frame, metric, pairs)
    hashes = "#" * level
    blocks = [
        f"Cells: the statistic over the grid points of each arm, each point's test {metric} averaged over its "
        "seeds, with the 95% percentile bootstrap interval over seeds in brackets (resample the seeds, "
        "recompute). `seed_std`: mean over the points of the sample std over seeds (one run's noise). "
        "Δ = the arm with the Hill weight minus the arm without it, bootstrapped jointly over their shared "
        "seeds. Rule: **less sensitive** only if the intervals of both Δ std and Δ range lie below 0, **more "
        "sensitive** only if both lie above 0, otherwise **not shown**.\n"
    ]
    for dataset in dataset_labels(frame):
        blocks.append(f"{hashes} {_rate_title(dataset)}\n")
        blocks.append(_arm_table(stats[stats["dataset"] == dataset]))
        part = matched[matched["dataset"] == dataset] if len(matched) else matched
        if len(part):
            blocks.append(
                "\nMatched comparisons (the Hill weight added, same grid and seeds):\n\n" + _matched_table(part)
            )
        if notes and dataset in notes:
            blocks.append(notes[dataset])
    return "\n".join(blocks)


def plot_sensitivity(frame: pd.DataFrame, task: Task, folder: str | os.PathLike) -> dict[str, Any]:
    """Heat maps into ``folder``: the grid range and std per arm (rows) and dataset (columns), and for
    the last dataset (the highest missing rate) one heat map per arm and pair of its grid parameters.

    Returns:
        ``{"overview": [file names], "arms": [file names], "dataset": label of the last dataset}``.
    """
    from ral.report import plot_heatmap

    metric = headline_metric(task)
    out = Path(folder)
    stats = arm_statistics(frame, metric)
    datasets = dataset_labels(frame)
    arms = list(pd.unique(stats["arm"]))
    overview = []
    for name in ("range", "std"):
        matrix = stats.pivot(index="arm", columns="dataset", values=name).reindex(index=arms, columns=datasets)
        file = f"sensitivity_{name}.png"
        plot_heatmap(
            matrix.to_numpy(dtype=float),
            arms,
            [f"missing {d}" for d in datasets],
            out / file,
            title=f"Grid {name} of test {metric} (points averaged over seeds)",
            fmt=".3f",
            colorbar_label=f"{name} of {metric}",
        )
        overview.append(file)
    last = _part(frame, datasets[-1])
    per_arm = []
    for arm in pd.unique(last["arm"]):
        rows = last[last["arm"] == arm]
        for first, second in itertools.combinations(varying_params(last, arm), 2):
            matrix = pair_matrix(rows, metric, first, second)
            file = f"sensitivity_{arm}_{first}_{second}.png"
            plot_heatmap(
                matrix.to_numpy(dtype=float),
                [f"{first}={v}" for v in matrix.index],
                [f"{second}={v}" for v in matrix.columns],
                out / file,
                title=f"{arm}: test {metric}, mean over seeds and other parameters (missing {datasets[-1]})",
                fmt=".3f",
                colorbar_label=metric,
            )
            per_arm.append(file)
    return {"overview": overview, "arms": per_arm, "dataset": datasets[-1]}
