"""docs/results.md rebuilt from the bench output folders (``make bench-report``)::

    .venv/bin/python benchmarks/report.py --runs runs/bench --out docs/results.md

Every table is recomputed from the folders' runs (``runs/*/result.json`` of the training
benchmarks, the CSV / JSON records of the timing ones), every figure re-drawn into the image
folder (``--img``), and every verdict is a rule applied to the numbers (``claims.py`` and the
rules below), so the document cannot drift from the data. A benchmark whose folder is missing is
listed with the command that makes it.

It never destroys what it did not write: a ``--runs`` folder that is missing or holds no benchmark
is refused (one line, exit status 2); it owns docs/results.md, any other existing ``--out`` it did
not write is replaced only with ``--overwrite``; it deletes only figures it wrote (``report_files.py``), and
draws into a folder holding other files only with ``--overwrite`` (they are kept and listed).

Rules of the timing claims (paired ratios over interleaved rounds, ``ral.bench.timing``):

- *claim 3* (no extra training time): RAL's full training step costs no measurable extra time when
  the inter-quartile range of its paired time ratio to BCE holds 1 (or lies below it); it costs
  extra when the whole range lies above 1.
- *loss speed*: RAL's forward+backward <= 1.3 x BCE at 4096x1000 and <= 2.5 x at 256x26 (median
  paired ratio), peak memory <= 1.5 x BCE's; each target met or not.
- *throughput*: pipeline images/s >= 0.95 x the plain PyTorch loop's.
- *smoke test*: ``--quick`` twice (two folders) gives identical test metrics, digit for digit.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from claims import (
    CLAIM1_RULE,
    claim1_verdict,
    claim2_head,
    claim2_verdict,
    comparisons_markdown,
    dataset_verdict,
    recommendation,
)
from evidence_plan import QUICK_AGAIN, Step, evidence_plan, reproduce_markdown
from report_files import Images, check_outputs, is_report
from report_tune import tune_markdown

from ral.bench.experiment import Budget
from ral.bench.losses import collect_losses, loss_notes, setup_text
from ral.bench.losses_report import paired_markdown, plot_losses, summary_markdown
from ral.bench.sensitivity import MATCHED, collect_sensitivity
from ral.bench.sensitivity_report import matched_statistics, plot_sensitivity, sensitivity_markdown
from ral.bench.speed import speed_table
from ral.bench.step_time import step_table
from ral.data.table import Task
from ral.metrics import headline_metric, metric_names
from ral.report import markdown_table, write_text

#: The document this script owns: it may replace it without --overwrite.
RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results.md"
SPEED_TITLES = (
    "Torch's default threads, wall-clock time",
    "One thread, process CPU time, with the breakdown",
)
SPEED_TARGETS = (("4096x1000", 1.3), ("256x26", 2.5))
MEMORY_TARGET = 1.5
THROUGHPUT_TARGET = 0.95


@dataclass
class Part:
    """One section of the document and its one-line verdicts for the overview."""

    markdown: str
    verdicts: list[tuple[str, str]] = field(default_factory=list)  # (claim, verdict text)


def _command(folder: Path, step: Step) -> str:
    """The command block: the canonical command (with its shards) and the recorded one if it differs."""
    shards = "    # as 2 shards: add --shard 1/2 and --shard 2/2 (two processes)\n" if step.sharded else ""
    text = f"    {step.command}\n{shards}"
    recorded = folder / "command.txt"
    if recorded.is_file():
        line = recorded.read_text(encoding="utf-8").strip()
        if line and line.replace(" --overwrite", "") != step.command:  # --overwrite does not change results
            text += f"\nRecorded command of this folder: `{line}`\n"
    return text + "\n"


def _not_run(step: Step) -> str:
    return f"Not run yet. Make it with:\n\n    {step.command}\n\n"


def _timing_line(results: pd.DataFrame) -> str:
    seconds = pd.to_numeric(results["run_seconds"], errors="coerce")
    text = (
        f"{len(results)} runs; one run (train + evaluate) took {seconds.median():.0f} s median "
        f"({seconds.min():.0f}-{seconds.max():.0f} s)"
    )
    if "load_average" in results:
        load = pd.to_numeric(results["load_average"], errors="coerce")
        if load.notna().any():
            text += f"; load average at the end of a run: median {load.median():.1f}, max {load.max():.1f}"
    return text + ".\n\n"


def _losses_part(runs: Path, step: Step, title: str, images: Images) -> tuple[Part, Any]:
    """One task's loss comparison, and ``(task, results)`` for the variants' section (None when not run)."""
    folder = runs / step.folder
    got = collect_losses(folder)
    if got is None:
        return Part(f"### {title}\n\n" + _not_run(step), [(f"Claim 1, {title}", "not run")]), None
    settings, results, per_class = got
    task = settings["data"]["task"]
    budget = Budget(**settings["budget"])
    stem = step.folder.replace("-default", "")
    metrics_png, classes_png = f"{stem}_metrics.png", f"{stem}_per_class.png"
    plot_losses(results, per_class, task, images.path(metrics_png), images.path(classes_png), budget_name=budget.name)
    verdict = claim1_verdict(results, task)
    text = (
        f"### {title}\n\n"
        + _command(folder, step)
        + f"Output: `runs/bench/{step.folder}/`. Data: {settings['data']['description']}. "
        + _timing_line(results)
        + setup_text(budget)
        + summary_markdown(results, task)
        + "\n"
        + paired_markdown(results, task)
        + "\n"
        + verdict
        + "\n"
        + images.markdown(metrics_png, f"test metrics per loss, {title}")
        + "\n\n"
        + images.markdown(classes_png, f"per-class test score, {title}")
        + "\n\n"
        + loss_notes(results)
        + "\n"
    )
    return Part(text, [(f"Claim 1, {title}", verdict.strip().split("\n")[0])]), (task, results)


def _variants_part(tables: list[tuple[str, Any]]) -> Part:
    """The long-tail variants' comparisons and the loss to start with, from the loss tables of each task."""
    blocks, verdicts = [], []
    for title, got in tables:
        if got is None:
            continue
        task, results = got
        body = comparisons_markdown(results, task)
        advice = recommendation(results, task)
        if body or advice:
            blocks.append(f"### {title}\n\n{body}\n{advice}")
        if advice:
            verdicts.append((f"Loss to start with, {title}", advice.strip().split("\n")[0]))
    intro = (
        "The long-tail variants of RAL (`ral_cb`, class-balanced; `ral_la`, logit-adjusted; RAL's prior "
        "correction `prior_tau`) against the losses they borrow from, in the loss comparisons above (same runs). "
        "Each answer is the rule of `benchmarks/claims.py`: *reach* / *keep* / *help* by the paired 95% t interval, "
        "options by the project's rule for defaults (a candidate replaces the default only if it is higher on "
        "every seed and by a mean gain of at least twice the larger seed standard deviation).\n\n"
    )
    if not blocks:
        return Part(
            intro + "Not run yet: the loss comparisons above hold these rows.\n\n", [("Long-tail variants", "not run")]
        )
    return Part(intro + "\n".join(blocks) + "\n", verdicts)


