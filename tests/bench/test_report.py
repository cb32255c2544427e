"""benchmarks/report.py: docs/results.md rebuilt from tiny bench folders, verdicts by the rules of claims.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from ral.bench.experiment import BenchData, get_budget
from ral.bench.runner import RunStore
from ral.metrics import metric_names

BUDGET = get_budget("quick").__dict__


def _loss_folder(folder: Path, task: str, means: dict[str, dict[str, float]], seeds: int = 3) -> None:
    """A loss-comparison folder whose runs have the given metric means (plus a small per-seed shift)."""
    data = BenchData(train="t", val="v", test="s", task=task, description=f"hand-made {task} runs")
    store = RunStore(folder, {"benchmark": "losses", "data": data.to_dict(), "budget": BUDGET})
    names = metric_names(task)
    for seed in range(seeds):
        for label, values in means.items():
            metrics = {name: values.get(name, 0.3) + 0.002 * seed * (1 + len(label) % 3) for name in names}
            result = {
                **metrics,
                "val_score": 0.3,
                "best_epoch": 1,
                "epochs": 1,
                "seconds_per_epoch": 1.0,
                "epoch_seconds": 1.2,
                "run_seconds": 3.0,
                "load_average": 1.0,
                "per_class": {"class": ["a", "b"], "count": [10, 2], "group": ["head", "tail"], "score": [0.6, 0.2]},
            }
            spec = {"label": label, "loss": label.split("_")[0], "params": {}, "seed": seed}
            store.run(f"{label}__seed{seed}", spec, lambda folder, result=result: result)


def _sensitivity_folder(folder: Path) -> None:
    datasets = [
        BenchData(train="t", val="v", test="s", task="multilabel", description=f"rate {r}", missing_rate=r)
        for r in (0.0, 0.5)
    ]
    settings = {"benchmark": "sensitivity", "data": [d.to_dict() for d in datasets], "budget": BUDGET}
    store = RunStore(folder, settings)
    for rate in (0.0, 0.5):
        for seed in range(3):
            for arm, loss, spread in (("asl", "asl", 0.1), ("asl_hill", "ral", 0.02), ("apl", "apl", 0.05)):
                for index, gamma in enumerate((2.0, 4.0, 6.0)):
                    value = 0.3 + spread * (index - 1) / 2 + 0.002 * seed * (1 + index)
                    spec = {"label": arm, "loss": loss, "params": {"gamma_neg": gamma}}
                    spec |= {"seed": seed, "missing_rate": rate}
                    store.run(
                        f"m{rate:g}__{arm}__{index}__seed{seed}",
                        spec,
                        lambda f, v=value: {"mAP": v, "run_seconds": 2.0, "per_class": {}},
                    )


#: (loss, search) -> (test gain of the best trial, validation std over trials)
TUNED = {("ral", 0): (0.002, 0.004), ("ral", 1): (0.004, 0.006), ("asl", 0): (0.02, 0.02), ("asl", 1): (0.01, 0.02)}
TUNED |= {("apl", 0): (0.01, 0.01), ("apl", 1): (0.012, 0.01)}


def _tune_folder(folder: Path) -> None:
    """A ral bench tune folder: results.csv, bench.json and three trials per study in study.db."""
    import optuna

    folder.mkdir(parents=True)
    data = BenchData(train="t", val="v", test="s", task="multilabel", description="hand-made tuning")
    (folder / "bench.json").write_text(json.dumps({"benchmark": "tune", "budget": BUDGET, "data": data.to_dict()}))
    storage, rows = f"sqlite:///{folder / 'study.db'}", []
    for (loss, search), (gain, std) in TUNED.items():
        study = optuna.create_study(study_name=f"{loss}-{search}", storage=storage, direction="maximize")
        for value in (0.30, 0.29, 0.30 + gain):
            distributions = {"gamma_neg": optuna.distributions.FloatDistribution(0.0, 8.0)}
            study.add_trial(
                optuna.trial.create_trial(params={"gamma_neg": 4.0}, distributions=distributions, value=value)
            )
        rows.append(
            {"loss": loss, "search": search, "trials": 3, "default_val": 0.3, "best_val": 0.3 + gain, "gain_val": gain}
            | {"default_test": 0.28, "best_test": 0.28 + gain, "gain_test": gain, "trials_to_near_best": 3}
            | {"val_std": std, "top_param": "gamma_neg", "top_importance": 1.0, "importance_gamma_neg": 1.0}
        )
    pd.DataFrame(rows).to_csv(folder / "results.csv", index=False)


def _timing_folders(runs: Path) -> None:
    (runs / "step").mkdir(parents=True)
    pd.DataFrame(
        {
            "loss": ["bce", "asl", "ral"],
            "median_ms": [100.0, 104.0, 100.5],
            "ratio_median": [1.0, 1.04, 1.004],
            "ratio_q25": [1.0, 1.02, 0.97],
            "ratio_q75": [1.0, 1.06, 1.03],
            "overhead_pct": [0.0, 4.0, 0.4],
        }
    ).to_csv(runs / "step" / "step_time_summary.csv", index=False)
    (runs / "step" / "step_time.md").write_text("Full training step...\n\nMachine: test machine; load average 0.1\n")
    (runs / "speed").mkdir()
    pd.DataFrame(
        {
            "shape": ["256x26", "256x26", "4096x1000", "4096x1000"],
            "loss": ["bce", "ral", "bce", "ral"],
            "median_ms": [0.07, 0.3, 10.0, 25.0],
            "ratio_to_bce": [1.0, 4.2, 1.0, 2.7],
            "ratio_q25": [1.0, 4.0, 1.0, 2.5],
            "ratio_q75": [1.0, 4.4, 1.0, 2.9],
            "peak_mib": [0.05, 0.25, 31.25, 31.25],
            "memory_ratio_to_bce": [1.0, 5.0, 1.0, 1.0],
            "first_call_s": [0.01, 1.5, 0.1, 1.5],
        }
    ).to_csv(runs / "speed" / "speed_summary.csv", index=False)
    breakdown = {"shape": ["256x26"], "part": ["RAL forward+backward"], "median_ms": [0.263]}
    pd.DataFrame(breakdown).to_csv(runs / "speed" / "breakdown.csv", index=False)
    (runs / "speed-1thread").mkdir()
    shutil.copy(runs / "speed" / "speed_summary.csv", runs / "speed-1thread" / "speed_summary.csv")
    (runs / "throughput").mkdir()
    (runs / "throughput" / "throughput.json").write_text(
        json.dumps({"pipeline_images_per_s": 980.0, "plain_images_per_s": 1000.0, "ratio": 0.98})
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Hand-made folders of every benchmark of the evidence but the fundus comparison and the smoke test."""
    runs = tmp_path_factory.mktemp("runs")
    _loss_folder(
        runs / "losses-multilabel-default",
        "multilabel",
        {
            "bce": {"mAP": 0.30, "tail_mAP": 0.10},
            "cb_focal": {"mAP": 0.38, "tail_mAP": 0.25, "head_mAP": 0.60},
            "ral": {"mAP": 0.40, "tail_mAP": 0.15, "head_mAP": 0.70, "medium_mAP": 0.40},
            "ral_cb": {"mAP": 0.40, "tail_mAP": 0.25, "head_mAP": 0.70, "medium_mAP": 0.40},
            "ral_prior": {"mAP": 0.39, "tail_mAP": 0.16},
        },
    )
    _loss_folder(
        runs / "losses-single-default",
        "single",
        {
            "ce": {"balanced_accuracy": 0.60},
            "logit_adjusted": {"balanced_accuracy": 0.72},
            "ral_single": {"balanced_accuracy": 0.65},
            "ral_la": {"balanced_accuracy": 0.71},
        },
    )
    (runs / "losses-single-default" / "command.txt").write_text("ral bench losses --simulate --task single\n")
    _sensitivity_folder(runs / "sensitivity-multilabel-grid")
    _tune_folder(runs / "tune-multilabel-grid")
    _timing_folders(runs)
    return runs


