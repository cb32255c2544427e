"""ral export (ONNX / TorchScript / safetensors + model.json + model_card.md) and ral predict --model / --thresholds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ral.cli import main
from ral.engine import evaluate, predict
from ral.engine.export import export


@pytest.fixture
def evaluated_run(copied_run, tiny_data):
    """A copy of the trained run with an evaluate folder (thresholds tuned on val, bootstrap intervals)."""
    checkpoint = copied_run / "checkpoints" / "best.ckpt"
    report = evaluate(checkpoint, data=tiny_data["test"], n_boot=20, device="cpu")
    return checkpoint, report


def test_export_writes_a_description_and_card_with_classes_thresholds_input_training_data_and_metrics(
    evaluated_run, tmp_path, classes
):
    checkpoint, report = evaluated_run
    paths = export(checkpoint, format="torchscript", out=tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["model.json", "model.ts", "model_card.md"]
    description = json.loads(paths["description"].read_text())
    assert description["classes"] == classes and description["task"] == "multilabel"
    tuned = pd.read_csv(f"{report['out_dir']}/per_class.csv").set_index("class")["threshold"]
    assert description["thresholds"] == pytest.approx({c: tuned[c] for c in classes})
    assert description["input"] | {"normalize": None} == {
        "name": "pixels",
        "dtype": "float32",
        "shape": ["N", 1, 16, 16],
        "values": "pixels in [0, 255] (the image resized to a square, as ral reads it)",
        "image_size": 16,
        "image_channels": 1,
        "model_channels": 1,
        "normalize": None,
        "normalization_inside_model": True,
    }
    assert description["loss"]["name"] == "bce"
    train = pd.read_csv(description["training_data"]["train"])
    assert description["training_data"]["class_counts"] == {c: int((train[c] == 1).sum()) for c in classes}
    evaluation = description["evaluation"]
    assert evaluation["metrics"]["mAP"] == pytest.approx(report["mAP"])
    assert evaluation["ci95"]["mAP"] == pytest.approx(report["ci95"]["mAP"])
    assert set(description["validation"]) >= {"mAP", "mAUC"}
    assert {"python", "torch", "ral"} <= set(description["software"])
    card = paths["card"].read_text()
    assert f"| mAP | {report['mAP']:.4f} | {report['ci95']['mAP'][0]:.4f} - {report['ci95']['mAP'][1]:.4f} |" in card
    assert f"| 3 | Delta | {description['training_data']['class_counts']['Delta']} | " in card


def test_an_evaluation_of_another_checkpoint_is_not_reported(evaluated_run, tmp_path):
    checkpoint, report = evaluated_run
    last = checkpoint.with_name("last.ckpt")
    paths = export(last, format="safetensors", out=tmp_path / "last")
    description = json.loads(paths["description"].read_text())
    assert description["evaluation"] is None and description["thresholds"] is None
    assert description["validation"] is None  # result.json holds the best epoch's, not last.ckpt's
    with pytest.raises(ValueError, match=f"scored {checkpoint.resolve()}, not the checkpoint"):
        export(last, format="safetensors", out=tmp_path / "other", evaluation=report["out_dir"])


def test_export_refuses_to_replace_its_files_without_overwrite_and_keeps_other_files(trained_run, tmp_path, capsys):
    out = tmp_path / "model"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    args = ["export", "--checkpoint", trained_run["best_checkpoint"], "--format", "safetensors", "--out", str(out)]
    assert main(args) == 0
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "already holds ['model.safetensors', 'model.json', 'model_card.md']" in err and "--overwrite" in err
    assert main([*args, "--overwrite"]) == 0
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("format", ["onnx", "safetensors"])
def test_predict_with_an_exported_model_gives_the_checkpoints_probabilities(trained_run, tiny_data, tmp_path, format):
    if format == "onnx":
        pytest.importorskip("onnxruntime")
    export(trained_run["best_checkpoint"], format=format, out=tmp_path / "model")
    expected = predict(trained_run["best_checkpoint"], data=tiny_data["test"], device="cpu")
    got = predict(model=tmp_path / "model", data=tiny_data["test"])
    assert list(got.columns) == list(expected.columns) and list(got["id"]) == list(expected["id"])
    np.testing.assert_allclose(got.iloc[:, 1:].to_numpy(), expected.iloc[:, 1:].to_numpy(), atol=1e-4)


def test_predict_without_out_returns_the_table_and_thresholds_add_label_columns(trained_run, tiny_data, tmp_path):
    (tmp_path / "thresholds.csv").write_text("class,threshold\nAlpha,0.5\nBeta,0.0\nGamma,1.0\nDelta,0.25\n")
    frame = predict(trained_run["best_checkpoint"], data=tiny_data["test"], thresholds=tmp_path / "thresholds.csv")
    assert isinstance(frame, pd.DataFrame) and not list(tmp_path.glob("*.csv"))[1:]
    assert list(frame.columns[5:]) == ["Alpha_label", "Beta_label", "Gamma_label", "Delta_label"]
    np.testing.assert_array_equal(frame["Alpha_label"], (frame["Alpha"] >= 0.5).astype(int))
    assert frame["Beta_label"].eq(1).all() and frame["Gamma_label"].eq(0).all()


def test_predict_refuses_thresholds_missing_a_class_and_both_checkpoint_and_model(
    trained_run, tiny_data, tmp_path, capsys
):
    (tmp_path / "t.csv").write_text("class,threshold\nAlpha,0.5\n")
    base = ["predict", "--data", str(tiny_data["test"]), "--out", str(tmp_path / "p.csv")]
    assert main([*base, "--checkpoint", trained_run["best_checkpoint"], "--thresholds", str(tmp_path / "t.csv")]) == 2
    assert "has no threshold for class(es) ['Beta', 'Gamma', 'Delta']" in capsys.readouterr().err
    assert main([*base, "--checkpoint", trained_run["best_checkpoint"], "--model", str(tmp_path)]) == 2
    assert "exactly one" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.slow
@pytest.mark.parametrize("format", ["onnx", "torchscript"])
def test_export_then_predict_model_with_flip_tta_matches_the_checkpoint(trained_run, tiny_data, tmp_path, format):
    pytest.importorskip("onnxruntime")
    checkpoint, out = trained_run["best_checkpoint"], tmp_path / "model"
    assert main(["export", "--checkpoint", checkpoint, "--format", format, "--out", str(out)]) == 0
    args = ["predict", "--data", str(tiny_data["test"]), "--tta", "hflip"]
    assert main([*args, "--checkpoint", checkpoint, "--out", str(tmp_path / "ckpt.csv")]) == 0
    assert main([*args, "--model", str(out), "--out", str(tmp_path / "onnx.csv")]) == 0
    expected, got = pd.read_csv(tmp_path / "ckpt.csv"), pd.read_csv(tmp_path / "onnx.csv")
    assert list(got.columns) == list(expected.columns)
    np.testing.assert_allclose(got.iloc[:, 1:].to_numpy(), expected.iloc[:, 1:].to_numpy(), atol=1e-4)
