"""``ral tune`` refuses bad input in one line (exit 2) before it trains or opens a storage."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ral.cli import main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["dataset.val=null"], "dataset.val must be given"),
        (["tune.space={gama_neg: {low: 1, high: 2}}"], "'gama_neg' is no option of loss 'ral'"),
        (["--train.devices", "2"], "train.devices must be 1"),
        (["--storage", "study.txt"], "journal file"),
        (["--trials", "0"], "--trials, --grid-points and --heartbeat must be >= 1"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str], message: str) -> None:
    config = tmp_path / "tune.yaml"
    config.write_text(yaml.safe_dump({"dataset": {"train": "train.csv", "val": "val.csv"}}))
    trials = [] if "--trials" in args else ["--trials", "2"]
    status = main(["tune", "--config", str(config), "--out", str(tmp_path / "out"), *trials, *args])
    err = capsys.readouterr().err
    assert status == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "out" / "trials").exists()


def test_print_space(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = tmp_path / "tune.yaml"
    config.write_text(yaml.safe_dump({"dataset": {"train": "train.csv", "val": "val.csv"}, "loss": {"name": "asl"}}))
    space = "tune.space={clip: null, optimizer.lr: {low: 1.0e-4, high: 1.0e-2, log: true}}"
    assert main(["tune", "--config", str(config), "--print-space", space]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "gamma_pos: {low: 0.0, high: 2.0}",
        "gamma_neg: {low: 0.0, high: 8.0}",
        "optimizer.lr: {low: 0.0001, high: 0.01, log: true}",
    ]
