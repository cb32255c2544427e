"""The dataset keys of the config reach the readers: CXR-LT 2024 tables, MIMIC's official split and views,
single-label plain CSVs (``label`` column, ``dataset.task: single``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ral import cli
from ral.data import CXRLT2024_TASK1_CLASSES, CXRLT2024_TASK2_CLASSES, load_table
from ral.engine import config_from_dict, predict, train
from ral.engine.build import prepare_run

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "fixtures"


def _write_images(folder: Path, paths: list[str], seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for rel in paths:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8), mode="L").save(path)


@pytest.fixture(scope="module")
def cxrlt2024(tmp_path_factory) -> dict[str, Path]:
    """A CXR-LT 2024 task-1 layout (no subject_id, 40 classes) of 24 images in 8 studies, and its unlabeled
    development table, with tiny JPEGs below a MIMIC-like root."""
    root = tmp_path_factory.mktemp("cxrlt2024")
    rng = np.random.default_rng(1)
    rows, dev = [], []
    for i in range(24):
        subject, study = f"{10000000 + i // 6}", f"{50000000 + i // 3}"
        fpath = f"files/p{subject[:2]}/p{subject}/s{study}/d{i:03d}.jpg"
        labels = (rng.random(40) < 0.2).astype(int)
        labels[i % 40] = 1
        rows.append(
            {"dicom_id": f"d{i:03d}", "study_id": study, **dict(zip(CXRLT2024_TASK1_CLASSES, labels)), "fpath": fpath}
        )
    for i in range(6):
        subject, study = "19000000", f"{59000000 + i // 2}"
        dev.append({"dicom_id": f"v{i}", "study_id": study, "fpath": f"files/p19/p{subject}/s{study}/v{i}.jpg"})
    pd.DataFrame(rows).to_csv(root / "train_labeled.csv", index=False)
    pd.DataFrame(dev).to_csv(root / "development.csv", index=False)
    _write_images(root, [r["fpath"] for r in rows + dev])
    return {"train": root / "train_labeled.csv", "val": root / "train_labeled.csv", "dev": root / "development.csv"}


@pytest.fixture(scope="module")
def cxrlt2024_runs(tiny_config, cxrlt2024, tmp_path_factory) -> list[Path]:
    """Best checkpoints of two 1-epoch runs (seeds 0 and 1) on the CXR-LT 2024 table."""
    base = tmp_path_factory.mktemp("cxrlt2024-runs")
    results = [train(tiny_config(cxrlt2024, base / f"seed{seed}", seed=seed)) for seed in (0, 1)]
    assert [r["num_classes"] for r in results] == [40, 40]
    return [Path(r["best_checkpoint"]) for r in results]


def test_cxrlt2024_trains_and_predicts_its_development_table(cxrlt2024, cxrlt2024_runs, tmp_path):
    frame = predict(cxrlt2024_runs[0], data=cxrlt2024["dev"], out=tmp_path / "dev.csv", device="cpu")
    assert list(frame.columns) == ["dicom_id", *CXRLT2024_TASK1_CLASSES] and len(frame) == 6
    assert frame["dicom_id"].tolist() == [f"v{i}" for i in range(6)]


def test_cxrlt2024_submission_of_an_ensemble_with_flip_tta_and_study_aggregation(cxrlt2024, cxrlt2024_runs, tmp_path):
    out = tmp_path / "submission.csv"
    checkpoints = [option for path in cxrlt2024_runs for option in ("--checkpoint", str(path))]
    command = ["predict", *checkpoints, "--data", str(cxrlt2024["dev"]), "--tta", "hflip", "--aggregate", "study"]
    assert cli.main([*command, "--out", str(out), "--device", "cpu"]) == 0
    submission = pd.read_csv(out, dtype={"dicom_id": str})
    assert list(submission.columns) == ["dicom_id", *CXRLT2024_TASK1_CLASSES]
    assert submission["dicom_id"].tolist() == [f"v{i}" for i in range(6)]  # one row per image, in table order
    probs = submission[CXRLT2024_TASK1_CLASSES].to_numpy()
    assert np.all((probs > 0) & (probs < 1))
    studies = pd.read_csv(cxrlt2024["dev"], dtype=str)["study_id"].to_numpy()
    for study in set(studies):  # 3 studies of 2 images: equal rows within a study, different across
        np.testing.assert_array_equal(probs[studies == study][0], probs[studies == study][1])
    assert len({tuple(row) for row in probs}) == 3


def test_cxrlt2024_task2_from_the_task1_table(tiny_config, cxrlt2024, tmp_path):
    run = prepare_run(
        config_from_dict(tiny_config(cxrlt2024, tmp_path / "run", dataset={"classes": "cxrlt2024-task2"}))
    )
    assert run.train.class_names == CXRLT2024_TASK2_CLASSES and run.val.class_names == CXRLT2024_TASK2_CLASSES
    assert run.train.study_ids[:3] == ["50000000"] * 3 and run.train.subject_ids[0] == "10000000"


def test_unlabeled_table_cannot_train(tiny_config, cxrlt2024, tmp_path):
    config = tiny_config({"train": cxrlt2024["dev"], "val": cxrlt2024["dev"]}, tmp_path / "run")
    with pytest.raises(ValueError, match=r"dataset.train: .*development.csv has no labels"):
        prepare_run(config_from_dict(config))


def test_mimic_label_file_with_official_split_and_frontal_views(tiny_config, tmp_path):
    for item in (FIXTURES / "mimic").iterdir():
        shutil.copy(item, tmp_path / item.name)
    labels = tmp_path / "mimic-cxr-2.0.0-chexpert.csv.gz"
    data = {"train": labels, "val": labels}
    config = tiny_config(data, tmp_path / "run", dataset={"views": ["frontal"], "uncertain": "ones"})
    with pytest.raises(FileNotFoundError, match=r"dataset.train: .*image file not found"):
        prepare_run(config_from_dict(config))
    table = load_table(labels, check_images="none")
    _write_images(tmp_path, [str(table.image_path(i).relative_to(tmp_path)) for i in range(len(table))])
    run = prepare_run(config_from_dict(config))
    assert run.train.views == ["PA", "AP"] and set(run.train.study_ids) == {"50414267", "53189527"}
    assert run.val.views == ["PA"] and run.val.study_ids == ["57375967"]
    assert run.meta["uncertain"] == "ones"


def test_padchest_most_frequent_classes_of_the_training_table(tiny_config, tmp_path):
    padchest = FIXTURES / "padchest" / "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv"
    data = {"train": padchest, "val": padchest}
    run = prepare_run(config_from_dict(tiny_config(data, tmp_path / "run", dataset={"max_classes": 3})))
    assert run.train.class_names == ["aortic elongation", "normal", "pleural effusion"]
    assert run.val.class_names == run.train.class_names


@pytest.fixture(scope="module")
def single_tables(tiny_single_data, tmp_path_factory) -> dict[str, dict[str, Path]]:
    """The tiny single-label images as a ``path,label`` CSV and as a one-hot CSV (train / val each)."""
    out = tmp_path_factory.mktemp("single-csv")
    named, onehot = {}, {}
    for split, folder in tiny_single_data.items():
        files = sorted(folder.rglob("*.png"))
        names = [f.parent.name for f in files]
        frame = pd.DataFrame({"path": [str(f) for f in files], "label": names})
        frame.to_csv(out / f"{split}_named.csv", index=False)
        hot = pd.get_dummies(frame["label"]).astype(int)
        pd.concat([frame[["path"]], hot], axis=1).to_csv(out / f"{split}_onehot.csv", index=False)
        named[split], onehot[split] = out / f"{split}_named.csv", out / f"{split}_onehot.csv"
    return {"named": named, "onehot": onehot}


def test_label_column_trains_as_single_label(tiny_config, single_tables, tmp_path):
    result = train(tiny_config(single_tables["named"], tmp_path / "run", loss={"name": "ce", "params": {}}))
    assert result["task"] == "single" and result["num_classes"] == 3


def test_one_hot_table_needs_task_single(tiny_config, single_tables, tmp_path):
    ce = {"name": "ce", "params": {}}
    with pytest.raises(ValueError, match="single loss but the dataset is multilabel"):
        prepare_run(config_from_dict(tiny_config(single_tables["onehot"], tmp_path / "a", loss=ce)))
    config = tiny_config(single_tables["onehot"], tmp_path / "b", loss=ce, dataset={"task": "single"})
    run = prepare_run(config_from_dict(config))
    assert run.train.task == "single" and run.train.class_names == ["melanoma", "nevus", "vascular"]