def _sensitivity_part(runs: Path, step: Step, images: Images) -> Part:
    folder = runs / step.folder
    got = collect_sensitivity(folder)
    if got is None:
        return Part(_not_run(step), [("Claim 2", "not run")])
    settings, frame = got
    task = settings["data"][0]["task"]
    files = plot_sensitivity(frame, task, images.folder)
    images.record([*files["overview"], *files["arms"]])
    pictures = "\n\n".join(images.markdown(f, Path(f).stem) for f in files["overview"])
    arms = " ".join(images.markdown(f, Path(f).stem) for f in files["arms"])
    data = "\n".join(f"- {d['description']}" for d in settings["data"])
    budget = settings["budget"]
    text = (
        _command(folder, step)
        + f"Output: `runs/bench/{step.folder}/`. "
        + _timing_line(frame)
        + f"Data (one simulated set per missing rate):\n\n{data}\n\n"
        "The simulator keeps the observed training prevalence at CXR-LT's, so a higher missing rate means a "
        "higher clean prevalence in every split (more test positives): compare the arms within a rate, not the "
        "metric across rates.\n\n"
        f"Every grid point: backbone `{budget['backbone']}`, {budget['epochs']} epochs, {budget['image_size']} px, "
        f"seeds {', '.join(map(str, sorted(pd.unique(frame['seed']))))} (the same for every arm). Arms "
        "(`ral.bench.sensitivity.ARMS`): `asl` = ASL (gamma_pos 0) over gamma_neg x clip; `asl_hill` = RAL with "
        "eps_pos = () (ASL + the Hill weight) over gamma_neg x tau; `apl` = APL (the paper's eps_pos) over "
        "gamma_neg x clip; `ral` = RAL (APL + the Hill weight, lam 1.5) over gamma_neg x tau; ASL's and APL's "
        "clip is RAL's tau (the same probability margin).\n\n"
        + sensitivity_markdown(frame, task, pairs=MATCHED, level=3, notes=_rate_verdicts(frame, task))
        + "\n"
        + claim2_verdict(frame, task)
        + "\n"
        + pictures
        + f"\n\nHeat maps of each arm at missing rate {files['dataset']} (mean over seeds; each has its own colour "
        "scale: compare the numbers in the cells):\n\n" + arms + "\n\n"
    )
    return Part(text, [("Claim 2", claim2_head(matched_statistics(frame, headline_metric(task), MATCHED)))])