@pytest.fixture(scope="module")
def report(runs, scripts, tmp_path_factory):
    out = tmp_path_factory.mktemp("docs") / "results.md"
    other = out.parent / "img" / "results" / "old_figure.png"
    other.parent.mkdir(parents=True)
    other.write_bytes(b"png")  # not the report's: drawn beside only with --overwrite, and kept
    assert scripts.report.main(["--runs", str(runs), "--out", str(out), "--overwrite"]) == 0
    return out


def test_every_claim_gets_a_verdict_by_its_rule(report):
    text = report.read_text()
    glance = text.split("## How to reproduce")[0]
    # claim 1: ral is higher than every peer on every seed -> shown; single: logit_adjusted is higher
    assert "Claim 1, Multi-label" in glance and "**Verdict: shown** — `ral` is higher than every peer on mAP" in glance
    assert "**Verdict: not supported** — `logit_adjusted`" in glance
    assert "Claim 1, Single-label (simulated fundus, 5 APTOS 2019 grades) | not run" in glance
    # claim 2: asl -> asl_hill narrows the spread on both rates; apl has no Hill partner here
    assert "| Claim 2 | **shown** on every dataset and matched pair |" in glance
    assert "Claim 3 | supported: no measurable overhead" in glance
    assert "time at 4096x1000: 2.70 x BCE, target <= 1.3 x: **not met**" in text
    # the one-thread table is shown for reference: the targets are set for torch's default threads
    assert "- time at 4096x1000: 2.70 x BCE\n" in text and text.count("target <= 1.3 x") == 2  # section + glance
    assert "ratio 0.980, target >= 0.95: **met**" in text
    assert "| 256x26 | RAL forward+backward | 0.263 |" in text
    assert "| Smoke test | not run |" in glance
    assert "| Claim 2, tuning gain | **shown**: RAL's test gain and validation std over trials" in glance


