"""``ral bench tune``: claim 2 measured as the gain that tuning buys, at an equal trial budget.

For each loss (default: ral, asl, apl, hill, ral_cb) and each search ``s`` (0 .. searches-1), one
``ral tune`` study (:func:`ral.tune.tune`: TPE seeded with ``s``, training seed ``s``, no pruning, the
loss's declared search space) of ``trials`` trials trains the loss on the benchmark data at the
budget and maximises the validation metric; its first trial is the loss's default. The default's and
the best trial's best-on-val checkpoints are then evaluated on the test table. Claim 2 (the Hill
weight makes RAL less sensitive to its hyper-parameters) predicts a smaller tuning gain and a less
concentrated importance for RAL than for ASL / APL.

All studies live in ``<out>/study.db`` (SQLite); re-running the command resumes them. Several processes
running the same command would share them (each trial run once), but a search is seeded, so they would
sample the same first trials: run it in one process. Output folder::

    <out>/studies/<loss>-<s>/   the study's trials, best.yaml, summary.md, plots (ral tune's outputs)
    <out>/results.csv           one row per study (see :func:`study_row`)
    <out>/summary.md            per loss: mean over searches, t intervals of the gains, importances
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ral.bench.experiment import BenchData, Budget, LossSpec, engine_config, known_settings, prepare_data
from ral.bench.parallel import DEFAULT_RUN, RunOptions
from ral.bench.runner import RunStore, open_bench_folder
from ral.bench.summary import t_interval
from ral.metrics import headline_metric
from ral.report import markdown_table, write_csv, write_text

#: The losses of claim 2's tuning comparison.
DEFAULT_LOSSES = ("ral", "asl", "apl", "hill", "ral_cb")
#: "Near the best": the validation score within this of the study's best.
NEAR = 0.005
#: Trials per search and searches per loss (the equal budget of every loss).
DEFAULT_TRIALS, DEFAULT_SEARCHES = 24, 2


def _test_score(study: Any, trial: Any, data: BenchData, metric: str) -> float:
    """The test metric of ``trial``'s best checkpoint (kept in the study's user attributes, so a
    re-run or another process does not evaluate it again)."""
    from ral.bench.experiment import _quiet_lightning
    from ral.engine import evaluate

    key = f"test_{metric}_{trial.number}"
    if key not in study.user_attrs:
        run = Path(trial.user_attrs["output_dir"])
        tables = dict(val_data=data.val, format=data.format, root=data.root)  # the F1 thresholds come from val
        with _quiet_lightning():
            checkpoint = str(run / "checkpoints" / "best.ckpt")
            report = evaluate(checkpoint, data.test, out_dir=run / "eval", n_boot=0, device="cpu", **tables)
        study.set_user_attr(key, float(report[metric]))
    return float(study.user_attrs[key])


def trials_to_near_best(values: Sequence[float], near: float = NEAR) -> int:
    """How many trials, in the order they ran, the search needed before one came within ``near`` of the
    best value."""
    best = max(values)
    return next(i for i, value in enumerate(values, start=1) if value >= best - near)


def study_row(study: Any, data: BenchData, metric: str, loss: str, search: int) -> dict[str, Any]:
    """One study's results: validation and test scores of the default (the first trial) and of the best
    trial, their gains, the trials needed to come near the best, the spread of the validation scores
    over trials and the fANOVA importances (``importance_<param>``)."""
    from ral.tune.report import best_trial, importances

    complete = [t for t in study.get_trials(deepcopy=False) if t.value is not None]
    default = next(t for t in complete if t.user_attrs.get("starting_point"))
    best = best_trial(study)
    ranked = importances(study)
    row = {
        "loss": loss,
        "search": search,
        "trials": len(complete),
        "default_val": default.value,
        "best_val": best.value,
        "gain_val": best.value - default.value,
        "default_test": _test_score(study, default, data, metric),
        "best_test": _test_score(study, best, data, metric),
        "trials_to_near_best": trials_to_near_best([t.value for t in sorted(complete, key=lambda t: t.number)]),
        "val_std": float(np.std([t.value for t in complete], ddof=1)) if len(complete) > 1 else float("nan"),
        "top_param": next(iter(ranked), ""),
        "top_importance": next(iter(ranked.values()), float("nan")),
    }
    row["gain_test"] = row["best_test"] - row["default_test"]
    return row | {f"importance_{name}": value for name, value in ranked.items()}


def _cell(values: pd.Series) -> str:
    low, high = t_interval(values)
    interval = f" [{low:+.4f}, {high:+.4f}]" if np.isfinite(low) else ""
    return f"{values.mean():+.4f}{interval}"


def tune_summary(results: pd.DataFrame, *, metric: str, trials: int, description: str, command: str) -> str:
    """summary.md: per loss, the means over searches (gains with 95% t intervals over searches) and the
    mean fANOVA importance of each parameter."""
    rows = []
    for loss, group in results.groupby("loss", sort=False):
        rows.append(
            {
                "loss": loss,
                "searches": len(group),
                "default val": f"{group['default_val'].mean():.4f}",
                "best val": f"{group['best_val'].mean():.4f}",
                "gain val": _cell(group["gain_val"]),
                "default test": f"{group['default_test'].mean():.4f}",
                "best test": f"{group['best_test'].mean():.4f}",
                "gain test": _cell(group["gain_test"]),
                f"trials to within {NEAR}": f"{group['trials_to_near_best'].mean():.1f}",
                "val std over trials": f"{group['val_std'].mean():.4f}",
                "top importance": f"{group['top_importance'].mean():.2f}",
            }
        )
    importance = results.filter(like="importance_").drop(columns=["top_importance"], errors="ignore")
    shares = importance.groupby(results["loss"], sort=False).mean()
    shares.columns = [c.removeprefix("importance_") for c in shares.columns]
    lines = [
        "# ral bench tune: the gain that tuning buys (claim 2)",
        "",
        f"Data: {description}. Each search: {trials} trials of `ral tune` (TPE, the loss's declared search "
        f"space, no pruning), the first at the loss's defaults; objective: validation {metric}; the default's "
        f"and the best trial's checkpoints evaluated on the test split. Gains: mean over searches "
        "[95% t interval over searches]. Importances: fANOVA, mean over searches.",
        "",
        markdown_table(pd.DataFrame(rows)),
        "",
        "## Importances (fANOVA, mean over searches)",
        "",
        markdown_table(shares.reset_index(), floatfmt=".2f"),
        "",
        f"Command: `{command}`",
        "",
    ]
    return "\n".join(lines)


def benchmark_tune(
    out_dir: str | os.PathLike,
    budget: Budget,
    *,
    losses: Sequence[str] | None = None,
    trials: int = DEFAULT_TRIALS,
    searches: int = DEFAULT_SEARCHES,
    run: RunOptions = DEFAULT_RUN,
    **data_args: Any,
) -> str:
    """Run (or resume) every study, evaluate the defaults and the best trials on the test split, and
    write results.csv and summary.md into ``out_dir``; returns the summary.

    Raises:
        ValueError: a bad count, a loss of the other task, or an output folder of other settings.
    """
    import optuna

    from ral.losses import LOSSES
    from ral.tune import tune

    if trials < 2 or searches < 1:
        raise ValueError(f"--trials must be >= 2 and --searches >= 1, got {trials}, {searches}")
    if not run.shard.whole:
        raise ValueError("--shard does not apply to ral bench tune: start the same command in several processes")
    names = list(losses or DEFAULT_LOSSES)
    settings = known_settings("tune", budget, data_args)
    open_bench_folder(out_dir, overwrite=run.overwrite, settings=settings)
    data = prepare_data(out_dir, budget, **data_args)
    RunStore(out_dir, {**settings, "data": data.to_dict()})  # pins the budget and data of the folder
    metric = headline_metric(data.task)
    for name in names:
        if name not in LOSSES or LOSSES[name].task != data.task:
            raise ValueError(f"--losses: {name!r} is not a {data.task} loss of ral.losses.LOSSES")
    storage = f"sqlite:///{Path(out_dir).resolve() / 'study.db'}"
    rows = []
    for name in names:
        for search in range(searches):
            run.log(f"ral bench tune: {name}, search {search + 1} of {searches}, {trials} trials")
            folder = Path(out_dir) / "studies" / f"{name}-{search}"
            config = engine_config(data, LossSpec(name, name), search, budget, folder)
            study_name = f"{name}-{search}"
            tune(
                config,
                trials=trials,
                out=str(folder),
                study=study_name,
                storage=storage,
                pruner="none",
                sampler_seed=search,
            )
            study = optuna.load_study(study_name=study_name, storage=storage)
            rows.append(study_row(study, data, metric, name, search))
    results = pd.DataFrame(rows)
    write_csv(results, Path(out_dir) / "results.csv")
    text = tune_summary(results, metric=metric, trials=trials, description=data.description, command=run.command)
    write_text(text, Path(out_dir) / "summary.md")
    return text