def _tune_part(runs: Path, step: Step, images: Images) -> Part:
    got = tune_markdown(runs / step.folder, images, step.command)
    text, verdict = got if got else (_not_run(step), "not run")
    return Part("### The gain that tuning buys (`ral bench tune`)\n\n" + text, [("Claim 2, tuning gain", verdict)])


def _rate_verdicts(frame: pd.DataFrame, task: Task) -> dict[str, str]:
    """The claim-2 verdict under the tables of each dataset with a matched comparison."""
    matched = matched_statistics(frame, headline_metric(task), MATCHED)
    datasets = list(dict.fromkeys(matched["dataset"])) if len(matched) else []
    return {d: f"\nVerdict at this rate: {dataset_verdict(matched, d)}.\n" for d in datasets}


def _machine(record: Path) -> str:
    """The "Machine: ..." line of a timing record, or ""."""
    if not record.is_file():
        return ""
    for line in record.read_text(encoding="utf-8").splitlines():
        if line.startswith("Machine:"):
            return line + "\n\n"
    return ""


def _step_part(runs: Path, step: Step) -> Part:
    folder = runs / step.folder
    path = folder / "step_time_summary.csv"
    if not path.is_file():
        return Part(_not_run(step), [("Claim 3", "not run")])
    summary = pd.read_csv(path)
    reference = str(summary["loss"].iloc[0])
    text = _command(folder, step) + _machine(folder / "step_time.md") + markdown_table(step_table(summary, reference))
    lines, verdict = [], "not tested (no `ral` row)"
    for row in summary.iloc[1:].itertuples(index=False):
        if row.ratio_q25 > 1:
            word = f"costs extra time (median {row.overhead_pct:+.1f}%, IQR above 1)"
        elif row.ratio_q75 < 1:
            word = f"is faster (median {row.overhead_pct:+.1f}%, IQR below 1)"
        else:
            word = f"no measurable overhead (median {row.overhead_pct:+.1f}%, IQR holds 1)"
        lines.append(f"- `{row.loss}`: {word}")
        if row.loss == "ral":
            verdict = "not supported: RAL " + word if row.ratio_q25 > 1 else "supported: " + word
    text += (
        f"\nPer loss against `{reference}` (rule: the inter-quartile range of the paired ratio):\n\n"
        + "\n".join(lines)
        + f"\n\n**Verdict on claim 3: {verdict}.** It concerns the step of this model: the loss alone is measured "
        "in the next section.\n\n"
    )
    return Part(text, [("Claim 3", verdict)])


