"""`ral bench throughput`: the pipeline stepped from the timing harness, the plain loop, the figures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ral.bench.throughput import StepGate, ThroughputConfig, run_throughput


def test_a_short_measurement_writes_the_figures(tmp_path, tiny_tables):
    # the images it simulates are the tiny set's (same settings): a copy is reused, not simulated again
    shutil.copytree(Path(tiny_tables.train).parent, tmp_path / "data" / "cxr-16px-200")
    config = ThroughputConfig(backbone="tiny", image_size=16, batch_size=8, rounds=2, steps=2, warmup=1)
    command = "ral bench throughput --backbone tiny"
    _, text = run_throughput(config, tmp_path / "out", data_dir=tmp_path / "data", command=command)
    result = json.loads((tmp_path / "out" / "throughput.json").read_text())
    for key in ("pipeline_images_per_s", "plain_images_per_s", "ratio", "loss_share"):
        assert result[key] > 0, key
    assert result["pipeline_images_per_s"] == pytest.approx(8 / (result["pipeline_ms_per_step"] / 1e3))
    assert result["settings"]["backbone"] == "tiny" and result["loader"]["num_workers"] == 0
    assert "ral bench throughput --backbone tiny" in result["command"] and "load average" in result["machine"]
    assert len(result["load_average_before"].split()) == 3
    for name in ("throughput.csv", "throughput_summary.csv", "throughput.md"):
        assert (tmp_path / "out" / name).is_file(), name
    assert "throughput ratio pipeline / plain" in text and "loss alone (ral)" in text
    # the pipeline ran as `ral train` runs: one epoch stopped after the timing, its checkpoint written
    assert (tmp_path / "out" / "run" / "checkpoints" / "last.ckpt").is_file()
    rounds = (tmp_path / "out" / "throughput.csv").read_text().splitlines()
    assert len(rounds) == 1 + 2 * 3  # every round times pipeline, plain and loss
    with pytest.raises(FileExistsError, match="--overwrite"):
        run_throughput(ThroughputConfig(backbone="tiny"), tmp_path / "out", data_dir=tmp_path / "data")


def test_the_gate_reports_a_failed_or_finished_run():
    gate = StepGate()
    with pytest.raises(RuntimeError, match="the training run of the pipeline failed: division by zero"):
        gate.start(lambda: 1 / 0)
    with pytest.raises(RuntimeError, match="epoch ended before the timing did"):
        StepGate().start(lambda: None)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"rounds": 0}, r"rounds\n  Input should be greater than or equal to 1"),
        ({"precision": "16-true"}, r"precision\n  Input should be '32', '16-mixed' or 'bf16-mixed'"),
        ({"num_workers": -1}, r"num_workers\n  Input should be greater than or equal to 0"),
    ],
)
def test_bad_settings_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        ThroughputConfig(**change)
