"""Aggregate benchmark runs: mean ± standard deviation over seeds, paired differences with
intervals, and the bootstrap over seeds.

The standard deviation is the sample standard deviation (``ddof=1``) over the seeds of one
loss; with a single seed it is undefined and shown as "n=1" instead of a fake 0.

Intervals: a paired difference over seeds (same seed = same initialisation and batch order)
gets a Student t interval (``scipy.stats.t``): with 5 seeds a percentile bootstrap over seeds
is too narrow (it can only draw 126 distinct resamples and never exceeds the observed range).
Statistics of a whole grid of runs (std, range over grid points) have no t interval; they get
the percentile bootstrap over seeds of :func:`seed_bootstrap` (``scipy.stats.bootstrap``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

#: Coverage of every interval the benchmarks report.
LEVEL = 0.95


def summarize(results: pd.DataFrame, metrics: Sequence[str], *, by: str = "loss") -> pd.DataFrame:
    """Mean and sample standard deviation of each metric per group, in first-appearance order.

    Returns:
        One row per group: ``by``, ``n`` (runs), then ``<metric>_mean`` and ``<metric>_std``
        for each metric (std is NaN when ``n == 1``; NaN metric values are skipped).

    Raises:
        ValueError: if a column is missing.
    """
    missing = [c for c in [by, *metrics] if c not in results.columns]
    if missing:
        raise ValueError(f"results lack column(s) {missing}; have {list(results.columns)}")
    values = results[list(metrics)].apply(pd.to_numeric, errors="coerce").astype(float)
    groups = values.groupby(results[by], sort=False)
    table = groups.agg(["mean", "std"])
    table.columns = [f"{name}_{stat}" for name, stat in table.columns]
    table.insert(0, "n", groups.size())
    return table.reset_index()


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
            top = summary.index.get_loc(summary[f"{name}_mean"].idxmax())
            cells[top] = f"**{cells[top]}**"
        table[name] = cells
    return table


def t_interval(values: Sequence[float] | np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Student t interval of the mean of ``values`` (NaN skipped); ``(nan, nan)`` below 2 values."""
    data = np.asarray(values, dtype=float)
    data = data[np.isfinite(data)]
    if data.size < 2:
        return float("nan"), float("nan")
    mean, sem = float(data.mean()), float(stats.sem(data))
    if sem == 0:  # scipy gives NaN for a zero scale; equal differences on every seed are an exact interval
        return mean, mean
    low, high = stats.t.interval(level, data.size - 1, loc=mean, scale=sem)
    return float(low), float(high)


def direction(low: float, high: float) -> str:
    """ "higher" when an interval of a difference lies above 0, "lower" below 0, "level" when it
    holds 0, "untested" when it is undefined (one seed)."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return "untested"
    if low > 0:
        return "higher"
    if high < 0:
        return "lower"
    return "level"


def paired_differences(
    results: pd.DataFrame,
    metric: str,
    reference: str,
    *,
    by: str = "loss",
    pair: str = "seed",
    others: Sequence[str] | None = None,
    level: float = LEVEL,
) -> pd.DataFrame:
    """``reference`` minus every other group on ``metric``, paired by ``pair`` (same seed).

    Args:
        others: the groups to compare with (default: every other group, first-appearance order).

    Returns:
        One row per other group: ``by``, ``pairs`` (seeds both ran), ``mean_diff``, ``ci_low`` /
        ``ci_high`` (the ``level`` t interval of the mean difference, :func:`t_interval`),
        ``min_diff``, ``max_diff``, ``wins`` (pairs where ``reference`` is higher) and ``verdict``
        (:func:`direction` of the interval: is ``reference`` higher, lower or level).

    Raises:
        ValueError: ``metric`` is not a column, or ``reference`` or one of ``others`` is not in ``results``.
    """
    if metric not in results.columns:
        raise ValueError(f"results lack column {metric!r}; have {list(results.columns)}")
    present = list(pd.unique(results[by]))
    for name in [reference, *(others or [])]:
        if name not in present:
            raise ValueError(f"reference {name!r} not in column {by!r}: {present}")
    values = results.assign(**{metric: pd.to_numeric(results[metric], errors="coerce")})
    wide = values.pivot_table(index=pair, columns=by, values=metric, aggfunc="mean").reindex(columns=present)
    rows = []
    for other in others if others is not None else [g for g in present if g != reference]:
        diff = (wide[reference] - wide[other]).dropna()
        low, high = t_interval(diff.to_numpy(), level)
        rows.append(
            {
                by: other,
                "pairs": int(diff.size),
                "mean_diff": float(diff.mean()) if diff.size else float("nan"),
                "ci_low": low,
                "ci_high": high,
                "min_diff": float(diff.min()) if diff.size else float("nan"),
                "max_diff": float(diff.max()) if diff.size else float("nan"),
                "wins": int((diff > 0).sum()),
                "verdict": direction(low, high),
            }
        )
    return pd.DataFrame(rows)


def seed_bootstrap(
    values: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = LEVEL,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile bootstrap over seeds (``scipy.stats.bootstrap``) of a statistic of seed-averaged results.

    Args:
        values: (S, ...) one slice per seed (e.g. (S, arms, grid points) test mAP); NaN skipped.
        statistic: maps a batch of seed means (B, ...) to the statistic (B, ...) (e.g. the std over
            grid points: ``lambda m: m.std(axis=-1, ddof=1)``).
        n_boot: resamples: each draws S seeds with replacement (the same draw for every slice, so
            slices that share seeds stay paired), averages over them and recomputes the statistic.
        seed: seed of the resampling (same seed, same interval).

    Returns:
        ``(point, low, high)``: the statistic of the mean over all seeds and the ``level``
        percentile interval; the interval is NaN with fewer than 2 seeds.
    """
    data = np.asarray(values, dtype=float)
    point = np.asarray(statistic(np.nanmean(data, axis=0)[None]))[0]  # scipy returns the interval only
    if data.shape[0] < 2:
        nan = np.full_like(point, np.nan, dtype=float)
        return point, nan, nan.copy()

    def of_resamples(resampled: np.ndarray, axis: int = -1) -> np.ndarray:
        # scipy hands (..., B, S) with the seeds last; ``statistic`` takes the B seed means first
        means = np.moveaxis(np.nanmean(resampled, axis=axis), -1, 0)
        return np.moveaxis(np.asarray(statistic(means)), 0, -1)

    result = stats.bootstrap(
        (data,),
        of_resamples,
        n_resamples=n_boot,
        vectorized=True,
        axis=0,
        confidence_level=level,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return point, np.asarray(result.confidence_interval.low), np.asarray(result.confidence_interval.high)
