"""``ral bench losses``: every loss, several seeds, one backbone and schedule.

Each (loss, seed) is one run of :func:`ral.bench.experiment.train_and_evaluate`, stored by a
:class:`~ral.bench.runner.RunStore`, so an interrupted benchmark resumes where it stopped, and
``--shard I/N`` splits the runs over N processes sharing the folder
(:mod:`ral.bench.parallel`). Once every run has finished, the process that finished last (or a
re-run without ``--shard``) writes into the benchmark folder::

    results.csv         one row per run (loss, seed, test metrics, seconds per epoch, ...)
    per_class.csv       per-class test AP (single-label: per-class accuracy) of every run
    summary.csv / .md   mean ± sample std over seeds per loss, paired differences against RAL
                        with t intervals
    metrics.png         bar chart of the means with std error bars
    per_class.png       heat map loss x class (mean over seeds), classes by training frequency
    command.txt         the command that wrote the summary (``--shard`` removed)
    report.html         the comparison page (``ral report`` rebuilds it)
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ral.bench.experiment import BenchData, Budget, LossSpec, known_settings, prepare_data, train_and_evaluate
from ral.bench.losses_report import SCORE_NAME, paired_markdown, plot_losses, summary_frame, summary_markdown
from ral.bench.parallel import DEFAULT_RUN, WHOLE, RunOptions, Shard, missing_message
from ral.bench.runner import Job, RunStore, open_bench_folder, run_jobs
from ral.data.table import Task
from ral.losses.ral import PRESETS as RAL_PRESETS
from ral.metrics import headline_metric

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
    # the two options decided by measurement: ral_cb's balance and RAL's prior correction
    LossSpec("ral_cb_both", "ral_cb", {"balance": "both"}),
    LossSpec("ral_prior", "ral", {"prior_tau": 1.0}),
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


def _default_is_paper() -> bool:
    """Whether ``RobustAsymmetricLoss()`` uses exactly the paper's constants."""
    from ral.losses import RobustAsymmetricLoss

    return RobustAsymmetricLoss().params == RobustAsymmetricLoss(**RAL_PAPER).params


def loss_specs(task: Task, names: Sequence[str] | None, budget: Budget) -> list[LossSpec]:
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


def store_settings(data: BenchData, budget: Budget) -> dict[str, Any]:
    """What a loss-comparison folder pins (``bench.json``): the data and the budget."""
    return {"benchmark": "losses", "data": data.to_dict(), "budget": budget.__dict__}


def loss_jobs(
    out_dir: str | os.PathLike, data: BenchData, specs: Sequence[LossSpec], seeds: Sequence[int], budget: Budget
) -> list[Job]:
    """Every (loss, seed) run, seed-major (all losses for seed 0, then seed 1, ...), so that an
    interrupted benchmark, or any one shard, already holds comparable rows for every loss."""
    cache = str(Path(out_dir) / "cache")
    return [
        Job(
            run_id(spec.label, seed),
            {**spec.to_dict(), "seed": int(seed)},
            lambda folder, spec=spec, seed=seed: train_and_evaluate(data, spec, seed, budget, folder, cache_dir=cache),
            f"{spec.label} seed {seed}",
            headline_metric(data.task),
        )
        for seed in seeds
        for spec in specs
    ]


