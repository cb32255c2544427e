"""`ral data stats` and `frequency_groups` on a table with the exact CXR-LT 2023 training counts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ral.cli import main
from ral.data import CXRLT_CLASSES, CXRLT_NUM_TRAIN_IMAGES, CXRLT_TRAIN_COUNTS
from ral.data.groups import frequency_groups

HEAD = {
    "Support Devices",
    "Lung Opacity",
    "Cardiomegaly",
    "Pleural Effusion",
    "Atelectasis",
    "Pneumonia",
    "No Finding",
    "Edema",
}
TAIL = {
    "Tortuous Aorta",
    "Pleural Thickening",
    "Lung Lesion",
    "Subcutaneous Emphysema",
    "Fibrosis",
    "Pneumomediastinum",
    "Pleural Other",
    "Pneumoperitoneum",
}


@pytest.fixture(scope="module")
def cxrlt_table(tmp_path_factory) -> Path:
    """A CXR-LT-layout train.csv with 264,849 rows and exactly the published per-class counts
    (image i is positive for class c when i < count[c]; 3 images per patient)."""
    counts = np.array([CXRLT_TRAIN_COUNTS[c] for c in CXRLT_CLASSES])
    n = CXRLT_NUM_TRAIN_IMAGES
    thresholds = np.sort(np.unique(np.concatenate([counts, [0, n]])))
    lines = [",".join(["dicom_id", "subject_id", "study_id", *CXRLT_CLASSES, "fpath"])]
    for lo, hi in zip(thresholds[:-1], thresholds[1:]):
        pattern = ",".join("1" if lo < k else "0" for k in counts)
        lines += [f"d{i},{10000000 + i // 3},{50000000 + i},{pattern},files/p10/d{i}.jpg" for i in range(lo, hi)]
    path = tmp_path_factory.mktemp("cxrlt") / "train.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_default_groups_reproduce_cxrlt_split():
    counts = [CXRLT_TRAIN_COUNTS[c] for c in CXRLT_CLASSES]
    groups = dict(zip(CXRLT_CLASSES, frequency_groups(counts, CXRLT_NUM_TRAIN_IMAGES)))
    assert {c for c, g in groups.items() if g == "head"} == HEAD
    assert {c for c, g in groups.items() if g == "tail"} == TAIL
    assert sum(g == "medium" for g in groups.values()) == 10
    medium_counts = [CXRLT_TRAIN_COUNTS[c] for c, g in groups.items() if g == "medium"]
    assert min(medium_counts) == 4049 and max(medium_counts) == 30119


def test_groups_thresholds_and_mapping_override():
    counts = [50, 10, 1]
    assert frequency_groups(counts, 100, thresholds=(0.6, 0.05)) == ["medium", "medium", "tail"]
    names = ["a", "b", "c"]
    assert frequency_groups(counts, 100, mapping={"a": "tail", "b": "head", "c": "medium"}, class_names=names) == [
        "tail",
        "head",
        "medium",
    ]
    assert frequency_groups(counts, 100, mapping={"head": ["c"], "medium": ["a", "b"]}, class_names=names) == [
        "medium",
        "medium",
        "head",
    ]
    with pytest.raises(ValueError, match=r"unknown class\(es\) \['z'\]"):
        frequency_groups(counts, 100, mapping={"z": "head", "a": "head", "b": "head", "c": "head"}, class_names=names)
    with pytest.raises(ValueError, match=r"without a group"):
        frequency_groups(counts, 100, mapping={"a": "head"}, class_names=names)
    with pytest.raises(ValueError, match="thresholds"):
        frequency_groups(counts, 100, thresholds=(0.01, 0.5))


@pytest.mark.slow  # a 264,849-row table
def test_stats_cli_writes_counts_and_plot(cxrlt_table, tmp_path, capsys):
    assert main(["data", "stats", str(cxrlt_table), "--out", str(tmp_path / "s")]) == 0
    printed = capsys.readouterr().out
    assert "images: 264849  patients: 88283  classes: 26" in printed
    assert "groups: head 8, medium 10, tail 8" in printed
    saved = json.loads((tmp_path / "s" / "stats.json").read_text())
    assert {row["class"]: row["count"] for row in saved["per_class"]} == CXRLT_TRAIN_COUNTS
    assert saved["images"] == 264849 and saved["patients"] == 88283 and saved["format"] == "cxrlt"
    assert saved["groups"] == {"head": 8, "medium": 10, "tail": 8}
    assert {row["class"] for row in saved["per_class"] if row["group"] == "head"} == HEAD
    assert {row["class"] for row in saved["per_class"] if row["group"] == "tail"} == TAIL
    assert saved["imbalance_ratio"] == pytest.approx(89140 / 543)
    assert saved["labels_per_image"]["mean"] == pytest.approx(sum(CXRLT_TRAIN_COUNTS.values()) / 264849)
    assert sum(saved["labels_per_image"]["histogram"].values()) == 264849
    assert (tmp_path / "s" / "long_tail.png").stat().st_size > 1000
    csv = (tmp_path / "s" / "per_class.csv").read_text().splitlines()
    assert csv[0] == "class,count,prevalence,uncertain,group" and len(csv) == 27


def test_stats_cli_groups_options(tmp_path, capsys):
    table = tmp_path / "t.csv"
    table.write_text("path,subject_id,A,B\n1.png,p,1,0\n2.png,p,1,0\n3.png,q,0,1\n4.png,r,0,\n")
    groups = tmp_path / "g.json"
    groups.write_text(json.dumps({"tail": ["A"], "head": ["B"]}))
    assert main(["data", "stats", str(table), "--groups", str(groups)]) == 0
    out = capsys.readouterr().out
    assert "groups: head 1, medium 0, tail 1" in out and "patients: 3" in out
    assert main(["data", "stats", str(table), "--head-threshold", "0.9", "--tail-threshold", "0.3"]) == 0
    assert "groups: head 0, medium 1, tail 1" in capsys.readouterr().out
    assert main(["data", "stats", str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv" in capsys.readouterr().err
