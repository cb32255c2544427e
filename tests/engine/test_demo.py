"""``python -m ral.demo`` on the tiny set (the real demo simulates 18,000 images: see docs/usage.md)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ral import demo


def test_demo_trains_evaluates_and_summarises(tiny_data, tmp_path, monkeypatch, capsys):
    data_dir = tiny_data["train"].parent
    monkeypatch.setattr(demo, "ensure_dataset", lambda path, seed=0: path)
    args = ["--out", str(tmp_path / "demo"), "--data-dir", str(data_dir), "--epochs", "1", "--n-boot", "20"]
    assert demo.main(args) == 0
    out = capsys.readouterr().out
    summary = pd.read_csv(tmp_path / "demo" / "summary.csv")
    assert summary["loss"].tolist() == ["bce", "asl", "ral"]
    for loss in ("bce", "asl", "ral"):
        metrics = json.loads((tmp_path / "demo" / loss / "eval" / "metrics.json").read_text())
        assert summary.set_index("loss").loc[loss, "mAP"] == pytest.approx(metrics["mAP"])
        assert (tmp_path / "demo" / loss / "eval" / "ap_vs_frequency.png").is_file()
        assert (tmp_path / "demo" / loss / "eval" / "report.html").is_file()
    assert "| loss | mAP |" in out and (tmp_path / "demo" / "summary.md").read_text().count("\n| ") >= 4
    assert (tmp_path / "demo" / "metrics.png").is_file()
    assert "| asl - bce |" in out and "| ral - asl |" in out  # paired differences with their intervals

    assert demo.main([*args, "--losses", "bce", "ral"]) == 0  # a second call reuses the finished runs
    assert capsys.readouterr().out.count("finished run found, reusing it") == 2
    assert demo.main([*args[:-4], "--epochs", "2", "--n-boot", "20"]) == 2  # other settings: refused


def test_ensure_dataset_delegates_to_ensure_simulated(tmp_path, monkeypatch, capsys):
    from ral.data import simulate

    calls = []

    def fake(path, *, seed, log, **settings):
        calls.append((path, seed, settings))
        log("reused")

    monkeypatch.setattr(simulate, "ensure_simulated", fake)
    assert demo.ensure_dataset(tmp_path, seed=3) == tmp_path
    assert calls == [(tmp_path, 3, demo.DEMO_DATA)]
    assert "[demo] reused" in capsys.readouterr().out
