"""``ral bench sensitivity``: how much a loss's test score moves across its hyper-parameters.

A benchmark trains *arms* (:class:`Arm`: a loss, fixed parameters and a full factorial grid over
the others) at every grid point with the same ``K`` seeds (so runs pair across arms), on one or
several datasets: with ``--simulate`` one simulated multi-label set per ``--missing-rate`` (the
simulator's share of training positives hidden; same seed and sizes otherwise). The default arms
isolate the Hill weight on one gamma_neg x tau grid (:data:`MATCHED`):

    asl       ASL (gamma_pos 0), margin "clip" = tau          | asl_hill  RAL with eps_pos = () (ASL + Hill)
    apl       APL (gamma_pos 0, eps_pos = the paper's)        | ral       RAL (APL + Hill, lam 1.5)

The statistics, matched comparisons and figures are in :mod:`ral.bench.sensitivity_report`.
Runs are stored in one :class:`~ral.bench.runner.RunStore` (re-running resumes; ``--shard I/N``
splits them over processes).
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ral.bench.experiment import BenchData, Budget, LossSpec, prepare_data, train_and_evaluate
from ral.bench.parallel import DEFAULT_RUN, RunOptions, missing_message
from ral.bench.runner import Job, RunStore, open_bench_folder, run_jobs
from ral.bench.sensitivity_report import arm_statistics, matched_statistics, plot_sensitivity, sensitivity_markdown
from ral.data.table import Task
from ral.metrics import headline_metric

if TYPE_CHECKING:
    from ral.data.simulate import SimulatedSet

_GAMMA_NEG = [2.0, 4.0, 6.0]
_MARGIN = [0.0, 0.05, 0.1]
_PAPER_EPS = [-1.0, 1.25]

#: Own grids of other losses (``--loss NAME``): the parameters each adds; values bracket the published defaults.
GRIDS: dict[str, dict[str, list[Any]]] = {
    "focal": {"gamma": [1.0, 2.0, 3.0], "alpha": [0.25, 0.5, None]},
    "hill": {"lam": [1.0, 1.5, 2.0], "margin": [0.5, 1.0], "gamma": [1.0, 2.0]},
    "cb": {"beta": [0.99, 0.999, 0.9999], "gamma": [1.0, 2.0]},
    "db": {"neg_scale": [1.0, 2.0, 5.0], "init_bias": [0.05, 0.1], "map_mu": [0.1, 0.2, 0.3]},
    "ral_single": {"gamma_neg": [2.0, 4.0], "tau": [0.0, 0.05], "lam": [1.5, 3.0]},
    "focal_ce": {"gamma": [0.5, 1.0, 2.0, 3.0]},
    "ldam": {"max_margin": [0.25, 0.5, 1.0], "scale": [10.0, 30.0]},
    "logit_adjusted": {"tau": [0.5, 1.0, 1.5, 2.0]},
}

#: Missing rates of the full benchmark on the simulated multi-label set (quick: the simulator's default only).
DEFAULT_MISSING_RATES = (0.0, 0.15, 0.3, 0.5)
QUICK_MISSING_RATES = (0.15,)


@dataclass(frozen=True)
class Arm:
    """One loss swept over a grid: ``params = {**fixed, **grid point}`` at every point."""

    label: str
    loss: str
    fixed: Mapping[str, Any] = field(default_factory=dict)
    grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)

    def points(self) -> list[dict[str, Any]]:
        """The parameters of every grid point (fixed ones included), first grid parameter slowest."""
        return [{**dict(self.fixed), **point} for point in grid_points(self.grid)]


#: The default arms: the Hill weight added to ASL and to APL, on the same gamma_neg x margin grid.
ARMS: dict[str, Arm] = {
    "asl": Arm("asl", "asl", {"gamma_pos": 0.0}, {"gamma_neg": _GAMMA_NEG, "clip": _MARGIN}),
    "asl_hill": Arm(
        "asl_hill", "ral", {"gamma_pos": 0.0, "lam": 1.5, "eps_pos": []}, {"gamma_neg": _GAMMA_NEG, "tau": _MARGIN}
    ),
    "apl": Arm("apl", "apl", {"gamma_pos": 0.0, "eps_pos": _PAPER_EPS}, {"gamma_neg": _GAMMA_NEG, "clip": _MARGIN}),
    "ral": Arm(
        "ral", "ral", {"gamma_pos": 0.0, "lam": 1.5, "eps_pos": _PAPER_EPS}, {"gamma_neg": _GAMMA_NEG, "tau": _MARGIN}
    ),
}
#: (without the Hill weight, with it): the matched comparisons of claim 2.
MATCHED: tuple[tuple[str, str], ...] = (("asl", "asl_hill"), ("apl", "ral"))
DEFAULT_ARMS = ("asl", "asl_hill", "apl", "ral")


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
    """All combinations of the grid's values (full factorial, first parameter slowest; scikit-learn's
    ``ParameterGrid`` would sort the parameter names)."""
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]


def point_id(label: str, params: Mapping[str, Any]) -> str:
    """Stable run id of a grid point: arm label + hash of its parameters."""
    digest = hashlib.sha1(json.dumps(dict(params), sort_keys=True).encode()).hexdigest()[:10]
    return f"{label}__{digest}"


def value_label(value: Any) -> str:
    """Display form of a parameter value (lists as tuples, None as 'none')."""
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(f"{v:g}" for v in value) + ")"
    return f"{value:g}" if isinstance(value, float) else str(value)


def loss_options(name: str) -> set[str]:
    """The keyword options of registry loss ``name`` (its constructor's named parameters)."""
    from ral.losses import LOSSES

    parameters = inspect.signature(LOSSES[name]).parameters.values()
    return {p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def resolve_arms(names: Sequence[str], overrides: Sequence[str], task: Task, *, quick: bool) -> list[Arm]:
    """The arms of ``names`` (:data:`ARMS` labels, or losses with a :data:`GRIDS` entry), with
    ``--grid`` overrides (only with one name: they replace or add grid parameters, and a fixed
    parameter they name becomes a grid parameter). ``quick`` cuts each default grid by :func:`quick_grid`.

    Raises:
        ValueError: unknown name, loss of the other task, overrides with several names, an
            override naming a parameter the loss does not take, or a loss without a grid.
    """
    from ral.losses import LOSSES

    if overrides and len(names) != 1:
        raise ValueError(f"--grid needs exactly one --loss, got {list(names)}")
    if len(set(names)) != len(names):
        raise ValueError(f"--loss: an arm is listed twice: {list(names)}")
    parsed = parse_grid_overrides(overrides)
    out = []
    for name in names:
        if name not in ARMS and name not in LOSSES:
            raise ValueError(f"--loss: unknown loss {name!r}; known: {sorted(set(ARMS) | set(LOSSES))}")
        arm = ARMS.get(name) or Arm(name, name, {}, GRIDS.get(name, {}))
        if LOSSES[arm.loss].task != task:
            raise ValueError(f"--loss: {name!r} is a {LOSSES[arm.loss].task} loss but the data is {task}")
        if not arm.grid and not parsed:
            raise ValueError(
                f"--loss: no default grid for {name!r}; give one with --grid PARAM=V1,V2 "
                f"(arms: {sorted(ARMS)}; grids exist for {sorted(GRIDS)})"
            )
        accepted = loss_options(arm.loss)
        unknown = [param for param in parsed if param not in accepted]
        if unknown:
            raise ValueError(f"--grid: loss {arm.loss!r} has no parameter(s) {unknown}; it takes {sorted(accepted)}")
        grid = quick_grid(arm.grid) if quick else {k: list(v) for k, v in arm.grid.items()}
        grid.update(parsed)
        fixed = {k: v for k, v in arm.fixed.items() if k not in grid}
        out.append(Arm(arm.label, arm.loss, fixed, grid))
    return out


def resolve_grids(
    losses: Sequence[str], overrides: Sequence[str], task: Task, *, quick: bool
) -> dict[str, dict[str, list[Any]]]:
    """The grid of every requested arm (label -> grid parameters and values), as :func:`resolve_arms`."""
    return {arm.label: dict(arm.grid) for arm in resolve_arms(losses, overrides, task, quick=quick)}


def store_settings(datasets: Sequence[BenchData], budget: Budget) -> dict[str, Any]:
    """What a sensitivity folder pins (``bench.json``): every dataset (one per missing rate) and the budget."""
    return {"benchmark": "sensitivity", "data": [d.to_dict() for d in datasets], "budget": budget.__dict__}


def sensitivity_jobs(
    out_dir: str | os.PathLike, datasets: Sequence[BenchData], arms: Sequence[Arm], seeds: Sequence[int], budget: Budget
) -> list[Job]:
    """Every run: dataset (missing rate) slowest, then seed, arm and grid point."""
    cache = str(Path(out_dir) / "cache")
    jobs = []
    for data in datasets:
        prefix = "" if data.missing_rate is None else f"m{data.missing_rate:g}__"
        where = "" if data.missing_rate is None else f"missing {data.missing_rate:g}, "
        for seed in seeds:
            for arm in arms:
                for params in arm.points():
                    spec = LossSpec(arm.label, arm.loss, params)
                    shown = ", ".join(f"{k}={value_label(params[k])}" for k in arm.grid)
                    jobs.append(
                        Job(
                            f"{prefix}{point_id(arm.label, params)}__seed{seed}",
                            {**spec.to_dict(), "seed": int(seed), "missing_rate": data.missing_rate},
                            lambda folder, data=data, spec=spec, seed=seed: train_and_evaluate(
                                data, spec, seed, budget, folder, cache_dir=cache
                            ),
                            f"{where}{arm.label} seed {seed} {shown}",
                            headline_metric(data.task),
                        )
                    )
    return jobs


def grid_frame(results: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per stored run: ``missing_rate`` (NaN for a user's table), ``arm``, ``loss``, ``seed``,
    one column per parameter (display labels, "" where an arm lacks it), ``params`` (JSON), the metrics."""
    rows = []
    for result in results:
        spec = result["spec"]
        rate = spec.get("missing_rate")
        row: dict[str, Any] = {
            "missing_rate": float("nan") if rate is None else float(rate),
            "arm": spec["label"],
            "loss": spec["loss"],
            "seed": int(spec["seed"]),
        }
        row.update({name: value_label(value) for name, value in spec["params"].items()})
        row["params"] = json.dumps(spec["params"], sort_keys=True)
        row.update({k: v for k, v in result.items() if k not in ("per_class", "spec", "run_id")})
        rows.append(row)
    frame = pd.DataFrame(rows)
    for name in {name for result in results for name in result["spec"]["params"]}:
        frame[name] = frame[name].fillna("")
    return frame


def collect_sensitivity(folder: str | os.PathLike) -> tuple[dict[str, Any], pd.DataFrame] | None:
    """Every finished run of a sensitivity folder: ``(settings, grid frame)``, or None when it holds none.

    Raises:
        ValueError: the folder is another benchmark.
    """
    finished = RunStore.finished(folder, "sensitivity")
    if finished is None:
        return None
    settings, stored = finished
    order = {label: i for i, label in enumerate(ARMS)}
    stored.sort(
        key=lambda r: (
            r["spec"].get("missing_rate") or 0.0,
            int(r["spec"]["seed"]),
            order.get(r["spec"]["label"], len(order)),
            r["run_id"],
        )
    )
    return settings, grid_frame(stored)


def missing_rates(
    rates: Sequence[float] | None, *, simulate: bool, task: SimulatedSet | None, quick: bool
) -> list[float | None]:
    """The datasets' missing rates: the given ones, the defaults for the simulated multi-label set,
    or ``[None]`` (one dataset: a user's table or a single-label simulated set).

    Raises:
        ValueError: rates with a user's table or a single-label set, a rate outside [0, 0.9], or a repeat.
    """
    multilabel = simulate and (task or "multilabel") == "multilabel"
    if rates is None:
        return list(QUICK_MISSING_RATES if quick else DEFAULT_MISSING_RATES) if multilabel else [None]
    if not multilabel:
        raise ValueError("--missing-rate applies to the simulated multi-label set only (--simulate, task multilabel)")
    checked = [float(rate) for rate in rates]
    bad = [rate for rate in checked if not 0.0 <= rate <= 0.9]
    if bad or len(set(checked)) != len(checked):
        raise ValueError(f"--missing-rate values must be distinct numbers in [0, 0.9], got {list(rates)}")
    return checked


def benchmark_sensitivity(
    out_dir: str | os.PathLike,
    budget: Budget,
    *,
    losses: Sequence[str] = DEFAULT_ARMS,
    grid_overrides: Sequence[str] = (),
    seed: int = 0,
    seeds: int | None = None,
    missing_rate: Sequence[float] | None = None,
    run: RunOptions = DEFAULT_RUN,
    **data_args: Any,
) -> str:
    """Prepare the datasets, run this shard's runs (resuming) and, once every run has finished, write
    the report (:func:`write_sensitivity_report`).

    Args:
        losses: arm labels or losses with a grid (:func:`resolve_arms`).
        seed, seeds: every grid point is trained with seeds ``seed .. seed + seeds - 1`` (default:
            the budget's number of seeds).
        missing_rate: the simulated multi-label sets' missing rates (:func:`missing_rates`).
        data_args: go to :func:`ral.bench.experiment.prepare_data`.
        run: shard, command line, ``overwrite`` (discard an earlier benchmark in ``out_dir``,
            checked first by :func:`ral.bench.runner.open_bench_folder`) and log.

    Returns:
        The markdown summary, or a line saying how many runs are still missing.
    """
    quick = budget.name.startswith("quick")
    count = budget.seeds if seeds is None else seeds
    for name, value, low in (("--seed", seed, 0), ("--seeds", count, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    shard, command, log = run.shard, run.command, run.log
    open_bench_folder(
        out_dir, overwrite=run.overwrite, settings={"benchmark": "sensitivity", "budget": budget.__dict__}
    )
    rates = missing_rates(
        missing_rate, simulate=bool(data_args.get("simulate")), task=data_args.get("task"), quick=quick
    )
    datasets = [prepare_data(out_dir, budget, missing_rate=rate, **data_args) for rate in rates]
    arms = resolve_arms(losses, grid_overrides, datasets[0].task, quick=quick)
    run_seeds = list(range(seed, seed + count))
    jobs = sensitivity_jobs(out_dir, datasets, arms, run_seeds, budget)
    part = "" if shard.whole else f", shard {shard}"
    log(
        f"ral bench sensitivity: {len(jobs)} runs ({', '.join(a.label for a in arms)}; {count} seed(s); "
        f"{len(datasets)} dataset(s)), budget {budget.name}{part}"
    )
    store = RunStore(out_dir, store_settings(datasets, budget))
    done = run_jobs(store, jobs, shard, log=log)
    missing = sum(result is None for result in done)
    if missing:
        return missing_message(missing, len(jobs), shard, command)
    return write_sensitivity_report(
        out_dir, grid_frame(done), task=datasets[0].task, datasets=datasets, budget=budget, command=command
    )


def write_sensitivity_report(
    out_dir: str | os.PathLike,
    frame: pd.DataFrame,
    *,
    task: Task,
    datasets: Sequence[BenchData],
    budget: Budget,
    command: str = "",
) -> str:
    """Write grid.csv, summary.csv, matched.csv (pairs of :data:`MATCHED`), summary.md, command.txt
    and the heat maps; return summary.md's markdown."""
    from ral.report import write_csv, write_text

    out = Path(out_dir)
    metric = headline_metric(task)
    write_csv(frame, out / "grid.csv")
    write_csv(arm_statistics(frame, metric), out / "summary.csv")
    write_csv(matched_statistics(frame, metric, MATCHED), out / "matched.csv")
    files = plot_sensitivity(frame, task, out)
    figures = [f"![{Path(f).stem}]({f})" for f in files["overview"]]
    if files["arms"]:
        figures.append(f"\nPer-arm heat maps at missing rate {files['dataset']}:\n")
        figures.append(" ".join(f"![{Path(f).stem}]({f})" for f in files["arms"]))
    data_lines = "\n".join(f"- {d.description}" for d in datasets)
    seeds = ", ".join(map(str, sorted(pd.unique(frame["seed"]))))
    text = (
        f"# Hyper-parameter sensitivity ({task}, test {metric}, budget `{budget.name}`)\n\n"
        + (f"Command: `{command}`\n\n" if command else "")
        + f"Data:\n\n{data_lines}\n\n"
        + f"Every grid point: backbone `{budget.backbone}`, {budget.epochs} epochs, batch {budget.batch_size}, "
        f"AdamW lr {budget.lr:g} with cosine decay, {budget.image_size} px, seeds {seeds} "
        "(the same for every arm); the best-on-validation checkpoint is evaluated on the test table.\n\n"
        + sensitivity_markdown(frame, task, pairs=MATCHED, level=2)
        + "\nFigures:\n\n"
        + "\n".join(figures)
        + "\n\nRaw rows: `grid.csv`; statistics: `summary.csv`, `matched.csv`.\n"
    )
    write_text(text, out / "summary.md")
    if command:
        write_text(command + "\n", out / "command.txt")
    return text
