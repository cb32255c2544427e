"""``ral bench losses``: every loss, several seeds, one backbone and schedule (claim 1).

Each (loss, seed) is one run of :func:`ral.bench.experiment.train_and_evaluate`, stored by a
:class:`~ral.bench.runner.RunStore`, so an interrupted benchmark resumes where it stopped.
Outputs in the benchmark folder::

    results.csv         one row per run (loss, seed, test metrics, seconds per epoch, ...)
    per_class.csv       per-class test AP (single-label: per-class accuracy) of every run
    summary.csv / .md   mean ± sample std over seeds per loss
    metrics.png         bar chart of the means with std error bars
    per_class.png       heat map loss x class (mean over seeds), classes by training frequency
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ral.bench.experiment import (
    BenchData,
    Budget,
    LossSpec,
    simulated_data,
    train_and_evaluate,
    user_data,
)
from ral.bench.runner import RunStore, open_bench_folder
from ral.bench.summary import mean_std_table, paired_differences, summarize
from ral.losses.ral import PRESETS as RAL_PRESETS
from ral.metrics import headline_metric, metric_names

#: The paper's constants for RAL (the "paper" preset: Eq. 6 with the authors' released coefficients).
RAL_PAPER = {key: RAL_PRESETS["paper"][key] for key in ("gamma_pos", "gamma_neg", "tau", "lam", "eps_pos", "eps_neg")}

#: Multi-label losses compared by default; every peer at its published default parameters.
MULTILABEL_LOSSES: tuple[LossSpec, ...] = (
    LossSpec("bce", "bce"),
    LossSpec("focal", "focal"),
    LossSpec("asl", "asl"),
    LossSpec("apl", "apl"),
    LossSpec("hill", "hill"),
    LossSpec("cb_focal", "cb", {"base": "focal"}),
    LossSpec("db", "db"),
    LossSpec("zlpr", "zlpr"),
    LossSpec("twoway", "twoway"),
    LossSpec("splc", "splc"),
    LossSpec("ral_paper", "ral", RAL_PAPER),
    LossSpec("ral", "ral"),  # the project's default parameters (RobustAsymmetricLoss())
    LossSpec("ral_cb", "ral_cb"),
)

#: Single-label losses compared by default (LDAM gets deferred re-weighting in :func:`loss_specs`).
SINGLE_LABEL_LOSSES: tuple[LossSpec, ...] = (
    LossSpec("ce", "ce"),
    LossSpec("focal_ce", "focal_ce"),
    LossSpec("ldam_drw", "ldam"),
    LossSpec("logit_adjusted", "logit_adjusted"),
    LossSpec("balanced_softmax", "balanced_softmax"),
    LossSpec("poly_ce", "poly_ce"),
    LossSpec("ral_single", "ral_single"),
    LossSpec("ral_la", "ral_la"),
)

SCORE_NAME = {"multilabel": "AP", "single": "accuracy"}


def _default_is_paper() -> bool:
    """Whether ``RobustAsymmetricLoss()`` uses exactly the paper's constants."""
    from ral.losses import RobustAsymmetricLoss

    return RobustAsymmetricLoss().params == RobustAsymmetricLoss(**RAL_PAPER).params