def test_the_tuning_section_comes_from_the_studies(report, scripts):
    text = report.read_text().split("### The gain that tuning buys")[1].split("## Claim 3")[0]
    assert "    ral bench tune --simulate\n" in text and "18 trials from " in text
    assert "| ral | 2 | 0.3000 | 0.3030 | +0.0030 [" in text  # mean gain of 0.002 and 0.004, t interval
    assert "(img/results/tune_history.png)" in text and (report.parent / "img/results/tune_history.png").stat().st_size
    results = pd.DataFrame(
        [{"loss": loss, "gain_test": gain, "val_std": std} for (loss, _), (gain, std) in TUNED.items()]
    )
    verdict = scripts.report_tune.tuning_verdict
    assert verdict(results).startswith("**shown**")
    results.loc[results["loss"] == "ral", "val_std"] = 0.05
    assert verdict(results) == "**partly shown**: only RAL's test gain is smaller than ASL's and APL's"
    results.loc[results["loss"] == "ral", "gain_test"] = 0.05
    assert verdict(results).startswith("**not shown**")
    assert verdict(results[results["loss"] != "apl"]).startswith("**not tested**")


def test_the_report_shows_where_ral_does_not_win_and_the_variants(report):
    text = report.read_text()
    assert "tail_mAP: higher by their interval: `cb_focal`" in text
    assert "`ral_cb` reaches (interval holds 0) `cb_focal` on tail_mAP" in text
    assert "- Answer: **yes** — `ral_prior` is higher than `ral` on tail_mAP" in text
    assert "**Start with `ral`** for multilabel data" in text
    assert "**Start with `ral_la`** for single data" in text


def test_commands_tables_and_figures_come_from_the_folders(report):
    text = report.read_text()
    assert "    ral bench losses --simulate\n" in text and "    ral bench sensitivity --simulate\n" in text
    assert "Not run yet. Make it with:\n\n    ral bench losses --simulate --task fundus" in text
    assert "| ral | 3 | **0.402 ± 0.002**" in text  # mean of 0.400, 0.402, 0.404
    assert "Missing rate 0.5 (share of training positives hidden)" in text
    assert "Machine: test machine" in text
    figures = report.parent / "img" / "results"
    drawn = sorted(p.name for p in figures.iterdir())
    assert "losses-multilabel_metrics.png" in drawn and "sensitivity_range.png" in drawn
    assert "old_figure.png" in drawn  # a file the report did not write is left in place
    for name in drawn:
        assert f"(img/results/{name})" in text or name in ("old_figure.png", ".report-manifest.json")
    # the arithmetic of the evidence budget comes from the code
    assert "| `ral bench sensitivity --simulate` (x 2 shards) |" in text and "Total: about" in text


def _refused(scripts, capsys, *args: str) -> str:
    """The one line ``report.py ARGS`` exits 2 with."""
    with pytest.raises(SystemExit) as exit_info:
        scripts.report.main(list(args))
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1, err
    return err


def test_bad_arguments_are_refused_in_one_line_and_other_files_kept(runs, scripts, tmp_path, capsys):
    out = str(tmp_path / "r.md")
    assert "--runs" in _refused(scripts, capsys, "--runs", str(tmp_path / "missing"), "--out", out)
    (tmp_path / "empty").mkdir()
    assert "holds none of the benchmark folders" in _refused(scripts, capsys, "--runs", str(tmp_path / "empty"))
    mine = tmp_path / "notes.md"
    mine.write_text("mine")
    assert "--overwrite" in _refused(scripts, capsys, "--runs", str(runs), "--out", str(mine))
    assert mine.read_text() == "mine" and not (tmp_path / "img").exists()
    assert Path(__file__).resolve().parents[2] / "docs" / "results.md" == scripts.report.RESULTS  # its own file


