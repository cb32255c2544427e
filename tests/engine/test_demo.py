"""``python -m ral.demo`` on the tiny set (the real demo simulates 36,000 images: see docs/usage.md)."""

from __future__ import annotations

import functools
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
    assert "| loss | mAP |" in out and (tmp_path / "demo" / "summary.md").read_text().count("\n| ") >= 4
    assert (tmp_path / "demo" / "metrics.png").is_file()

    assert demo.main(args) == 0  # a second call reuses the finished runs
    assert capsys.readouterr().out.count("finished run found, reusing it") == 3
    assert demo.main([*args[:-4], "--epochs", "2", "--n-boot", "20"]) == 2  # other settings: refused


def test_ensure_dataset_skips_an_identical_simulation(tmp_path, monkeypatch):
    from ral.data import simulate

    real = simulate.simulate_dataset
    defaults = real.__kwdefaults__
    calls = []

    @functools.wraps(real)  # keeps the real signature (and defaults) visible to the demo
    def fake(path, **kwargs):
        calls.append(path)

    monkeypatch.setattr(simulate, "simulate_dataset", fake)
    info = {"generator": f"ral.data.simulate v{simulate.GENERATOR_VERSION}", "task": "multilabel", "seed": 0,
            "image_size": defaults["size"],
            "sizes": dict(zip(("train", "val", "test"), simulate.DEFAULT_SIZES["multilabel"])),
            "noise": {"missing_rate": defaults["missing_rate"]}}
    for split in ("train", "val", "test"):
        (tmp_path / f"{split}.csv").write_text("path\n")
    (tmp_path / "dataset.json").write_text(json.dumps(info))
    demo.ensure_dataset(tmp_path)
    assert calls == []
    (tmp_path / "dataset.json").write_text(json.dumps({**info, "seed": 1}))
    demo.ensure_dataset(tmp_path)
    assert calls == [tmp_path]
