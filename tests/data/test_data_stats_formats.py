"""`ral data stats` on every format: images, patients and studies where known, per-class counts; the docs table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ral.cli import main
from ral.data.formats import TABLE_FORMATS, formats_reference

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
PADCHEST_CSV = FIXTURES / "padchest" / "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv"


@pytest.mark.parametrize(
    "table, options, line, studies",
    [
        (FIXTURES / "cxrlt2024" / "train_labeled.csv", [], "images: 6  patients: 3  classes: 40", 4),
        (FIXTURES / "cxrlt2024" / "development.csv", [], "images: 3  patients: 2  classes: 0", 2),
        (FIXTURES / "mimic" / "mimic-cxr-2.0.0-chexpert.csv.gz", [], "images: 7  patients: 3  classes: 14", 4),
        (
            FIXTURES / "mimic" / "mimic-cxr-2.0.0-chexpert.csv.gz",
            ["--split", "train", "--views", "frontal"],
            "images: 2  patients: 1  classes: 14",
            2,
        ),
        (PADCHEST_CSV, ["--max-classes", "3"], "images: 5  patients: 3  classes: 3", 4),
        (FIXTURES / "vindr_train.csv", ["--vindr-agreement", "majority"], "images: 3  patients: not recorded", None),
        (FIXTURES / "Data_Entry_2017.csv", [], "images: 6  patients: 4  classes: 15", None),
        (FIXTURES / "chexpert_train.csv", [], "images: 5  patients: 3  classes: 14", 4),
        (FIXTURES / "aptos_train.csv", [], "images: 6  patients: not recorded  classes: 5", None),
    ],
)
def test_stats_of_every_format(tmp_path, capsys, table, options, line, studies):
    assert main(["data", "stats", str(table), *options, "--out", str(tmp_path / "s")]) == 0
    printed = capsys.readouterr().out
    assert line in printed
    saved = json.loads((tmp_path / "s" / "stats.json").read_text())
    assert saved["studies"] == studies
    assert (f"studies: {studies}" in printed) == (studies is not None)
    counts = {row["class"]: row["count"] for row in saved["per_class"]}
    assert len(counts) == saved["classes"] and all(f"{name:32s}" in printed for name in counts)


def test_stats_views_and_single_task(tmp_path, capsys):
    assert main(["data", "stats", str(FIXTURES / "mimic" / "mimic-cxr-2.0.0-chexpert.csv.gz")]) == 0
    assert "views: PA 3, LATERAL 2, AP 1, LL 1" in capsys.readouterr().out
    table = tmp_path / "t.csv"
    table.write_text("path,A,B\na.png,1,0\nb.png,0,1\n")
    assert main(["data", "stats", str(table), "--task", "single"]) == 0
    assert "task single" in capsys.readouterr().out
    assert main(["data", "stats", str(FIXTURES / "vindr_train.csv"), "--views", "PA"]) == 2
    assert "needs a table with views" in capsys.readouterr().err


def test_docs_formats_table_is_generated_from_the_table_of_formats():
    reference = formats_reference()
    for fmt in TABLE_FORMATS:
        assert f"| `{fmt.name}` — {fmt.title} |" in reference and fmt.example in reference
    dataset_md = (REPO / "docs" / "dataset.md").read_text(encoding="utf-8")
    assert reference in dataset_md, "docs/dataset.md's formats table differs: paste `python -m ral.data.formats`"
