"""K-fold tables (``ral data split``): patient-disjoint, stratified, balanced image counts, rows unchanged;
NIH's official split lists read as split tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ral.cli import main
from ral.data import LabelTable, TableError, load_image_list, load_table
from ral.data.folds import write_folds
from ral.data.split import fold_tolerance, patient_folds


def _table(n: int = 1200, task: str = "multilabel", seed: int = 0) -> LabelTable:
    """Patients with 1-6 images each; rare classes held by few patients (their images share labels)."""
    rng = np.random.default_rng(seed)
    patient = np.repeat(np.arange(n), rng.integers(1, 7, n))[:n]
    if task == "single":
        per_patient = np.eye(4, dtype=np.float32)[rng.choice(4, n, p=[0.6, 0.25, 0.1, 0.05])]
    else:
        per_patient = (rng.random((n, 6)) < [0.4, 0.2, 0.1, 0.05, 0.02, 0.01]).astype(np.float32)
    labels = per_patient[patient]
    if task == "multilabel":
        labels[rng.random(labels.shape) < 0.02] = np.nan
    return LabelTable(
        ids=[f"i{i}" for i in range(n)],
        paths=[f"{i}.png" for i in range(n)],
        subject_ids=[f"p{p}" for p in patient],
        class_names=[f"c{j}" for j in range(labels.shape[1])],
        labels=labels,
        task=task,
    )


def _spread_check(table: LabelTable, fold: np.ndarray, k: int) -> None:
    """Per class, max - min positives across folds within max(1, 10 %) or one patient's positive images."""
    counts = np.stack([np.nansum(table.labels[fold == f], axis=0) for f in range(k)])
    spread = counts.max(axis=0) - counts.min(axis=0)
    _, patient = np.unique(table.subject_ids, return_inverse=True)
    largest = np.zeros((patient.max() + 1, table.num_classes))
    np.add.at(largest, patient, np.nan_to_num(table.labels))
    allowed = np.maximum(fold_tolerance(counts.sum(axis=0), k), largest.max(axis=0))
    assert np.all(spread <= allowed), (spread, allowed)
    sizes = np.bincount(fold[fold >= 0], minlength=k)
    assert sizes.max() - sizes.min() <= max(1, 0.1 * sizes.mean())


@pytest.mark.parametrize("task", ["multilabel", "single"])
def test_folds_are_patient_disjoint_balanced_and_deterministic(task):
    table = _table(task=task)
    fold = patient_folds(table, 5, seed=1)
    patients = pd.Series(fold).groupby(np.asarray(table.subject_ids)).nunique()
    assert patients.max() == 1 and set(fold) == set(range(5))
    _spread_check(table, fold, 5)
    assert np.array_equal(fold, patient_folds(table, 5, seed=1))
    assert not np.array_equal(fold, patient_folds(table, 5, seed=2))


def test_test_fraction_holds_out_patients():
    table = _table()
    fold = patient_folds(table, 4, seed=0, test_fraction=0.2)
    held = set(np.asarray(table.subject_ids)[fold == -1])
    assert not held & set(np.asarray(table.subject_ids)[fold >= 0])
    assert abs(len(held) - 0.2 * len(set(table.subject_ids))) <= 2
    _spread_check(table, fold, 4)


