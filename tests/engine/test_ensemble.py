"""Winner-style inference: ensembles of checkpoints, flip TTA and study aggregation in `ral predict` /
`ral evaluate` (Python API and CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

from ral import cli
from ral.engine import evaluate, predict, train
from ral.engine.checkpoint import load_checkpoint
from ral.engine.ensemble import FlipAverage
from ral.metrics import metric_names, multilabel_metrics


def _edited_checkpoint(source: Path, target: Path, edit) -> Path:
    """A copy of the checkpoint ``source`` at ``target`` after ``edit(meta, state_dict)``."""
    checkpoint = load_checkpoint(source)
    edit(checkpoint["ral"], checkpoint["state_dict"])
    torch.save(checkpoint, target)
    return target


def _permute_classes(meta: dict, state: dict, order=(3, 1, 0, 2)) -> None:
    """The same model with its classes (names, training counts, groups, classifier rows) in ``order``."""
    order = list(order)
    for key in ("class_names", "train_counts", "groups"):
        meta[key] = [meta[key][i] for i in order]
    for key in ("model.classifier.weight", "model.classifier.bias"):
        state[key] = state[key][order]


@pytest.fixture(scope="module")
def runs(tiny_config, tiny_data, copy_trained_run, tmp_path_factory) -> dict[str, Path]:
    """Two tiny runs (the shared one; another seed, image size and width) and edited copies of the first."""
    base = tmp_path_factory.mktemp("ensemble")
    a = copy_trained_run(base) / "checkpoints" / "best.ckpt"
    other = {"image_size": 24}
    b = train(tiny_config(tiny_data, base / "b", seed=1, dataset=other, model={"options": {"width": 6, "depth": 2}}))

    def rename_delta(meta, state):
        meta["class_names"] = [c if c != "Delta" else "Omega" for c in meta["class_names"]]

    def single_label(meta, state):
        meta["task"] = "single"

    return {
        "a": a,
        "b": Path(b["best_checkpoint"]),
        "permuted": _edited_checkpoint(a, base / "permuted.ckpt", _permute_classes),
        "omega": _edited_checkpoint(a, base / "omega.ckpt", rename_delta),
        "single": _edited_checkpoint(a, base / "single.ckpt", single_label),
    }


@pytest.fixture(scope="module")
def study_tables(tiny_data) -> dict[str, Path]:
    """The tiny val / test tables with studies of three images (views PA, AP, LATERAL)."""
    out = {}
    for split in ("val", "test"):
        frame = pd.read_csv(tiny_data[split])
        frame.insert(1, "study_id", [f"s{i // 3}" for i in range(len(frame))])
        frame["subject_id"] = [f"p{i // 6}" for i in range(len(frame))]  # a study within one patient
        frame.insert(2, "view", [("PA", "AP", "LATERAL")[i % 3] for i in range(len(frame))])
        out[split] = tiny_data[split].with_name(f"{split}_studies.csv")
        frame.to_csv(out[split], index=False)
    return out


def _probs(frame: pd.DataFrame, classes: list[str]) -> np.ndarray:
    return frame[classes].to_numpy()


@pytest.mark.parametrize("task", ["multilabel", "single"])
def test_flip_average_gives_the_mean_probability_of_the_image_and_its_mirror(task):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 5 * 6, 3))
    with torch.no_grad():
        model[1].weight.mul_(40)  # logits far out in the tails: the log-space mean keeps its precision
    images = torch.randn(4, 2, 5, 6)
    wrapped = FlipAverage(model, task).eval()
    with torch.no_grad():
        out = wrapped(images).double()
        first, mirror = model(images).double(), model(images.flip(-1)).double()
    assert (first - mirror).abs().max() > 10  # the model is not symmetric
    if task == "multilabel":
        expected, got = (first.sigmoid() + mirror.sigmoid()) / 2, out.sigmoid()
        np.testing.assert_allclose((1 - got).numpy(), (1 - expected).numpy(), rtol=1e-4, atol=1e-30)
    else:
        expected, got = (first.softmax(1) + mirror.softmax(1)) / 2, out.softmax(1)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-4, atol=1e-30)
    with pytest.raises(ValueError, match="task must be 'multilabel' or 'single', got 'multi'"):
        FlipAverage(model, "multi")


def test_hflip_averages_each_image_with_its_horizontal_mirror(classes, runs, tiny_data, tmp_path):
    originals = sorted((tiny_data["test"].parent / "images").glob("test_*.png"))[:5]
    (tmp_path / "mirrored").mkdir()
    for path in originals:
        Image.open(path).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(tmp_path / "mirrored" / path.name)
    plain = predict(runs["a"], images=originals, out=tmp_path / "plain.csv")
    mirrored = predict(runs["a"], images=[tmp_path / "mirrored"], out=tmp_path / "mirrored.csv")
    flipped = predict(runs["a"], images=originals, out=tmp_path / "tta.csv", tta="hflip")
    assert not np.allclose(_probs(plain, classes), _probs(mirrored, classes))
    np.testing.assert_allclose(
        _probs(flipped, classes), (_probs(plain, classes) + _probs(mirrored, classes)) / 2, rtol=1e-5
    )


def test_an_ensemble_is_the_mean_of_its_members_each_with_its_own_image_size(classes, runs, study_tables, tmp_path):
    data = study_tables["test"]
    a, b = (predict(runs[k], data=data, out=tmp_path / f"{k}.csv") for k in ("a", "b"))
    both = predict([runs["a"], runs["b"]], data=data, out=tmp_path / "ab.csv", tta="hflip")
    a_flip, b_flip = (predict(runs[k], data=data, out=tmp_path / f"{k}-f.csv", tta="hflip") for k in ("a", "b"))
    np.testing.assert_allclose(
        _probs(both, classes), (_probs(a_flip, classes) + _probs(b_flip, classes)) / 2, rtol=1e-6
    )
    assert not np.allclose(_probs(a, classes), _probs(b, classes)) and not np.allclose(
        _probs(a, classes), _probs(a_flip, classes)
    )


def test_members_with_the_classes_in_another_order_are_reordered(classes, runs, study_tables, tmp_path):
    data = study_tables["test"]
    plain = predict(runs["a"], data=data, out=tmp_path / "a.csv")
    permuted = predict(runs["permuted"], data=data, out=tmp_path / "p.csv")
    assert list(permuted.columns) == ["id", "Delta", "Beta", "Alpha", "Gamma"]
    np.testing.assert_allclose(_probs(permuted, classes), _probs(plain, classes), rtol=1e-6)
    both = predict([runs["a"], runs["permuted"]], data=data, out=tmp_path / "ap.csv")
    assert list(both.columns) == ["id", *classes]
    np.testing.assert_allclose(_probs(both, classes), _probs(plain, classes), rtol=1e-6)


@pytest.mark.parametrize(
    "other, difference",
    [
        ("omega", r"other classes \(missing \['Delta'\], extra \['Omega'\]\)"),
        ("single", r"task 'single', not 'multilabel'"),
    ],
)
def test_checkpoints_that_cannot_be_ensembled_are_named(runs, study_tables, tmp_path, other, difference):
    with pytest.raises(
        ValueError, match=rf"checkpoint .*{other}.ckpt cannot be ensembled with .*best.ckpt: it has {difference}"
    ):
        predict([runs["a"], runs[other]], data=study_tables["test"], out=tmp_path / "p.csv")
    with pytest.raises(ValueError, match=difference):
        evaluate([runs["a"], runs[other]], study_tables["test"], out_dir=tmp_path / "ev", n_boot=0)
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "ev" / "metrics.json").exists()


def _assert_equal_within_studies(frame: pd.DataFrame, studies: list[str], classes: list[str]) -> None:
    for study in set(studies):
        rows = _probs(frame, classes)[np.array(studies) == study]
        np.testing.assert_array_equal(rows, np.repeat(rows[:1], len(rows), axis=0))


def test_evaluate_reports_the_metrics_with_and_without_aggregation(classes, runs, study_tables, tmp_path):
    data, val = study_tables["test"], study_tables["val"]
    report = evaluate(runs["a"], data, val_data=val, aggregate="study", tta="hflip", n_boot=20)
    out = Path(report["out_dir"])
    assert out == runs["a"].parent.parent / "eval" / "test_studies-hflip-study"
    assert report["aggregate"] == "study" and report["tta"] == "hflip" and report["n_studies"] == 8
    plain = evaluate(runs["a"], data, val_data=val, tta="hflip", n_boot=20, out_dir=tmp_path / "plain")
    names = metric_names("multilabel")
    np.testing.assert_equal(report["without_aggregation"], {**{n: plain[n] for n in names}, "ci95": plain["ci95"]})
    assert "without_aggregation" not in plain and plain["aggregate"] == "none"

    predictions = pd.read_csv(out / "predictions.csv")
    studies = pd.read_csv(data)["study_id"].tolist()
    _assert_equal_within_studies(predictions, studies, classes)
    image_level = pd.read_csv(tmp_path / "plain" / "predictions.csv")
    study_mean = image_level.groupby(np.array(studies))[classes].transform("mean").to_numpy()
    np.testing.assert_allclose(_probs(predictions, classes), study_mean, rtol=1e-6)
    per_class = pd.read_csv(out / "per_class.csv")  # thresholds tuned on the aggregated validation probabilities
    recomputed = multilabel_metrics(
        pd.read_csv(data)[classes].to_numpy(dtype=float),
        _probs(predictions, classes),
        thresholds=per_class["threshold"].values,
    )
    assert report["mAP"] == pytest.approx(recomputed["mAP"], rel=1e-6)
    assert report["mF1"] == pytest.approx(recomputed["mF1"], rel=1e-6)


def test_aggregation_needs_study_ids_in_every_table(runs, tiny_data, study_tables, tmp_path):
    with pytest.raises(ValueError, match=r"aggregate 'study': val_data .*val.csv \(generic table\) has no study ids"):
        evaluate(runs["a"], study_tables["test"], val_data=tiny_data["val"], aggregate="study", out_dir=tmp_path)
    with pytest.raises(ValueError, match=r"aggregate 'view-study': data .*test.csv \(generic table\) has no study ids"):
        predict(runs["a"], data=tiny_data["test"], aggregate="view-study", out=tmp_path / "p.csv")
    images = sorted((tiny_data["test"].parent / "images").glob("test_*.png"))[:2]
    with pytest.raises(ValueError, match=r"aggregate 'study': images \(image files\) has no study ids"):
        predict(runs["a"], images=images, aggregate="study", out=tmp_path / "p.csv")
    with pytest.raises(ValueError, match=r"tta must be one of \('none', 'hflip'\), got 'vflip'"):
        predict(runs["a"], images=images, tta="vflip", out=tmp_path / "p.csv")
    assert not list(tmp_path.iterdir())


def test_cli_ensemble_with_tta_and_view_study_aggregation(classes, runs, study_tables, tmp_path, capsys):
    a, b = str(runs["a"]), str(runs["b"])
    data, val = str(study_tables["test"]), str(study_tables["val"])
    options = ["--checkpoint", a, "--checkpoint", b, "--tta", "hflip", "--aggregate", "view-study"]
    assert (
        cli.main(
            ["evaluate", *options, "--data", data, "--val-data", val, "--n-boot", "10", "--out", str(tmp_path / "ev")]
        )
        == 0
    )
    printed = capsys.readouterr().out.splitlines()
    assert "no aggregation" in printed[0] and "aggregate view-study" in printed[0]
    line = next(line for line in printed if line.startswith("mAP "))
    assert line.count("95% CI") == 2, line
    report = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert [m["image_size"] for m in report["ensemble"]] == [16, 24]
    assert report["checkpoint"] == str(runs["a"].resolve()) and set(report["without_aggregation"]) >= {"mAP", "ci95"}
    assert f"{report['without_aggregation']['mAP']:.4f}" in line and f"{report['mAP']:.4f}" in line

    out = tmp_path / "p.csv"
    assert cli.main(["predict", *options, "--data", data, "--out", str(out)]) == 0
    predicted = pd.read_csv(out)
    assert len(predicted) == 24 and list(predicted.columns) == ["id", *classes]
    _assert_equal_within_studies(predicted, pd.read_csv(data)["study_id"].tolist(), classes)
    evaluated = pd.read_csv(tmp_path / "ev" / "predictions.csv")
    np.testing.assert_allclose(_probs(predicted, classes), _probs(evaluated, classes), rtol=1e-6)

    folder = str(study_tables["test"].parent / "images")
    assert (
        cli.main(["predict", "--checkpoint", a, folder, "--aggregate", "study", "--out", str(tmp_path / "x.csv")]) == 2
    )
    assert "aggregate 'study': images (image files) has no study ids" in capsys.readouterr().err
