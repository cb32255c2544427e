"""ral data medmnist: MedMNIST .npz files (exact keys, dtypes, label shapes) -> the generic layout."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pandas as pd
import pytest

from ral.cli import main
from ral.data import load_table
from ral.data.medmnist import SETS

SPLIT_SIZES = {"train": 12, "val": 5, "test": 6}


def _arrays(name: str, size: int = 28, seed: int = 0) -> dict[str, np.ndarray]:
    """MedMNIST's layout: uint8 N x H x W (gray) or N x H x W x 3, labels N x 14 (chest) or N x 1."""
    spec, rng = SETS[name], np.random.default_rng(seed)
    arrays = {}
    for split, n in SPLIT_SIZES.items():
        shape = (n, size, size) if spec.channels == 1 else (n, size, size, 3)
        arrays[f"{split}_images"] = rng.integers(0, 256, size=shape, dtype=np.uint8)
        if spec.task == "multilabel":
            labels = (rng.random((n, len(spec.classes))) < 0.3).astype(np.uint8)
        else:
            labels = (np.arange(n) % len(spec.classes)).reshape(n, 1).astype(np.uint8)
        arrays[f"{split}_labels"] = labels
    return arrays


@pytest.fixture
def chest_npz(tmp_path):
    arrays = _arrays("chestmnist")
    np.savez(tmp_path / "chestmnist.npz", **arrays)
    return tmp_path / "chestmnist.npz", arrays


def test_chestmnist_npz_gives_the_generic_layout_whose_stats_show_the_14_classes_and_counts(
    chest_npz, tmp_path, capsys
):
    path, arrays = chest_npz
    out = tmp_path / "chest"
    assert main(["data", "medmnist", "chestmnist", "--npz", str(path), "--out", str(out)]) == 0
    assert main(["data", "stats", str(out / "train.csv")]) == 0
    printed = capsys.readouterr().out
    assert "images: 12" in printed and "classes: 14" in printed
    counts = arrays["train_labels"].sum(axis=0)
    for name, count in zip(SETS["chestmnist"].classes, counts):
        assert any(line.split()[:2] == [name, str(count)] for line in printed.splitlines()), (name, count)
    table = load_table(out / "test.csv")
    assert table.task == "multilabel" and table.class_names == list(SETS["chestmnist"].classes)
    np.testing.assert_array_equal(table.labels, arrays["test_labels"])
    info = json.loads((out / "dataset.json").read_text())
    assert info["counts"]["val"]["images"] == 5 and info["medmnist_labels"][12] == "pleural"


def test_dermamnist_colour_images_and_class_indices_give_a_single_label_table(tmp_path):
    arrays = _arrays("dermamnist")
    np.savez(tmp_path / "derma.npz", **arrays)
    assert (
        main(["data", "medmnist", "dermamnist", "--npz", str(tmp_path / "derma.npz"), "--out", str(tmp_path / "d")])
        == 0
    )
    table = load_table(tmp_path / "d" / "train.csv")
    assert table.task == "single" and table.class_names == ["AKIEC", "BCC", "BKL", "DF", "MEL", "NV", "VASC"]
    np.testing.assert_array_equal(table.labels.argmax(axis=1), arrays["train_labels"][:, 0])
    from PIL import Image

    first = pd.read_csv(tmp_path / "d" / "train.csv")["path"][0]
    with Image.open(tmp_path / "d" / first) as image:
        np.testing.assert_array_equal(np.asarray(image), arrays["train_images"][0])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.pop("val_labels"), "no array val_labels"),
        (lambda a: a.update(train_images=a["train_images"].astype(np.float32)), "train_images must be uint8"),
        (lambda a: a.update(test_labels=a["test_labels"][:, :1]), "test_labels must be 6 x 14"),
        (lambda a: a["train_labels"].__setitem__((3, 2), 2), "train_labels row 3"),
    ],
)
def test_a_file_without_medmnists_keys_dtypes_or_shapes_is_refused_in_one_line(tmp_path, capsys, change, message):
    arrays = _arrays("chestmnist")
    change(arrays)
    np.savez(tmp_path / "bad.npz", **arrays)
    assert (
        main(["data", "medmnist", "chestmnist", "--npz", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "o")]) == 2
    )
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "o" / "train.csv").exists()


def test_size_must_match_the_file_and_an_existing_output_needs_overwrite(chest_npz, tmp_path, capsys):
    path, _ = chest_npz
    assert (
        main(["data", "medmnist", "chestmnist", "--npz", str(path), "--size", "64", "--out", str(tmp_path / "o")]) == 2
    )
    assert "for --size 64, got uint8 12 x 28 x 28" in capsys.readouterr().err
    args = ["data", "medmnist", "chestmnist", "--npz", str(path), "--out", str(tmp_path / "o")]
    assert main(args) == 0
    assert main(args) == 2 and "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0


def test_without_npz_the_medmnist_package_is_used_or_the_error_says_how_to_pass_npz(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "medmnist", None)  # not importable
    assert main(["data", "medmnist", "retinamnist", "--size", "64", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "pass it with --npz retinamnist_64.npz" in err and err.count("\n") == 1
    arrays = _arrays("retinamnist", size=64)

    class RetinaMNIST:  # the package's dataset class: imgs and labels of one split
        def __init__(self, split, download, size):
            assert download and size == 64
            self.imgs, self.labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]

    package = types.SimpleNamespace(INFO={"retinamnist": {"python_class": "RetinaMNIST"}}, RetinaMNIST=RetinaMNIST)
    monkeypatch.setitem(sys.modules, "medmnist", package)
    assert main(["data", "medmnist", "retinamnist", "--size", "64", "--out", str(tmp_path / "r")]) == 0
    assert load_table(tmp_path / "r" / "val.csv").class_names == [f"grade {i}" for i in range(5)]