def _speed_part(runs: Path, steps: list[Step]) -> Part:
    blocks, verdicts = [], []
    for index, (step, title) in enumerate(zip(steps, SPEED_TITLES)):
        judged = index == 0  # the targets are set for torch's default threads; one thread is for reference
        folder = runs / step.folder
        path = folder / "speed_summary.csv"
        if not path.is_file():
            blocks.append(f"### {title}\n\n" + _not_run(step))
            verdicts.append((f"Loss speed ({step.folder})", "not run"))
            continue
        summary = pd.read_csv(path)
        text = (
            f"### {title}\n\n"
            + _command(folder, step)
            + _machine(folder / "speed.md")
            + markdown_table(speed_table(summary))
        )
        # the targets are the compiled path's: `ral_compiled` (opt-in), `ral` in records made before the
        # eager formula became the default (2026-12-07)
        compiled = "ral_compiled" if (summary["loss"] == "ral_compiled").any() else "ral"
        ral = summary[summary["loss"] == compiled].set_index("shape")
        lines = []
        for shape, limit in SPEED_TARGETS:
            if shape in ral.index:
                ratio = float(ral.loc[shape, "ratio_to_bce"])
                target = f", target <= {limit} x: {_met(ratio <= limit)}" if judged else ""
                lines.append(f"time at {shape}: {ratio:.2f} x BCE{target}")
        if len(ral):
            worst = float(ral["memory_ratio_to_bce"].max())
            target = f", target <= {MEMORY_TARGET} x: {_met(worst <= MEMORY_TARGET)}" if judged else ""
            lines.append(f"peak memory: up to {worst:.2f} x BCE's{target}")
        heading = (
            f"Targets for the compiled RAL (`{compiled}`; the eager default: docs/losses.md)"
            if judged
            else f"The compiled RAL (`{compiled}`) for reference (targets: torch's default threads, above)"
        )
        text += f"\n{heading}:\n\n" + "\n".join(f"- {line}" for line in lines) + "\n\n"
        if (folder / "breakdown.csv").is_file():
            text += "Where the time goes (`--breakdown`, median ms):\n\n" + markdown_table(
                pd.read_csv(folder / "breakdown.csv"), floatfmt=".3f"
            )
            text += "\n"
        blocks.append(text)
        verdicts.append((f"Loss speed ({step.folder})", "; ".join(lines) or "no `ral` row"))
    return Part("\n".join(blocks), verdicts)


def _met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def _throughput_part(runs: Path, step: Step) -> Part:
    folder = runs / step.folder
    path = folder / "throughput.json"
    if not path.is_file():
        return Part(_not_run(step) + "GPU figures: not yet measured.\n\n", [("Throughput", "not run")])
    record = json.loads(path.read_text(encoding="utf-8"))
    scalars = {k: v for k, v in record.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
    shown = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in scalars.values()]
    table = pd.DataFrame({"field": list(scalars), "value": shown})
    ratio = record.get("ratio")
    verdict = (
        f"ratio {ratio:.3f}, target >= {THROUGHPUT_TARGET}: {_met(ratio >= THROUGHPUT_TARGET)}"
        if isinstance(ratio, (int, float))
        else "no ratio recorded"
    )
    text = _command(folder, step) + markdown_table(table) + f"\n{verdict}. GPU figures: not yet measured.\n\n"
    return Part(text, [("Throughput", verdict)])


def _quick_part(runs: Path, step: Step, again_step: Step) -> Part:
    folder = runs / step.folder
    got = collect_losses(folder)
    if got is None:
        return Part(_not_run(step), [("Smoke test", "not run")])
    settings, results, _ = got
    task = settings["data"]["task"]
    text = (
        _command(folder, step)
        + _timing_line(results)
        + "One epoch on 300 images does not rank losses: these numbers only show that the pipeline works and "
        "are the ones to compare a re-run with.\n\n" + summary_markdown(results, task)
    )
    again = collect_losses(runs / QUICK_AGAIN)
    if again is None:
        verdict = "reproducibility not checked"
        text += f"\nReproducibility: not checked; run `{again_step.command}` and rebuild the report.\n\n"
    else:
        metrics = list(metric_names(task))
        first = results.set_index(["loss", "seed"])[metrics].sort_index()
        second = again[1].set_index(["loss", "seed"])[metrics].sort_index()
        same = first.index.equals(second.index) and np.array_equal(first.to_numpy(), second.to_numpy(), equal_nan=True)
        verdict = (
            "exactly reproducible (a second run gave identical metrics)"
            if same
            else "NOT exactly reproducible (a second run gave other metrics)"
        )
        outcome = "identical" if same else "different"
        text += f"\nReproducibility: `{again_step.command}` gave {outcome} test metrics: **{verdict}**.\n\n"
    return Part(text, [("Smoke test", verdict)])


HEADER = """# Results

This file is generated by `make bench-report` (`benchmarks/report.py`) from the bench output
folders under `runs/bench/` (do not edit it by hand: edit the rules in `benchmarks/` and rebuild
it). Every table is recomputed from the folders' runs, every figure re-drawn, every verdict is a
rule written in the code and applied to the numbers; the command that made each table is written
beside it.

The paper behind `ral` claims that RAL (1) is at least as accurate as the peer losses on
long-tailed multi-label medical data, (2) is far less sensitive to its hyper-parameters thanks to
the Hill weight, and (3) costs no extra training time. The sections below test the three claims on
the embedded simulated datasets (`ral.data.simulate`: a CXR-LT-like multi-label chest set, an
ISIC-2018-like and an APTOS-2019-like single-label set).

"""


