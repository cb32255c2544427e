"""``ral bench sensitivity``: how much a loss's test score moves across its hyper-parameters (claim 2).

Each loss is trained at every point of a full factorial grid over its own parameters (same
data, backbone, schedule, budget and seed at every point). Reported per loss: the mean,
sample standard deviation, worst case, best case and range of the test metric over the grid;
per parameter, its main effect (the range of the metric averaged over the other parameters);
and one heat map per pair of parameters (the metric averaged over the remaining ones).
Runs are stored in a :class:`~ral.bench.runner.RunStore`: re-running resumes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ral.bench.experiment import BenchData, Budget, LossSpec, train_and_evaluate
from ral.bench.losses import known_settings, prepare_data
from ral.bench.runner import RunStore, open_bench_folder
from ral.metrics import headline_metric

#: Default grids: the parameters each loss adds; values bracket the published defaults.
GRIDS: dict[str, dict[str, list[Any]]] = {
    "ral": {"gamma_neg": [2.0, 4.0, 6.0], "tau": [0.0, 0.05, 0.1], "lam": [1.5, 3.0], "eps_pos": [[], [-1.0, 1.25]]},
    "asl": {"gamma_neg": [2.0, 4.0, 6.0], "clip": [0.0, 0.05, 0.1], "gamma_pos": [0.0, 1.0]},
    "apl": {"gamma_neg": [2.0, 4.0, 6.0], "clip": [0.0, 0.05, 0.1], "eps_pos": [[], [-1.0, 1.25]]},
    "focal": {"gamma": [1.0, 2.0, 3.0], "alpha": [0.25, 0.5, None]},
    "hill": {"lam": [1.0, 1.5, 2.0], "margin": [0.5, 1.0], "gamma": [1.0, 2.0]},
    "cb": {"beta": [0.99, 0.999, 0.9999], "gamma": [1.0, 2.0]},
    "db": {"neg_scale": [1.0, 2.0, 5.0], "init_bias": [0.05, 0.1], "map_mu": [0.1, 0.2, 0.3]},
    "ral_single": {"gamma_neg": [2.0, 4.0], "tau": [0.0, 0.05], "lam": [1.5, 3.0]},
    "focal_ce": {"gamma": [0.5, 1.0, 2.0, 3.0]},
    "ldam": {"max_margin": [0.25, 0.5, 1.0], "scale": [10.0, 30.0]},
    "logit_adjusted": {"tau": [0.5, 1.0, 1.5, 2.0]},
}


def quick_grid(grid: Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
    """A smoke-test grid: the first two parameters, each at its first and last value."""
    return {
        name: [values[0], values[-1]] if len(values) > 1 else list(values) for name, values in list(grid.items())[:2]
    }


def parse_grid_overrides(items: Sequence[str]) -> dict[str, list[Any]]:
    """``["gamma_neg=1,2,4", "eps_pos=[];[-1,1.25]"]`` -> ``{"gamma_neg": [1, 2, 4], ...}``.

    Values are separated by ``,`` (or by ``;`` when a value is itself a list) and parsed as JSON
    (``null`` for None).

    Raises:
        ValueError: an item without ``=`` or a value that is not JSON.
    """
    out: dict[str, list[Any]] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name or not text:
            raise ValueError(f"--grid items look like PARAM=V1,V2,..., got {item!r}")
        parts = text.split(";") if ";" in text or text.lstrip().startswith("[") else text.split(",")
        try:
            out[name.strip()] = [json.loads(part) for part in parts]
        except json.JSONDecodeError:
            raise ValueError(f"--grid {item!r}: values must be numbers, null or [lists]") from None
    return out


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """All combinations of the grid's values (full factorial, first parameter slowest)."""
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]


def point_id(loss: str, params: Mapping[str, Any]) -> str:
    """Stable run id of a grid point: loss name + hash of its parameters."""
    digest = hashlib.sha1(json.dumps(dict(params), sort_keys=True).encode()).hexdigest()[:10]
    return f"{loss}__{digest}"


def value_label(value: Any) -> str:
    """Display form of a parameter value (lists as tuples, None as 'none')."""
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(f"{v:g}" for v in value) + ")"
    return f"{value:g}" if isinstance(value, float) else str(value)


