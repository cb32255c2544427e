"""The simulated datasets: determinism, layout, prevalence, co-occurrence, noise, patients."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ral.cli import main
from ral.data import APTOS_CLASSES, CXRLT_CLASSES, ISIC2018_CLASSES, ImageDataset, load_table
from ral.data.groups import frequency_groups
from ral.data.simulate import labels as label_model
from ral.data.simulate import preview_grid, simulate_dataset

SMALL = {"n_train": 300, "n_val": 200, "n_test": 200, "size": 16}  # the smallest images: fast
NF = CXRLT_CLASSES.index("No Finding")
SD = CXRLT_CLASSES.index("Support Devices")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return simulate_dataset(tmp_path_factory.mktemp("sim") / "a", seed=7, **SMALL)


def test_same_seed_gives_byte_identical_files(small, tmp_path):
    again = simulate_dataset(tmp_path / "b", seed=7, **SMALL)
    for name in ("train.csv", "val.csv", "test.csv", "train_clean.csv", "dataset.json"):
        assert (small / name).read_bytes() == (again / name).read_bytes(), name
    for split, row in (("train", 0), ("test", 199)):
        rel = pd.read_csv(small / f"{split}.csv")["fpath"][row]
        assert (small / rel).read_bytes() == (again / rel).read_bytes()
    other = simulate_dataset(tmp_path / "c", seed=8, **SMALL)
    assert (other / "train.csv").read_bytes() != (small / "train.csv").read_bytes()


def test_layout_is_cxrlt_2023_with_mimic_paths_and_views(small):
    header = (small / "train.csv").read_text().splitlines()[0].split(",")
    assert header == ["dicom_id", "subject_id", "study_id", *CXRLT_CLASSES, "fpath", "ViewPosition"]
    frame = pd.read_csv(small / "train.csv", dtype=str)
    row = frame.iloc[0]
    assert (
        row["fpath"] == f"files/p{row['subject_id'][:2]}/p{row['subject_id']}/s{row['study_id']}/{row['dicom_id']}.png"
    )
    assert set(frame["ViewPosition"]) == {"PA", "LATERAL", "AP"} and frame["dicom_id"].is_unique
    table = load_table(small / "val.csv")  # checks every image exists
    assert table.format == "cxrlt" and len(table) == 200 and table.class_names == CXRLT_CLASSES
    image, target = ImageDataset(table, image_size=16)[0]
    assert image.shape == (1, 16, 16) and target.shape == (26,)
    info = json.loads((small / "dataset.json").read_text())
    assert info["seed"] == 7 and info["image_size"] == 16 and info["noise"]["missing_rate"] == 0.15
    assert info["classes"] == CXRLT_CLASSES and info["splits"]["test"]["images"] == 200


def test_rare_classes_reach_the_minimum_in_val_and_test(small):
    for split, minimum in (("val", 20), ("test", 40)):
        counts = pd.read_csv(small / f"{split}.csv")[CXRLT_CLASSES].sum()
        assert counts.min() >= minimum, counts.idxmin()


def test_no_finding_excludes_every_pathology_but_support_devices(small):
    for name in ("train_clean.csv", "train.csv", "test.csv"):
        labels = pd.read_csv(small / name)[CXRLT_CLASSES].to_numpy()
        others = np.delete(labels, [NF, SD], axis=1)
        assert labels[:, NF].sum() > 0 and not np.any(others[labels[:, NF] == 1])
        assert np.any(labels[labels[:, NF] == 1, SD])  # devices do occur with No Finding


def test_noise_removes_train_positives_only(small):
    clean_images = pd.read_csv(small / "train_clean.csv")
    noisy_images = pd.read_csv(small / "train.csv")
    assert not np.any(noisy_images[CXRLT_CLASSES].to_numpy() > clean_images[CXRLT_CLASSES].to_numpy())  # 1 -> 0
    # labels are per study: the noise removes a positive from every view of a study
    clean = clean_images.groupby("study_id")[CXRLT_CLASSES].first()
    noisy = noisy_images.groupby("study_id")[CXRLT_CLASSES].first()
    for name in CXRLT_CLASSES:
        expected = clean[name].sum() if name == "No Finding" else clean[name].sum() - round(0.15 * clean[name].sum())
        assert noisy[name].sum() == expected
    info = json.loads((small / "dataset.json").read_text())
    for split in ("val", "test"):
        assert info["splits"][split]["counts"] == info["splits"][split]["clean_counts"]


def test_studies_have_several_views_sharing_their_labels(small):
    for split in ("train", "val"):
        frame = pd.read_csv(small / f"{split}.csv")
        sizes = frame.groupby("study_id").size()
        assert sizes.max() <= 3 and (sizes >= 2).mean() > 0.4, split
        assert (frame.groupby("study_id")[CXRLT_CLASSES].nunique() == 1).all().all(), split  # labels per study
        first_views = frame.groupby("study_id")["ViewPosition"].first()
        assert set(first_views) == {"PA"}  # a study starts with a frontal view
    studies = [set(pd.read_csv(small / f"{s}.csv")["study_id"]) for s in ("train", "val", "test")]
    assert not (studies[0] & studies[1] or studies[0] & studies[2] or studies[1] & studies[2])


def test_patients_have_several_images_and_never_cross_splits(small):
    subjects = {s: set(pd.read_csv(small / f"{s}.csv")["subject_id"]) for s in ("train", "val", "test")}
    assert not (
        subjects["train"] & subjects["val"]
        or subjects["train"] & subjects["test"]
        or subjects["val"] & subjects["test"]
    )
    per_patient = pd.read_csv(small / "train.csv")["subject_id"].value_counts()
    assert per_patient.max() > 1 and per_patient.mean() > 1.5


def test_label_model_counts_follow_cxrlt_and_groups_match():
    """Labels only (no images): observed training counts match CXR-LT prevalence exactly."""
    n = 24_000
    rng = np.random.default_rng(0)
    patient = label_model.sample_patients(n, rng)
    clean = label_model.sample_labels(
        label_model.sample_factors(patient, rng), label_model.quotas(n, label_model.clean_prevalence(0.15), 0), rng
    )
    noisy = label_model.drop_positives(clean, 0.15, rng)
    expected = label_model.cxrlt_prevalence() * n
    assert np.all(np.abs(noisy.sum(axis=0) - expected) <= 1.5)
    groups = frequency_groups(noisy.sum(axis=0), n)
    assert (groups.count("head"), groups.count("medium"), groups.count("tail")) == (8, 10, 8)
    counts = noisy.sum(axis=0)
    assert counts.max() / counts.min() == pytest.approx(89140 / 543, rel=0.05)

    def lift(a: str, b: str) -> float:  # P(a | b) / P(a)
        ia, ib = CXRLT_CLASSES.index(a), CXRLT_CLASSES.index(b)
        return clean[clean[:, ib] == 1, ia].mean() / clean[:, ia].mean()

    assert lift("Subcutaneous Emphysema", "Pneumothorax") > 4
    assert lift("Edema", "Cardiomegaly") > 1.5 and lift("Pleural Effusion", "Edema") > 1.3
    assert lift("Consolidation", "Pneumonia") > 2
    assert lift("Tortuous Aorta", "Calcification of the Aorta") > 3


def test_single_label_task_uses_isic_layout(tmp_path):
    out = simulate_dataset(tmp_path / "skin", task="single", seed=1, n_train=400, n_val=200, n_test=300, size=16)
    header = (out / "train.csv").read_text().splitlines()[0]
    assert header == "image,MEL,NV,BCC,AKIEC,BKL,DF,VASC"
    table = load_table(out / "val.csv")
    assert table.format == "isic2018" and table.task == "single" and table.class_names == ISIC2018_CLASSES
    assert np.bincount(table.targets_single(), minlength=7).min() >= 20
    train_counts = dict(zip(ISIC2018_CLASSES, load_table(out / "train.csv").class_counts()))
    assert train_counts["NV"] > train_counts["MEL"] > train_counts["DF"]
    image, target = ImageDataset(table, image_size=16)[0]
    assert image.shape == (1, 16, 16) and target.dtype.is_floating_point is False


def test_fundus_task_uses_aptos_layout(tmp_path):
    out = simulate_dataset(tmp_path / "fundus", task="fundus", seed=1, n_train=400, n_val=300, n_test=300, size=16)
    assert (out / "train.csv").read_text().splitlines()[0] == "id_code,diagnosis"
    table = load_table(out / "val.csv")
    assert table.format == "aptos" and table.task == "single" and table.class_names == APTOS_CLASSES
    assert np.bincount(table.targets_single(), minlength=5).min() >= 20
    counts = load_table(out / "train.csv").class_counts()
    assert counts[0] > counts[2] > counts[1] > counts[3]  # APTOS: No DR, Moderate, Mild, ... Severe rarest
    image, _ = ImageDataset(table, image_size=16)[0]
    assert image.shape == (1, 16, 16)
    with Image.open(table.image_path(0)) as rgb:
        assert rgb.mode == "RGB" and rgb.size == (16, 16)


def test_preview_grid_and_cli(tmp_path, capsys):
    assert preview_grid(tmp_path / "g.png", per_row=2, size=32).stat().st_size > 5000
    assert main(["data", "simulate", "--preview", str(tmp_path / "s.png"), "--task", "single", "--size", "32"]) == 0
    assert (tmp_path / "s.png").is_file()
    assert main(["data", "simulate"]) == 2
    assert "--out" in capsys.readouterr().err


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="task must be one of"):
        simulate_dataset(tmp_path, task="regression")
    with pytest.raises(ValueError, match="n_val must be an int >= 200"):
        simulate_dataset(tmp_path, n_val=10)
    with pytest.raises(ValueError, match="missing_rate must be in"):
        simulate_dataset(tmp_path, missing_rate=1.5)


def test_single_label_split_too_small_for_its_quotas_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"n_test must be at least \d+ .* got 250"):
        simulate_dataset(tmp_path / "s", task="single", size=16, n_train=200, n_val=300, n_test=250)