def _overview(parts: list[Part]) -> str:
    rows = [
        {"claim": claim, "verdict (rule in the code)": verdict} for part in parts for claim, verdict in part.verdicts
    ]
    return "## The claims at a glance\n\n" + markdown_table(pd.DataFrame(rows)) + "\n"


def write_results(
    runs_dir: str | os.PathLike, out: str | os.PathLike, *, img_dir: str | os.PathLike | None = None
) -> tuple[Path, list[str], list[str]]:
    """Rebuild the results document from the bench folders under ``runs_dir``.

    Args:
        runs_dir: the folder holding the benchmarks' output folders under their default names
            (:func:`evidence_plan.evidence_plan`).
        out: the markdown file to write (docs/results.md).
        img_dir: the figures' folder (default ``<out's folder>/img/results``).

    Returns:
        ``(path written, one line per claim with its verdict, files of the figures' folder that no
        report wrote, left in place)``.
    """
    runs, document = Path(runs_dir), Path(out)
    images = Images(Path(img_dir) if img_dir is not None else document.parent / "img" / "results", document)
    images.folder.mkdir(parents=True, exist_ok=True)
    steps = evidence_plan()
    by_folder = {step.folder: step for step in steps}
    tables, loss_parts = [], []
    for folder, title in (
        ("losses-multilabel-default", "Multi-label (simulated chest radiographs, 26 CXR-LT findings)"),
        ("losses-single-default", "Single-label (simulated dermoscopy, 7 ISIC 2018 classes)"),
        ("losses-fundus-default", "Single-label (simulated fundus, 5 APTOS 2019 grades)"),
    ):
        part, got = _losses_part(runs, by_folder[folder], title, images)
        loss_parts.append(part)
        tables.append((title, got))
    sections: list[tuple[str, list[Part]]] = [
        ("Claim 1: accuracy against the peer losses", [Part(CLAIM1_RULE), *loss_parts]),
        ("Long-tail variants of RAL", [_variants_part(tables)]),
        (
            "Claim 2: sensitivity to the hyper-parameters",
            [
                _sensitivity_part(runs, by_folder["sensitivity-multilabel-grid"], images),
                _tune_part(runs, by_folder["tune-multilabel-grid"], images),
            ],
        ),
        ("Claim 3: training time", [_step_part(runs, by_folder["step"])]),
        ("Loss speed: RAL against BCE", [_speed_part(runs, [by_folder["speed"], by_folder["speed-1thread"]])]),
        ("Throughput", [_throughput_part(runs, by_folder["throughput"])]),
        (
            "Smoke test: `ral bench losses --simulate --quick`",
            [_quick_part(runs, by_folder["losses-multilabel-quick"], by_folder[QUICK_AGAIN])],
        ),
    ]
    parts = [part for _, group in sections for part in group]
    body = "".join(f"## {title}\n\n" + "".join(p.markdown for p in group) for title, group in sections)
    text = HEADER + _overview(parts) + "\n" + reproduce_markdown(steps) + body
    path = write_text(text.rstrip("\n") + "\n", document)
    return path, [f"{claim}: {verdict}" for part in parts for claim, verdict in part.verdicts], images.finish()


def main(argv: list[str] | None = None) -> int:
    """The command line; exit status 2 with one line on bad arguments."""
    parser = argparse.ArgumentParser(description="Rebuild docs/results.md from the bench output folders.")
    parser.add_argument("--runs", default="runs/bench", help="folder of the bench output folders (default runs/bench)")
    parser.add_argument("--out", default=str(RESULTS), help="the document to write (default docs/results.md)")
    parser.add_argument("--img", help="folder for the figures (default: img/results/ beside --out)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out other than docs/results.md, and draw into an image folder holding other files",
    )
    args = parser.parse_args(argv)
    out, runs = Path(args.out), Path(args.runs)
    img = Path(args.img) if args.img else out.parent / "img" / "results"
    folders = sorted({step.folder for step in evidence_plan()})
    check_outputs(
        runs, folders, out, img, owned=out.resolve() == RESULTS or is_report(out, HEADER), overwrite=args.overwrite
    )
    path, verdicts, others = write_results(runs, out, img_dir=img)
    print("\n".join(verdicts))
    if others:
        print(f"not written by this report, left in place: {', '.join(others)}")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
