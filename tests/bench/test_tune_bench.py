"""``ral bench tune``: the report of the tuning gains (fast, from a results table) and a tiny real run (slow)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ral.bench.tune import trials_to_near_best, tune_summary
from ral.cli import main


def test_trials_to_near_best_counts_in_run_order() -> None:
    assert trials_to_near_best([0.50, 0.52, 0.601, 0.60, 0.605]) == 3
    assert trials_to_near_best([0.7, 0.5]) == 1


def test_summary_gives_gains_with_intervals_over_searches_and_importances() -> None:
    columns = "loss search default_val best_val gain_val default_test best_test gain_test trials_to_near_best val_std"
    rows = [
        ("ral", 0, 0.50, 0.51, 0.01, 0.40, 0.41, 0.01, 2, 0.004),
        ("ral", 1, 0.52, 0.53, 0.01, 0.41, 0.40, -0.01, 4, 0.005),
        ("asl", 0, 0.48, 0.53, 0.05, 0.39, 0.42, 0.03, 7, 0.02),
        ("asl", 1, 0.47, 0.50, 0.03, 0.38, 0.40, 0.02, 9, 0.03),
    ]
    results = pd.DataFrame(rows, columns=columns.split())
    results["top_importance"] = results["importance_gamma_neg"] = [0.4, 0.5, 0.8, 0.7]
    results["importance_tau"] = [0.3, 0.2, None, None]
    text = tune_summary(results, metric="mAP", trials=12, description="simulated", command="ral bench tune")
    assert "| ral | 2 | 0.5100 | 0.5200 | +0.0100 [+0.0100, +0.0100] |" in text
    assert "| asl | 2 | 0.4750 | 0.5150 | +0.0400 [-0.0871, +0.1671] |" in text
    assert "| ral | 0.45 | 0.25 |" in text and "Command: `ral bench tune`" in text


@pytest.mark.slow
def test_bench_tune_runs_resumes_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "bench"
    args = ["bench", "tune", "--simulate", "--quick", "--losses", "ral", "asl", "--trials", "2", "--searches", "2"]
    assert main([*args, "--out", str(out)]) == 0
    results = pd.read_csv(out / "results.csv")
    assert list(results["loss"]) == ["ral", "ral", "asl", "asl"] and (results["trials"] == 2).all()
    assert (results["best_val"] >= results["default_val"]).all()
    assert "| ral | 2 |" in (out / "summary.md").read_text()
    capsys.readouterr()
    assert main([*args, "--out", str(out), "--trials", "3"]) == 0  # resumed: one more trial per study
    assert (pd.read_csv(out / "results.csv")["trials"] == 3).all()
