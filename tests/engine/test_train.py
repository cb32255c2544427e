"""End-to-end: train -> evaluate -> predict on tiny image sets; resume; checkpoints; CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from ral import cli
from ral.engine import config_from_checkpoint, evaluate, predict, train
from ral.engine.module import ClassifierModule

METRICS = ["mAP", "mAUC", "mF1", "head_mAP", "medium_mAP", "tail_mAP"]


def test_train_writes_checkpoints_logs_and_result(trained_run):
    out = trained_run["output_dir"]
    for name in ("config.yaml", "result.json", "logs/metrics.csv", "checkpoints/best.ckpt", "checkpoints/last.ckpt"):
        assert (Path(out) / name).is_file(), name
    assert trained_run["epochs_completed"] == 1 and trained_run["monitor"] == "val_mAP"
    assert set(METRICS) <= set(trained_run["val_metrics"])
    assert trained_run["train_seconds_per_epoch"] > 0
    assert json.loads((Path(out) / "result.json").read_text())["best_epoch"] == 1  # 1-based, as printed
    assert "train_seconds" in pd.read_csv(Path(out) / "logs" / "metrics.csv").columns


def test_checkpoint_is_weights_only_and_self_describing(classes, trained_run, tiny_data):
    from ral.data import load_table

    checkpoint = torch.load(trained_run["best_checkpoint"], weights_only=True)
    meta = checkpoint["ral"]
    train_table = load_table(tiny_data["train"])
    assert meta["class_names"] == classes
    assert meta["train_counts"] == train_table.class_counts().tolist()
    assert meta["num_train_images"] == 64 and meta["task"] == "multilabel" and meta["image_size"] == 16
    assert meta["config"]["loss"]["name"] == "bce" and isinstance(meta["config"], dict)
    assert config_from_checkpoint(meta).dataset.train == str(tiny_data["train"].resolve())
    assert any(key.startswith("model.") for key in checkpoint["state_dict"])


def test_evaluate_writes_metrics_tables_and_plots(classes, trained_run, tiny_data, tmp_path):
    report = evaluate(trained_run["best_checkpoint"], tiny_data["test"], out_dir=tmp_path, n_boot=50)
    stored = json.loads((tmp_path / "metrics.json").read_text())
    for name in METRICS:
        assert name in stored and name in stored["ci95"]
    assert 0 <= stored["mAP"] <= 1 and stored["n_images"] == 24
    low, high = stored["ci95"]["mAP"]
    assert low <= stored["mAP"] <= high
    assert stored["thresholds"].startswith("tuned on")  # the run's val table, by default
    per_class = pd.read_csv(tmp_path / "per_class.csv")
    assert {"class", "count", "group", "AP", "AUC", "F1", "threshold"} <= set(per_class.columns)
    assert per_class["class"].tolist() == classes
    for plot in ("ap_vs_frequency.png", "pr_tail.png"):
        assert (tmp_path / plot).stat().st_size > 1000
    assert report["mAP"] == pytest.approx(stored["mAP"])


def test_predict_writes_submission_layout(classes, trained_run, tiny_data, tmp_path):
    frame = predict(trained_run["best_checkpoint"], data=tiny_data["test"], out=tmp_path / "pred.csv")
    written = pd.read_csv(tmp_path / "pred.csv")
    assert written.columns.tolist() == ["id", *classes] and len(written) == 24
    assert np.all((written[classes] >= 0) & (written[classes] <= 1))
    images = [tiny_data["test"].parent / p for p in written["id"][:3]]
    by_file = predict(trained_run["best_checkpoint"], images=images, out=tmp_path / "files.csv")
    assert by_file["id"].tolist() == [p.stem for p in images]
    np.testing.assert_allclose(by_file[classes].to_numpy(), frame[classes].to_numpy()[:3], rtol=1e-6)
    with pytest.raises(ValueError, match="exactly one"):
        predict(trained_run["best_checkpoint"], out=tmp_path / "x.csv")
    unlabeled = tiny_data["test"].parent / "unlabeled.csv"
    written[["id"]].rename(columns={"id": "path"}).to_csv(unlabeled, index=False)  # no label columns
    by_list = predict(trained_run["best_checkpoint"], data=unlabeled, out=tmp_path / "list.csv")
    assert by_list["id"].tolist() == written["id"].tolist()
    np.testing.assert_allclose(by_list[classes].to_numpy(), frame[classes].to_numpy(), rtol=1e-6)


def test_run_without_validation_table(tiny_config, tiny_data, tmp_path):
    data = {"train": tiny_data["train"], "val": None, "test": tiny_data["test"]}
    result = train(tiny_config(data, tmp_path / "run", dataset={"val": None}))
    assert result["monitor"] is None and result["val_metrics"] == {}
    report = evaluate(result["best_checkpoint"], out_dir=tmp_path / "eval", n_boot=0)
    assert report["thresholds"].startswith("default 0.5") and "ci95" not in report
    assert report["data"] == str(tiny_data["test"].resolve())  # the run's dataset.test


def test_existing_run_needs_resume(tiny_config, trained_run, tiny_data):
    with pytest.raises(ValueError, match="--resume"):
        train(tiny_config(tiny_data, trained_run["output_dir"]))


def test_resume_warns_about_a_changed_config(tiny_config, tiny_data, tmp_path):
    train(tiny_config(tiny_data, tmp_path / "run"))
    with pytest.warns(UserWarning, match=r"\['optimizer.lr'\]"):
        again = train(tiny_config(tiny_data, tmp_path / "run", optimizer={"lr": 0.02}), resume=True)
    assert again["epochs_completed"] == 1  # already finished: nothing trained_run again


def _weights(path):
    return torch.load(path, weights_only=True)["state_dict"]


def test_resume_after_a_crash_matches_an_uninterrupted_run(tiny_config, tiny_data, tmp_path, monkeypatch):
    sections = {
        "train": {"epochs": 2},
        "model": {"options": {"width": 4, "depth": 2, "dropout": 0.3}},
        "dataset": {"augment": True},
        "schedule": {"warmup_epochs": 0.5},
    }
    straight = train(tiny_config(tiny_data, tmp_path / "straight", **sections))

    original = ClassifierModule.training_step

    def crash_in_second_epoch(self, batch, batch_idx):
        if self.current_epoch == 1 and batch_idx == 1:
            raise RuntimeError("simulated crash")
        return original(self, batch, batch_idx)

    monkeypatch.setattr(ClassifierModule, "training_step", crash_in_second_epoch)
    config = tiny_config(tiny_data, tmp_path / "resumed", **sections)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(config)
    monkeypatch.setattr(ClassifierModule, "training_step", original)
    resumed = train(config, resume=True)

    a, b = _weights(straight["last_checkpoint"]), _weights(resumed["last_checkpoint"])
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert _same(resumed["val_metrics"], straight["val_metrics"])
    assert len(resumed["history"]) == 2
    for row_a, row_b in zip(straight["history"], resumed["history"]):
        assert _same(
            {k: v for k, v in row_a.items() if k.startswith("val_")},
            {k: v for k, v in row_b.items() if k.startswith("val_")},
        )
    assert (tmp_path / "resumed" / "logs" / "metrics-part1.csv").is_file()  # log of the crashed part kept


def _same(a: dict, b: dict) -> bool:
    """Equal dicts of floats, NaN equal to NaN."""
    return a.keys() == b.keys() and all(a[k] == b[k] or (np.isnan(a[k]) and np.isnan(b[k])) for k in a)


def test_single_label_run(tiny_config, tiny_single_data, tmp_path):
    config = tiny_config(tiny_single_data, tmp_path / "run", loss={"name": "ce", "params": {}})
    result = train(config)
    assert result["task"] == "single" and result["monitor"] == "val_balanced_accuracy"
    report = evaluate(result["best_checkpoint"], tiny_single_data["val"], out_dir=tmp_path / "eval", n_boot=20)
    for name in ("accuracy", "balanced_accuracy", "macro_f1", "head_acc", "medium_acc", "tail_acc"):
        assert name in report and name in report["ci95"]
    per_class = pd.read_csv(tmp_path / "eval" / "per_class.csv")
    assert per_class["class"].tolist() == ["melanoma", "nevus", "vascular"]
    assert "recall" in per_class.columns


def test_early_stopping_and_mixed_precision(tiny_config, tiny_data, tmp_path):
    config = tiny_config(
        tiny_data,
        tmp_path / "run",
        optimizer={"lr": 1e-12},
        train={"epochs": 6, "early_stopping_patience": 1, "precision": "bf16-mixed", "accumulate_grad_batches": 2},
    )
    result = train(config)
    assert result["stopped_early"] and result["epochs_completed"] < 6


def test_cli_train_evaluate_predict(tiny_config, tiny_data, tmp_path, capsys):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(tiny_config(tiny_data, tmp_path / "cli-run")))
    assert cli.main(["train", "--config", str(path), "loss.name=asl", "train.epochs=1"]) == 0
    ckpt = str(tmp_path / "cli-run" / "checkpoints" / "best.ckpt")
    assert cli.main(["evaluate", "--checkpoint", ckpt, "--n-boot", "10", "--out", str(tmp_path / "ev")]) == 0
    assert "mAP" in capsys.readouterr().out
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["loss"] == "asl"
    assert (
        cli.main(["predict", "--checkpoint", ckpt, "--data", str(tiny_data["val"]), "--out", str(tmp_path / "p.csv")])
        == 0
    )
    assert len(pd.read_csv(tmp_path / "p.csv")) == 21
    assert cli.main(["train", "--config", str(path), "optimizer.lr=-3"]) == 2
    assert "optimizer.lr" in capsys.readouterr().err