def loss_specs(task: str, names: Sequence[str] | None, budget: Budget) -> list[LossSpec]:
    """The losses to compare for ``task``.

    ``names`` picks rows of the default list by label (``ral_paper``, ``cb_focal``, ...), any
    registry name (at its default parameters), or ``LABEL=NAME:{json parameters}`` (e.g.
    ``ral_g6=ral:{"gamma_neg": 6}``); None takes the whole default list. When the
    project's default RAL equals the paper preset, the duplicate ``ral_paper`` row is dropped.
    LDAM gets deferred re-weighting from 80% of the epochs on.

    Raises:
        ValueError: unknown name, or a loss of the other task.
    """
    from ral.losses import LOSSES

    defaults = MULTILABEL_LOSSES if task == "multilabel" else SINGLE_LABEL_LOSSES
    by_label = {spec.label: spec for spec in (*MULTILABEL_LOSSES, *SINGLE_LABEL_LOSSES)}
    if names is None:
        chosen = list(defaults)
        if task == "multilabel" and _default_is_paper():
            chosen = [spec for spec in chosen if spec.label != "ral_paper"]
    else:
        chosen = []
        for name in names:
            if ":" in name:
                chosen.append(_custom_spec(name))
            elif name in by_label:
                chosen.append(by_label[name])
            elif name in LOSSES:
                chosen.append(LossSpec(name, name))
            else:
                raise ValueError(f"--losses: unknown loss {name!r}; known: {sorted(set(by_label) | set(LOSSES))}")
    out = []
    for spec in chosen:
        if spec.loss not in LOSSES:
            raise ValueError(f"--losses: unknown loss {spec.loss!r} in {spec.label!r}; known: {sorted(LOSSES)}")
        if LOSSES[spec.loss].task != task:
            raise ValueError(f"--losses: {spec.label!r} is a {LOSSES[spec.loss].task} loss but the data is {task}")
        if spec.loss == "ldam" and "drw_epoch" not in spec.params:
            spec = LossSpec(spec.label, spec.loss, {**spec.params, "drw_epoch": int(0.8 * budget.epochs)})
        out.append(spec)
    if len({spec.label for spec in out}) != len(out):
        raise ValueError(f"--losses: a loss is listed twice: {[spec.label for spec in out]}")
    return out


def _custom_spec(text: str) -> LossSpec:
    """``LABEL=NAME:{json}`` -> LossSpec (``ValueError`` naming the item when malformed)."""
    head, _, params_text = text.partition(":")
    label, sep, name = head.partition("=")
    if not sep or not label or not name:
        raise ValueError(f"--losses: a loss with parameters looks like LABEL=NAME:{{json}}, got {text!r}")
    try:
        params = json.loads(params_text)
    except json.JSONDecodeError:
        params = None
    if not isinstance(params, dict):
        raise ValueError(f'--losses {text!r}: the parameters must be a JSON object, e.g. {{"gamma_neg": 6}}')
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", label):
        raise ValueError(f"--losses {text!r}: the label may hold letters, digits and _ . + - only")
    return LossSpec(label, name, params)


def run_id(label: str, seed: int) -> str:
    return f"{label}__seed{seed}"