def run_grid(
    out_dir: str | os.PathLike,
    data: BenchData,
    loss: str,
    grid: Mapping[str, Sequence[Any]],
    budget: Budget,
    *,
    seed: int = 0,
    noise_seeds: int = 0,
    log: Callable[[str], None] = print,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run (or reuse) every grid point of ``loss`` with ``seed``, then the loss at its default
    parameters with seeds ``0 .. noise_seeds - 1`` (seed noise at the same budget).

    Returns:
        ``(grid, noise)``: one row per grid point (parameter columns as display labels,
        ``params`` as JSON, test metrics) and one row per noise run.
    """
    out = Path(out_dir)
    store = RunStore(out, {"benchmark": "sensitivity", "data": data.to_dict(), "budget": budget.__dict__})
    headline = headline_metric(data.task)
    jobs = [
        (f"{index}/{len(grid_points(grid))}", params, seed, point_id(loss, params))
        for index, params in enumerate(grid_points(grid), start=1)
    ]
    jobs += [(f"defaults, seed {s}", {}, s, f"{loss}__defaults__seed{s}") for s in range(noise_seeds)]
    grid_rows, noise_rows = [], []
    for label, params, run_seed, identifier in jobs:
        spec = LossSpec(loss, loss, params)
        started = time.perf_counter()
        result, computed = store.run(
            identifier,
            {**spec.to_dict(), "seed": int(run_seed)},
            lambda folder, spec=spec, run_seed=run_seed: train_and_evaluate(
                data, spec, run_seed, budget, folder, cache_dir=str(out / "cache")
            ),
        )
        how = f"{time.perf_counter() - started:.0f} s" if computed else "done before, reused"
        shown = ", ".join(f"{k}={value_label(v)}" for k, v in params.items())
        log(f"[{loss} {label}] {shown}: {headline} {result[headline]:.4f} ({how})")
        row: dict[str, Any] = {"loss": loss, "seed": int(run_seed)}
        row.update({name: value_label(value) for name, value in params.items()})
        row["params"] = json.dumps(params, sort_keys=True)
        row.update({k: v for k, v in result.items() if k not in ("per_class", "spec", "run_id")})
        (noise_rows if identifier.startswith(f"{loss}__defaults__") else grid_rows).append(row)
    return pd.DataFrame(grid_rows), pd.DataFrame(noise_rows)


def grid_statistics(frame: pd.DataFrame, metric: str, params: Sequence[str]) -> dict[str, Any]:
    """Spread of ``metric`` over the grid points in ``frame`` (one loss).

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


def write_sensitivity_report(
    out_dir: str | os.PathLike,
    grids: Mapping[str, pd.DataFrame],
    params_by_loss: Mapping[str, Sequence[str]],
    noise: Mapping[str, pd.DataFrame] | None = None,
    *,
    task: str,
    data: BenchData,
    budget: Budget,
    seed: int,
    command: str = "",
) -> str:
    """Write grid.csv, summary.csv, summary.md and one heat map per loss and parameter pair.

    Args:
        grids: loss -> one row per grid point (parameter columns as display labels + metrics).
        params_by_loss: loss -> its grid's parameter names (columns of its frame).
        noise: loss -> runs at the loss's default parameters with different seeds (optional);
            their sample std is the seed noise the grid spread should be compared with.
    """
    from ral.report import markdown_table, plot_heatmap, write_csv, write_text

    out = Path(out_dir)
    metric = headline_metric(task)
    write_csv(pd.concat(list(grids.values()), ignore_index=True), out / "grid.csv")
    if noise and any(len(f) for f in noise.values()):
        write_csv(pd.concat(list(noise.values()), ignore_index=True), out / "seed_noise.csv")
    summary_rows, effect_lines, figures = [], [], []
    for loss, frame in grids.items():
        params = [p for p in params_by_loss[loss] if frame[p].nunique() > 1] or list(params_by_loss[loss])
        stats = grid_statistics(frame.reset_index(drop=True), metric, params)
        seeds = noise.get(loss) if noise else None
        seeds_n = 0 if seeds is None else len(seeds)
        summary_rows.append(
            {
                "loss": loss,
                **{k: v for k, v in stats.items() if not k.startswith("effect_")},
                "seed_runs": seeds_n,
                "seed_mean": float(seeds[metric].mean()) if seeds_n else float("nan"),
                "seed_std": float(seeds[metric].std(ddof=1)) if seeds_n > 1 else float("nan"),
            }
        )
        effects = ", ".join(f"{p} {stats[f'effect_{p}']:.3f}" for p in params)
        effect_lines.append(f"- `{loss}`: {effects}")
        for first, second in itertools.combinations(params, 2):
            matrix = pair_matrix(frame, metric, first, second)
            name = f"heatmap_{loss}_{first}_{second}.png"
            plot_heatmap(
                matrix.to_numpy(dtype=float),
                [f"{first}={v}" for v in matrix.index],
                [f"{second}={v}" for v in matrix.columns],
                out / name,
                title=f"{loss}: test {metric}, mean over the other parameters",
                fmt=".3f",
                colorbar_label=metric,
            )
            figures.append(name)
    summary = pd.DataFrame(summary_rows)
    write_csv(summary, out / "summary.csv")
    shown = summary.copy()
    for column in ("mean", "std", "worst", "best", "range", "seed_mean", "seed_std"):
        shown[column] = shown[column].map(lambda v: "n/a" if not np.isfinite(v) else f"{v:.4f}")
    text = (
        f"# Hyper-parameter sensitivity ({task}, test {metric}, budget `{budget.name}`)\n\n"
        + (f"Command: `{command}`\n\n" if command else "")
        + f"Data: {data.description}.\n\n"
        f"Every grid point: backbone `{budget.backbone}`, {budget.epochs} epochs, batch {budget.batch_size}, "
        f"AdamW lr {budget.lr:g} with cosine decay, {budget.image_size} px, seed {seed}; the best-on-validation "
        "checkpoint is evaluated on the test table. `std` is the sample standard deviation over the grid points; "
        "`range` = best - worst. `seed_mean` / `seed_std`: the loss at its default parameters trained with "
        "`seed_runs` different seeds (sample std), i.e. the spread that seed noise alone produces at this "
        "budget.\n\n"
        + markdown_table(shown)
        + "\nMain effect of each parameter (range of the metric averaged over the other parameters):\n\n"
        + "\n".join(effect_lines)
        + "\n\n"
        + "Heat maps: "
        + ", ".join(f"`{f}`" for f in figures)
        + ". Raw rows: `grid.csv`.\n"
    )
    write_text(text, out / "summary.md")
    return text


def resolve_grids(
    losses: Sequence[str], overrides: Sequence[str], task: str, *, quick: bool
) -> dict[str, dict[str, list[Any]]]:
    """The grid of every requested loss, with ``--grid`` overrides (only with one loss).

    Raises:
        ValueError: unknown loss, loss of the other task, overrides with several losses, or an
            override naming a parameter the loss does not take.
    """
    from ral.losses import LOSSES

    if overrides and len(losses) != 1:
        raise ValueError(f"--grid needs exactly one --loss, got {list(losses)}")
    parsed = parse_grid_overrides(overrides)
    out = {}
    for loss in losses:
        if loss not in LOSSES:
            raise ValueError(f"--loss: unknown loss {loss!r}; known: {sorted(LOSSES)}")
        if LOSSES[loss].task != task:
            raise ValueError(f"--loss: {loss!r} is a {LOSSES[loss].task} loss but the data is {task}")
        accepted = LOSSES[loss].option_names()
        unknown = [name for name in parsed if name not in accepted]
        if unknown:
            raise ValueError(f"--grid: loss {loss!r} has no parameter(s) {unknown}; it takes {sorted(accepted)}")
        if loss not in GRIDS and not parsed:
            raise ValueError(
                f"--loss: no default grid for {loss!r}; give one with --grid PARAM=V1,V2 "
                f"(grids exist for {sorted(GRIDS)})"
            )
        default = GRIDS.get(loss, {})
        grid = quick_grid(default) if quick else dict(default)
        grid.update(parsed)
        out[loss] = grid
    return out


def benchmark_sensitivity(
    out_dir: str | os.PathLike,
    budget: Budget,
    *,
    losses: Sequence[str] = ("ral", "asl"),
    grid_overrides: Sequence[str] = (),
    seed: int = 0,
    noise_seeds: int | None = None,
    command: str = "",
    overwrite: bool = False,
    log: Callable[[str], None] = print,
    **data_args: Any,
) -> str:
    """Prepare the data, run every grid point of every loss (resuming) and write the report.

    ``data_args`` go to :func:`ral.bench.losses.prepare_data`. ``out_dir`` is checked first
    (:func:`ral.bench.runner.open_bench_folder`; ``overwrite`` discards an earlier benchmark).
    With the "quick" budget each
    default grid is cut down by :func:`quick_grid` (``--grid`` values are kept as given) and
    ``noise_seeds`` defaults to 0 (else 3). Returns the markdown summary.
    """
    quick = budget.name.startswith("quick")
    noise_seeds = (0 if quick else 3) if noise_seeds is None else noise_seeds
    for name, value in (("--seed", seed), ("--noise-seeds", noise_seeds)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    open_bench_folder(out_dir, overwrite=overwrite, settings=known_settings("sensitivity", budget, data_args))
    data = prepare_data(out_dir, budget, **data_args)
    grids = resolve_grids(losses, grid_overrides, data.task, quick=quick)
    total = sum(len(grid_points(g)) + noise_seeds for g in grids.values())
    log(f"ral bench sensitivity: {total} runs ({', '.join(grids)}), budget {budget.name}, {data.description}")
    frames, noise = {}, {}
    for loss, grid in grids.items():
        frames[loss], noise[loss] = run_grid(
            out_dir, data, loss, grid, budget, seed=seed, noise_seeds=noise_seeds, log=log
        )
    params = {loss: list(grid) for loss, grid in grids.items()}
    return write_sensitivity_report(
        out_dir, frames, params, noise, task=data.task, data=data, budget=budget, seed=seed, command=command
    )
