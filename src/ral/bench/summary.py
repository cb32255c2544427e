"""Aggregate benchmark runs: mean ± standard deviation over seeds, markdown tables.

The standard deviation is the sample standard deviation (``ddof=1``) over the seeds of one
loss; with a single seed it is undefined and shown as "n=1" instead of a fake 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def summarize(results: pd.DataFrame, metrics: Sequence[str], *, by: str = "loss") -> pd.DataFrame:
    """Mean and sample standard deviation of each metric per group, in first-appearance order.

    Args:
        results: one row per run; must hold the column ``by`` and every name in ``metrics``.
        metrics: metric columns to aggregate.
        by: the grouping column (the loss label).

    Returns:
        One row per group: ``by``, ``n`` (runs), then ``<metric>_mean`` and ``<metric>_std``
        for each metric (std is NaN when ``n == 1``; NaN metric values are skipped).

    Raises:
        ValueError: if a column is missing.
    """
    missing = [c for c in [by, *metrics] if c not in results.columns]
    if missing:
        raise ValueError(f"results lack column(s) {missing}; have {list(results.columns)}")
    rows = []
    for key in pd.unique(results[by]):
        part = results[results[by] == key]
        row: dict[str, object] = {by: key, "n": int(len(part))}
        for name in metrics:
            values = pd.to_numeric(part[name], errors="coerce").dropna().to_numpy(dtype=float)
            row[f"{name}_mean"] = float(values.mean()) if values.size else float("nan")
            row[f"{name}_std"] = float(values.std(ddof=1)) if values.size > 1 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def format_mean_std(mean: float, std: float, digits: int = 3) -> str:
    """``"0.312 ± 0.004"``; just the mean when ``std`` is NaN; ``"–"`` when the mean is NaN."""
    if not np.isfinite(mean):
        return "–"
    if not np.isfinite(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def mean_std_table(
    summary: pd.DataFrame,
    metrics: Sequence[str],
    *,
    by: str = "loss",
    digits: Sequence[int] | int = 3,
    best: Sequence[str] = (),
) -> pd.DataFrame:
    """Display table: one "mean ± std" string column per metric; the best mean of each metric in
    ``best`` (highest) is marked with ``**bold**``."""
    widths = [digits] * len(metrics) if isinstance(digits, int) else list(digits)
    table = pd.DataFrame({by: summary[by], "seeds": summary["n"]})
    for name, width in zip(metrics, widths):
        cells = [format_mean_std(m, s, width) for m, s in zip(summary[f"{name}_mean"], summary[f"{name}_std"])]
        if name in best and summary[f"{name}_mean"].notna().any():
            top = int(summary[f"{name}_mean"].idxmax())
            cells[summary.index.get_loc(top)] = f"**{cells[summary.index.get_loc(top)]}**"
        table[name] = cells
    return table


def paired_differences(
    results: pd.DataFrame, metric: str, reference: str, *, by: str = "loss", pair: str = "seed"
) -> pd.DataFrame:
    """``reference`` minus every other group on ``metric``, paired by ``pair`` (same seed).

    Returns:
        One row per other group (first-appearance order): ``by``, ``pairs`` (seeds both ran),
        ``mean_diff``, ``min_diff``, ``max_diff`` and ``wins`` (pairs where ``reference`` is higher).

    Raises:
        ValueError: ``reference`` is not in ``results``.
    """
    if reference not in set(results[by]):
        raise ValueError(f"reference {reference!r} not in column {by!r}: {list(pd.unique(results[by]))}")
    wide = results.pivot_table(index=pair, columns=by, values=metric, aggfunc="mean")
    rows = []
    for other in pd.unique(results[by]):
        if other == reference:
            continue
        diff = (wide[reference] - wide[other]).dropna()
        rows.append(
            {
                by: other,
                "pairs": int(diff.size),
                "mean_diff": float(diff.mean()) if diff.size else float("nan"),
                "min_diff": float(diff.min()) if diff.size else float("nan"),
                "max_diff": float(diff.max()) if diff.size else float("nan"),
                "wins": int((diff > 0).sum()),
            }
        )
    return pd.DataFrame(rows)
