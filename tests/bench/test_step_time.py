"""`ral bench step`: paired overhead arithmetic and a tiny interleaved measurement."""

from __future__ import annotations

import pandas as pd
import pytest

from ral.bench.step_time import StepTimeConfig, run_step_time, summarize_step_time


def test_paired_ratio_is_the_median_over_rounds():
    times = pd.DataFrame(
        {
            "round": [0, 0, 1, 1, 2, 2],
            "loss": ["bce", "ral", "bce", "ral", "bce", "ral"],
            "seconds_per_step": [0.010, 0.011, 0.020, 0.020, 0.010, 0.013],
        }
    )
    summary = summarize_step_time(times).set_index("loss")
    # paired ratios 1.1, 1.0, 1.3 -> median 1.1 (a slow round for both cancels out)
    assert summary.loc["ral", "ratio_median"] == pytest.approx(1.1)
    assert summary.loc["ral", "overhead_pct"] == pytest.approx(10.0)
    assert summary.loc["bce", "ratio_median"] == pytest.approx(1.0)
    assert summary.loc["ral", "median_ms"] == pytest.approx(13.0)
    with pytest.raises(ValueError, match="reference"):
        summarize_step_time(times, reference="asl")


def test_a_tiny_measurement_runs_every_loss_every_round_and_writes_its_record(tmp_path):
    config = StepTimeConfig(losses=("bce", "ral", "db"), batch_size=4, image_size=16, steps=1, rounds=3, warmup=1)
    summary, text = run_step_time(config, tmp_path)
    times = pd.read_csv(tmp_path / "step_time.csv")
    assert len(times) == 9 and (times["seconds_per_step"] > 0).all()
    assert list(times[times["round"] == 1]["loss"]) == ["db", "ral", "bce"]  # reversed every other round
    assert "time / bce" in text and list(summary["loss"]) == ["bce", "ral", "db"]
    assert list(pd.read_csv(tmp_path / "step_time_summary.csv")["loss"]) == ["bce", "ral", "db"]
    with pytest.raises(FileExistsError, match="--overwrite"):
        run_step_time(config, tmp_path)


def test_bad_settings():
    with pytest.raises(ValueError, match=r"losses\n.*at least 2 items"):  # a reference and a loss
        StepTimeConfig(losses=("bce",))
    with pytest.raises(ValueError, match="rounds"):
        StepTimeConfig(rounds=0)