def test_bad_fold_settings():
    _, first = np.unique(_table().subject_ids, return_index=True)
    first_of_three_patients = first[:3]
    with pytest.raises(ValueError, match="folds must be an integer >= 2, got 1"):
        patient_folds(_table(), 1)
    with pytest.raises(ValueError, match=r"test_fraction must be in \[0, 1\), got 1.0"):
        patient_folds(_table(), 3, test_fraction=1.0)
    with pytest.raises(ValueError, match="5 folds need at least 5 patients, got 3"):
        patient_folds(_table().subset(first_of_three_patients), 5)


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_split_command_writes_the_rows_unchanged(fixture_copy, tmp_path, capsys):
    table = fixture_copy("cxrlt_train.csv")
    out = tmp_path / "folds"
    assert main(["data", "split", str(table), "--folds", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"dataset.train={out / 'fold1_train.csv'} dataset.val={out / 'fold1_val.csv'}" in printed
    header, *rows = _lines(table)
    for k in (1, 2):
        val, train = _lines(out / f"fold{k}_val.csv"), _lines(out / f"fold{k}_train.csv")
        assert val[0] == train[0] == header
        assert sorted(val[1:] + train[1:]) == sorted(rows)
    assert sorted(_lines(out / "fold1_val.csv")[1:] + _lines(out / "fold2_val.csv")[1:]) == sorted(rows)
    subjects = [set(load_table(out / f"fold{k}_val.csv", check_images="none").subject_ids) for k in (1, 2)]
    assert subjects[0] and subjects[1] and not subjects[0] & subjects[1]
    manifest = json.loads((out / "folds.json").read_text())
    assert manifest["files"] == ["fold1_train.csv", "fold1_val.csv", "fold2_train.csv", "fold2_val.csv"]
    # --overwrite replaces what the split wrote and nothing else
    (out / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="pass --overwrite"):
        write_folds(table, out, folds=2)
    assert write_folds(table, out, folds=3, overwrite=True)["files"][-1] == "fold3_val.csv"
    assert (out / "mine.txt").read_text() == "keep"


def test_split_refuses_a_folder_table(tmp_path, write_image, capsys):
    for i in range(4):
        write_image(tmp_path / "tree" / ("a" if i % 2 else "b") / f"{i}.png")
    assert main(["data", "split", str(tmp_path / "tree"), "--folds", "2", "--out", str(tmp_path / "o")]) == 2
    assert "folder table has no CSV rows per image to split" in capsys.readouterr().err


def _nih_with_lists(fixture_copy) -> Path:
    """The NIH fixture with the two official list files beside it (4 train/val names, 2 test names)."""
    entry = fixture_copy("Data_Entry_2017.csv", folder="nih")
    names = pd.read_csv(entry)["Image Index"].tolist()
    (entry.parent / "train_val_list.txt").write_text("\n".join(names[:4]) + "\n")
    (entry.parent / "test_list.txt").write_text("\n".join(names[4:]) + "\n")
    return entry.parent


def test_nih_split_lists_select_rows_of_the_table_beside_them(fixture_copy, tmp_path, write_image, capsys):
    folder = _nih_with_lists(fixture_copy)
    whole = load_table(folder / "Data_Entry_2017.csv", check_images="none")
    train = load_table(folder / "train_val_list.txt", check_images="none")
    test = load_table(folder / "test_list.txt", check_images="none")
    assert train.format == test.format == "nih" and train.source == folder / "train_val_list.txt"
    assert train.ids == whole.ids[:4] and test.ids == whole.ids[4:]
    np.testing.assert_array_equal(train.labels, whole.labels[:4])
    for name in test.ids:  # ral predict --data test_list.txt: the listed images, without labels
        write_image(folder / name)
    images = load_image_list(folder / "test_list.txt")
    assert images.ids == test.ids and images.num_classes == 0
    # ral data split reads the list and writes rows of the NIH table
    out = tmp_path / "folds"
    assert main(["data", "split", str(folder / "train_val_list.txt"), "--folds", "2", "--out", str(out)]) == 0
    header, *rows = _lines(folder / "Data_Entry_2017.csv")
    written = _lines(out / "fold1_val.csv")[1:] + _lines(out / "fold2_val.csv")[1:]
    assert _lines(out / "fold1_val.csv")[0] == header and sorted(written) == sorted(rows[:4])
    capsys.readouterr()


def test_bad_split_lists(fixture_copy, tmp_path):
    folder = _nih_with_lists(fixture_copy)
    (folder / "dup.txt").write_text("00000001_000.png\n\n00000001_000.png\n")
    with pytest.raises(TableError, match=r"dup.txt, line 3: '00000001_000.png' is listed twice \(first on line 1\)"):
        load_table(folder / "dup.txt", check_images="none")
    (folder / "other.txt").write_text("nope.png\n00000001_000.png\n")
    with pytest.raises(TableError, match=r"1 listed image\(s\) are not in Data_Entry_2017.csv \(first: 'nope.png'\)"):
        load_table(folder / "other.txt", check_images="none")
    with pytest.warns(UserWarning, match="dropped"):
        assert len(load_table(folder / "other.txt", check_images="none", skip_bad=True)) == 1
    lonely = tmp_path / "alone" / "test_list.txt"
    lonely.parent.mkdir()
    lonely.write_text("00000001_000.png\n")
    with pytest.raises(FileNotFoundError, match="needs the NIH label table"):
        load_table(lonely, check_images="none")


@pytest.mark.slow
def test_split_of_the_simulated_cxrlt_table_is_balanced(tmp_path, capsys):
    """The issue's check: K patient-disjoint folds of the simulated CXR-LT table whose per-class positive
    counts differ by at most max(1, 10 %) across folds where the patients allow (one patient's images stay
    in one fold, so a class can differ by no more than its largest patient's positive images)."""
    from ral.data.simulate import simulate_dataset

    sim = simulate_dataset(tmp_path / "sim", size=16, n_train=2000, n_val=200, n_test=200)
    out = tmp_path / "folds"
    assert main(["data", "split", str(sim / "train.csv"), "--folds", "5", "--out", str(out)]) == 0
    table = load_table(sim / "train.csv", check_images="none")
    position = {image: i for i, image in enumerate(table.ids)}
    fold = np.full(len(table), -1)
    for k in range(5):
        fold[[position[d] for d in pd.read_csv(out / f"fold{k + 1}_val.csv")["dicom_id"]]] = k
    assert (fold >= 0).all()
    assert pd.Series(fold).groupby(np.asarray(table.subject_ids)).nunique().max() == 1
    _spread_check(table, fold, 5)
    counts = np.stack([np.nansum(table.labels[fold == k], axis=0) for k in range(5)])
    common = counts.mean(axis=0) >= 20  # classes with many patients: within max(1, 10 %) itself
    assert np.all((counts.max(axis=0) - counts.min(axis=0))[common] <= fold_tolerance(counts.sum(axis=0), 5)[common])