def result_tables(results: Sequence[dict[str, Any]], task: Task, budget_name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(results, per_class)`` tables from stored run results (each holds its ``spec``), in the given order."""
    rows, per_class_rows = [], []
    for result in results:
        spec = result["spec"]
        row = {
            "loss": spec["label"],
            "loss_name": spec["loss"],
            "params": json.dumps(dict(spec["params"]), sort_keys=True),
            "seed": int(spec["seed"]),
            "budget": budget_name,
        }
        row.update({k: v for k, v in result.items() if k not in ("per_class", "spec", "run_id")})
        rows.append(row)
        per_class = pd.DataFrame(result["per_class"]).rename(columns={"score": SCORE_NAME[task]})
        per_class.insert(0, "seed", int(spec["seed"]))
        per_class.insert(0, "loss", spec["label"])
        per_class_rows.append(per_class)
    return pd.DataFrame(rows), pd.concat(per_class_rows, ignore_index=True)


def run_losses(
    out_dir: str | os.PathLike,
    data: BenchData,
    specs: Sequence[LossSpec],
    seeds: Sequence[int],
    budget: Budget,
    *,
    shard: Shard = WHOLE,
    log: Callable[[str], None] = print,
) -> tuple[pd.DataFrame, pd.DataFrame] | int:
    """Run (or reuse) this shard's (loss, seed) runs.

    Returns:
        ``(results, per_class)`` tables of every run of the benchmark once all have finished;
        otherwise the number of runs still missing (other shards', or being computed elsewhere).
    """
    store = RunStore(out_dir, store_settings(data, budget))
    done = run_jobs(store, loss_jobs(out_dir, data, specs, seeds, budget), shard, log=log)
    missing = sum(result is None for result in done)
    if missing:
        return missing
    return result_tables(done, data.task, budget.name)


def collect_losses(folder: str | os.PathLike) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame] | None:
    """Every finished run of a loss-comparison folder: ``(settings, results, per_class)``, losses in
    the order of the default lists (others after them, by run id), or None when the folder holds none."""
    from ral.report import to_jsonable

    finished = RunStore.finished(folder, "losses")
    if finished is None:
        return None
    settings, stored = finished
    order = {spec.label: i for i, spec in enumerate((*MULTILABEL_LOSSES, *SINGLE_LABEL_LOSSES))}
    stored.sort(key=lambda r: (int(r["spec"]["seed"]), order.get(r["spec"]["label"], len(order)), r["run_id"]))
    results, per_class = result_tables(stored, settings["data"]["task"], settings["budget"]["name"])
    labels = sorted(pd.unique(results["loss"]), key=lambda label: (order.get(label, len(order)), label))
    results = results.set_index("loss").loc[labels].reset_index()
    return to_jsonable(settings), results, per_class


def write_loss_report(
    out_dir: str | os.PathLike,
    results: pd.DataFrame,
    per_class: pd.DataFrame,
    *,
    task: Task,
    data: BenchData,
    budget: Budget,
    command: str = "",
) -> str:
    """Write results.csv, per_class.csv, summary.csv, summary.md, command.txt and the two figures;
    return summary.md's markdown."""
    from ral.report import write_csv, write_text
    from ral.report.html import write_bench_report

    out = Path(out_dir)
    write_csv(results, out / "results.csv")
    write_csv(per_class, out / "per_class.csv")
    write_csv(summary_frame(results, task), out / "summary.csv")
    plot_losses(results, per_class, task, out / "metrics.png", out / "per_class.png", budget_name=budget.name)
    text = (
        f"# Loss comparison ({task}, budget `{budget.name}`)\n\n"
        + (f"Command: `{command}`\n\n" if command else "")
        + f"Data: {data.description}.\n\n"
        + setup_text(budget)
        + summary_markdown(results, task)
        + "\n"
        + paired_markdown(results, task)
        + "\n"
        + loss_notes(results)
        + "\n"
        "Figures: `metrics.png` (means with std error bars), `per_class.png` (per-class test "
        f"{SCORE_NAME[task]}, mean over seeds). Raw rows: `results.csv`, `per_class.csv`.\n"
    )
    write_text(text, out / "summary.md")
    if command:
        write_text(command + "\n", out / "command.txt")
    write_bench_report(out)  # report.html: the comparison page (ral.report.html)
    return text


def setup_text(budget: Budget) -> str:
    """What every run of a loss comparison shares, and what the table's cells are."""
    return (
        f"Every run: backbone `{budget.backbone}`, {budget.epochs} epochs, batch {budget.batch_size}, "
        f"AdamW lr {budget.lr:g} with cosine decay, {budget.image_size} px; the checkpoint of the best "
        "validation epoch is evaluated on the test table (multi-label F1 thresholds tuned on validation).\n"
        "Cells: mean ± sample standard deviation over seeds (`seeds` = number of runs); best mean in bold. "
        "`seconds_per_epoch` is the training loop's wall time per epoch (noisy on a shared machine).\n\n"
    )


def loss_notes(results: pd.DataFrame) -> str:
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


def benchmark_losses(
    out_dir: str | os.PathLike,
    budget: Budget,
    *,
    seeds: int | None = None,
    losses: Sequence[str] | None = None,
    run: RunOptions = DEFAULT_RUN,
    **data_args: Any,
) -> str:
    """Prepare the data, run this shard's (loss, seed) runs (resuming finished ones) and, once every
    run of the benchmark has finished, write the report.

    ``data_args`` go to :func:`ral.bench.experiment.prepare_data`. ``out_dir`` is checked first
    (:func:`ral.bench.runner.open_bench_folder`; ``run.overwrite`` discards an earlier benchmark).
    Returns the markdown summary, or a line saying how many runs are still
    missing.
    """
    n_seeds = budget.seeds if seeds is None else seeds
    if isinstance(n_seeds, bool) or not isinstance(n_seeds, int) or n_seeds < 1:
        raise ValueError(f"--seeds must be an integer >= 1, got {seeds!r}")
    shard, command, log = run.shard, run.command, run.log
    open_bench_folder(out_dir, overwrite=run.overwrite, settings=known_settings("losses", budget, data_args))
    data = prepare_data(out_dir, budget, **data_args)
    specs = loss_specs(data.task, losses, budget)
    part = "" if shard.whole else f", shard {shard}"
    log(f"ral bench losses: {len(specs)} losses x {n_seeds} seeds, budget {budget.name}{part}, {data.description}")
    outcome = run_losses(out_dir, data, specs, list(range(n_seeds)), budget, shard=shard, log=log)
    if isinstance(outcome, int):
        return missing_message(outcome, len(specs) * n_seeds, shard, command)
    results, per_class = outcome
    return write_loss_report(out_dir, results, per_class, task=data.task, data=data, budget=budget, command=command)
