"""`ral bench step`: paired overhead arithmetic and a tiny interleaved measurement."""

from __future__ import annotations

import pandas as pd
import pytest

from ral.bench.step_time import StepTimeConfig, measure_step_time, summarize_step_time
from ral.cli import main


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


def test_interleaved_measurement_runs_every_loss_every_round():
    config = StepTimeConfig(losses=("bce", "ral", "db"), batch_size=4, image_size=16, steps=1, rounds=3, warmup=1)
    times = measure_step_time(config)
    assert len(times) == 9 and (times["seconds_per_step"] > 0).all()
    assert list(times[times["round"] == 1]["loss"]) == ["db", "ral", "bce"]  # reversed every other round


def test_bad_settings_and_cli(tmp_path, capsys):
    with pytest.raises(ValueError, match="reference"):
        StepTimeConfig(losses=("bce",))
    with pytest.raises(ValueError, match="rounds"):
        StepTimeConfig(rounds=0)
    code = main(
        [
            "bench",
            "step",
            "--batch-size",
            "4",
            "--image-size",
            "16",
            "--steps",
            "1",
            "--repeats",
            "2",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    assert "time / bce" in capsys.readouterr().out
    assert set(pd.read_csv(tmp_path / "step_time_summary.csv")["loss"]) == {"bce", "ral"}