def run_losses(
    out_dir: str | os.PathLike,
    data: BenchData,
    specs: Sequence[LossSpec],
    seeds: Sequence[int],
    budget: Budget,
    *,
    log: Callable[[str], None] = print,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run (or reuse) every (loss, seed) and return ``(results, per_class)`` tables.

    Runs go seed-major (all losses for seed 0, then seed 1, ...) so that an interrupted
    benchmark already holds comparable rows for every loss.
    """
    out = Path(out_dir)
    store = RunStore(out, {"benchmark": "losses", "data": data.to_dict(), "budget": budget.__dict__})
    rows, per_class_rows = [], []
    total = len(specs) * len(seeds)
    headline = headline_metric(data.task)
    for seed in seeds:
        for spec in specs:
            started = time.perf_counter()
            result, computed = store.run(
                run_id(spec.label, seed),
                {**spec.to_dict(), "seed": int(seed)},
                lambda folder, spec=spec, seed=seed: train_and_evaluate(
                    data, spec, seed, budget, folder, cache_dir=str(out / "cache")
                ),
            )
            done = len(rows) + 1
            how = f"{time.perf_counter() - started:.0f} s" if computed else "done before, reused"
            log(f"[{done}/{total}] {spec.label} seed {seed}: {headline} {result[headline]:.4f} ({how})")
            rows.append(_result_row(result, spec, seed, budget))
            per_class = pd.DataFrame(result["per_class"]).rename(columns={"score": SCORE_NAME[data.task]})
            per_class.insert(0, "seed", seed)
            per_class.insert(0, "loss", spec.label)
            per_class_rows.append(per_class)
    return pd.DataFrame(rows), pd.concat(per_class_rows, ignore_index=True)


def _result_row(result: dict[str, Any], spec: LossSpec, seed: int, budget: Budget) -> dict[str, Any]:
    row = {
        "loss": spec.label,
        "loss_name": spec.loss,
        "params": json.dumps(dict(spec.params), sort_keys=True),
        "seed": int(seed),
        "budget": budget.name,
    }
    row.update({k: v for k, v in result.items() if k not in ("per_class", "spec", "run_id")})
    return row


def write_loss_report(
    out_dir: str | os.PathLike,
    results: pd.DataFrame,
    per_class: pd.DataFrame,
    *,
    task: str,
    data: BenchData,
    budget: Budget,
    command: str = "",
) -> str:
    """Write results.csv, per_class.csv, summary.csv, summary.md and the two figures.

    Returns:
        The markdown of summary.md.
    """
    from ral.report import markdown_table, plot_heatmap, plot_metric_bars, write_csv, write_text

    out = Path(out_dir)
    metrics = metric_names(task)
    write_csv(results, out / "results.csv")
    write_csv(per_class, out / "per_class.csv")
    summary = summarize(results, [*metrics, "seconds_per_epoch"])
    write_csv(summary, out / "summary.csv")
    table = mean_std_table(summary, [*metrics, "seconds_per_epoch"], digits=[3] * len(metrics) + [1], best=metrics)
    plot_metric_bars(
        summary[["loss", *[f"{m}_{s}" for m in metrics for s in ("mean", "std")]]],
        out / "metrics.png",
        metrics=list(metrics),
        title=f"Test metrics, mean over seeds (error bars: sample std), budget {budget.name}",
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
        out / "per_class.png",
        title=f"Per-class test {score}, mean over seeds (columns: training count, most frequent first)",
        fmt=".2f",
        sort_cols_by=counts.to_numpy(dtype=float),
        colorbar_label=score,
    )

    text = (
        f"# Loss comparison ({task}, budget `{budget.name}`)\n\n"
        + (f"Command: `{command}`\n\n" if command else "")
        + f"Data: {data.description}.\n\n"
        f"Every run: backbone `{budget.backbone}`, {budget.epochs} epochs, batch {budget.batch_size}, "
        f"AdamW lr {budget.lr:g} with cosine decay, {budget.image_size} px; the checkpoint of the best "
        "validation epoch is evaluated on the test table (multi-label F1 thresholds tuned on validation).\n"
        "Cells: mean ± sample standard deviation over seeds (`seeds` = number of runs); best mean in bold. "
        "`seconds_per_epoch` is the training loop's wall time per epoch on a shared machine (noisy).\n\n"
        + markdown_table(table)
        + "\n"
        + _paired_section(results, headline_metric(task), task)
        + _loss_notes(results)
        + "\n"
        "Figures: `metrics.png` (means with std error bars), `per_class.png` (per-class test "
        f"{score}, mean over seeds). Raw rows: `results.csv`, `per_class.csv`.\n"
    )
    write_text(text, out / "summary.md")
    return text


def _paired_section(results: pd.DataFrame, metric: str, task: str) -> str:
    """Markdown: the RAL row minus every other loss on ``metric``, seed by seed (same seed = same
    initialisation and batch order), or "" when RAL is not in the results."""
    from ral.report import markdown_table

    reference = "ral" if task == "multilabel" else "ral_single"
    if reference not in set(results["loss"]) or results["loss"].nunique() < 2:
        return ""
    diffs = paired_differences(results, metric, reference)
    for column in ("mean_diff", "min_diff", "max_diff"):
        diffs[column] = diffs[column].map(lambda v: f"{v:+.4f}")
    diffs = diffs.rename(columns={"wins": f"seeds where {reference} is higher"})
    return (
        f"Paired by seed: `{reference}` {metric} minus each other loss's {metric} on the same seed.\n\n"
        + markdown_table(diffs)
        + "\n"
    )


def _loss_notes(results: pd.DataFrame) -> str:
    """One line per loss with its registry name and parameters."""
    seen = results.drop_duplicates("loss")
    lines = ["Losses (registry name and parameters; `{}` = the class defaults):", ""]
    for row in seen.itertuples(index=False):
        note = ""
        if row.loss == "ral":
            same = " = the paper preset" if _default_is_paper() else ""
            note = f" (the project's default `RobustAsymmetricLoss()`{same})"
        lines.append(f"- `{row.loss}`: `{row.loss_name}` `{row.params}`{note}")
    return "\n".join(lines) + "\n"


def prepare_data(
    out_dir: str | os.PathLike,
    budget: Budget,
    *,
    data: str | os.PathLike | None = None,
    simulate: bool = False,
    task: str | None = None,
    val_data: str | os.PathLike | None = None,
    test_data: str | os.PathLike | None = None,
    format: str | None = None,
    root: str | os.PathLike | None = None,
) -> BenchData:
    """The benchmark's tables: simulated into ``<out_dir>/data`` or the user's (split if needed).

    Raises:
        ValueError: neither or both of ``data`` / ``simulate``; ``task`` contradicting the data.
    """
    if (data is None) == (not simulate):
        raise ValueError("give exactly one of --data TABLE or --simulate")
    if task is not None and task not in ("multilabel", "single"):
        raise ValueError(f"--task must be 'multilabel' or 'single', got {task!r}")
    folder = Path(out_dir) / "data"
    if simulate:
        return simulated_data(folder, budget, task=task or "multilabel")
    tables = user_data(data, folder, val_data=val_data, test_data=test_data, format=format, root=root)
    if task is not None and task != tables.task:
        raise ValueError(f"--task {task!r} but {data} is a {tables.task} table")
    return tables


def known_settings(benchmark: str, budget: Budget, data_args: dict[str, Any]) -> dict[str, Any]:
    """The settings of a benchmark known before its data is prepared (see
    :func:`ral.bench.runner.open_bench_folder`): its name, the budget, the simulated task."""
    settings: dict[str, Any] = {"benchmark": benchmark, "budget": budget.__dict__}
    if data_args.get("simulate"):
        settings["data"] = {"task": data_args.get("task") or "multilabel"}
    return settings


def benchmark_losses(
    out_dir: str | os.PathLike,
    budget: Budget,
    *,
    seeds: int | None = None,
    losses: Sequence[str] | None = None,
    command: str = "",
    overwrite: bool = False,
    log: Callable[[str], None] = print,
    **data_args: Any,
) -> str:
    """Prepare the data, run every (loss, seed) (resuming finished ones) and write the report.

    ``data_args`` go to :func:`prepare_data`. ``out_dir`` is checked first
    (:func:`ral.bench.runner.open_bench_folder`; ``overwrite`` discards an earlier benchmark).
    Returns the markdown summary.
    """
    n_seeds = budget.seeds if seeds is None else seeds
    if isinstance(n_seeds, bool) or not isinstance(n_seeds, int) or n_seeds < 1:
        raise ValueError(f"--seeds must be an integer >= 1, got {seeds!r}")
    open_bench_folder(out_dir, overwrite=overwrite, settings=known_settings("losses", budget, data_args))
    data = prepare_data(out_dir, budget, **data_args)
    specs = loss_specs(data.task, losses, budget)
    log(f"ral bench losses: {len(specs)} losses x {n_seeds} seeds, budget {budget.name}, {data.description}")
    results, per_class = run_losses(out_dir, data, specs, list(range(n_seeds)), budget, log=log)
    return write_loss_report(out_dir, results, per_class, task=data.task, data=data, budget=budget, command=command)