def test_the_report_deletes_only_the_figures_it_wrote(scripts, tmp_path):
    figures = tmp_path / "img"
    figures.mkdir()
    (figures / "mine.png").write_bytes(b"mine")
    first = scripts.report_files.Images(figures, tmp_path / "r.md")
    for name in ("a.png", "b.png"):
        first.path(name).write_bytes(b"drawn")
    assert first.finish() == ["mine.png"]
    again = scripts.report_files.Images(figures, tmp_path / "r.md")
    again.path("a.png").write_bytes(b"drawn again")
    assert scripts.report_files.written_figures(figures) == {"a.png", "b.png"}  # owned as soon as drawn
    assert again.finish() == ["mine.png"]
    assert sorted(p.name for p in figures.iterdir()) == [".report-manifest.json", "a.png", "mine.png"]
    assert scripts.report_files.written_figures(figures) == {"a.png"}


def test_a_figure_folder_with_other_files_needs_overwrite(runs, scripts, tmp_path, capsys):
    out = tmp_path / "r.md"
    out.write_text(scripts.report.HEADER + "an earlier report\n")  # the report's own: replaced
    (tmp_path / "img" / "results").mkdir(parents=True)
    (tmp_path / "img" / "results" / "mine.png").write_bytes(b"mine")
    err = _refused(scripts, capsys, "--runs", str(runs), "--out", str(out))
    assert f"--img {tmp_path / 'img' / 'results'}: the folder holds files this report did not write (mine.png)" in err


def test_the_repository_figures_are_the_reports_own(scripts):
    figures = scripts.report.RESULTS.parent / "img" / "results"
    assert scripts.report_files.others_files(figures) == []  # make bench-report may redraw them without --overwrite


@pytest.mark.slow
def test_quick_runs_twice_are_identical_and_the_report_says_so(tmp_path, scripts):
    from ral.bench.experiment import budget_with
    from ral.bench.losses import benchmark_losses

    runs = tmp_path / "runs"
    budget = budget_with(get_budget("quick"), image_size=16)
    for name in ("losses-multilabel-quick", "losses-multilabel-quick-again"):
        benchmark_losses(runs / name, budget, losses=["bce", "ral"], simulate=True)
    first = pd.read_csv(runs / "losses-multilabel-quick" / "results.csv")
    again = pd.read_csv(runs / "losses-multilabel-quick-again" / "results.csv")
    columns = list(metric_names("multilabel"))
    pd.testing.assert_frame_equal(first[columns], again[columns])
    out = tmp_path / "results.md"
    assert scripts.report.main(["--runs", str(runs), "--out", str(out)]) == 0
    assert "| Smoke test | exactly reproducible (a second run gave identical metrics) |" in out.read_text()


def test_evidence_plan_fits_the_budget(scripts):
    plan = scripts.evidence_plan
    steps = {step.folder: step for step in plan.evidence_plan()}
    assert steps["losses-multilabel-default"].runs == 14 * get_budget("default").seeds
    assert steps["sensitivity-multilabel-grid"].runs == 4 * 9 * get_budget("grid").seeds * 4
    assert plan.SHARDS == 2 and all(
        s.sharded for s in steps.values() if s.runs > 20 and not s.folder.startswith("tune")
    )
    assert steps["tune-multilabel-grid"].runs == 5 * 2 * 24 and not steps["tune-multilabel-grid"].sharded
    hours = sum(step.seconds for step in steps.values()) / 3600
    assert 3.0 < hours < 4.3


def test_a_help_question_needs_a_gain_beyond_the_interval(scripts):
    claims = scripts.claims
    comparison = claims.Comparison("ral_prior", "ral", ("tail_mAP",), (("help", ("tail_mAP",), "help?"),))
    for verdict, word in (("higher", "yes"), ("level", "no"), ("lower", "no")):
        frame = pd.DataFrame({"metric": ["tail_mAP"], "verdict": [verdict]})
        assert claims._answer(pd.DataFrame(), comparison, "help", ("tail_mAP",), frame).startswith(
            f"- Answer: **{word}**"
        )


def test_the_rule_for_changing_a_default(scripts):
    frame = pd.DataFrame(
        {
            "loss": ["new"] * 3 + ["old"] * 3,
            "seed": [0, 1, 2] * 2,
            "mAP": [0.50, 0.52, 0.51, 0.40, 0.41, 0.42],
        }
    )
    rule = scripts.claims.beats_default(frame, "new", "old", "mAP")
    assert rule["wins"] == rule["pairs"] == 3 and rule["beats"]
    assert rule["gain"] == pytest.approx(0.1) and rule["bar"] == pytest.approx(2 * 0.01)
    frame.loc[2, "mAP"] = 0.41  # one seed level: not higher on every seed
    assert not scripts.claims.beats_default(frame, "new", "old", "mAP")["beats"]
