"""Single-label plain tables: a ``label`` column of class names, or one-hot columns read with ``task="single"``."""

from __future__ import annotations

import numpy as np
import pytest

from ral.data import load_table


def test_label_column_of_class_names_is_single_label(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("path,subject_id,label\na.png,p1,nevus\nb.png,p1,melanoma\nc.png,p2,nevus\n")
    table = load_table(path, check_images="none")
    assert table.task == "single" and table.class_names == ["melanoma", "nevus"]
    assert table.targets_single().tolist() == [1, 0, 1] and table.subject_ids == ["p1", "p1", "p2"]
    # a validation table read with the training classes: unseen classes stay, order is the given one
    val = load_table(path, classes=["nevus", "melanoma", "vascular"], check_images="none")
    assert val.class_names == ["nevus", "melanoma", "vascular"] and val.targets_single().tolist() == [0, 1, 0]


def test_label_column_bad_rows(tmp_path, assert_bad, assert_skipped):
    path = tmp_path / "t.csv"
    path.write_text("path,label\na.png,nevus\nb.png,\nc.png,melanoma\n")
    assert_bad(path, r"t\.csv; first: line 3 \(data row 2\), column 'label': empty value")
    assert assert_skipped(path, r"skipped 2 bad row\(s\) of 3 .*empty value", classes=["nevus"]).ids == ["a.png"]
    path.write_text("path,label\na.png,nevus\nc.png,melanoma\n")
    assert_bad(path, r"line 3 .*column 'label': unknown class name 'melanoma'", classes=["nevus"])
    assert_bad(path, r"task 'multilabel' needs one 0/1 column per class", task="multilabel")
    both = tmp_path / "both.csv"
    both.write_text("path,label,MEL\na.png,nevus,0\n")
    assert_bad(both, r"column\(s\) \['MEL'\] beside the 'label' column")


def test_one_hot_table_with_task_single(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("path,A,B,C\na.png,0,1,0\nb.png,1,0,0\nc.png,0,0,1\n")
    assert load_table(path, check_images="none").task == "multilabel"  # auto: one-hot columns are multi-label
    table = load_table(path, task="single", check_images="none")
    assert table.task == "single" and table.targets_single().tolist() == [1, 0, 2]


@pytest.mark.parametrize(
    "row, count",
    [("0,0,0", 0), ("1,1,0", 2)],
)
def test_one_hot_single_row_with_zero_or_several_positives(tmp_path, row, count, assert_bad, assert_skipped):
    path = tmp_path / "t.csv"
    path.write_text(f"path,A,B,C\na.png,0,1,0\nb.png,{row}\nc.png,0,0,1\n")
    assert_bad(path, rf"line 3 \(data row 2\): label row '{row}' is not one-hot \({count} positives", task="single")
    table = assert_skipped(path, r"skipped 1 bad row\(s\) of 3", task="single")
    assert table.ids == ["a.png", "c.png"]
    blank = tmp_path / "blank.csv"
    blank.write_text("path,A,B\na.png,1,\n")
    assert_bad(blank, r"column 'B': invalid label value ''", task="single")


def test_fixed_task_formats_refuse_the_other_task(fixture_copy, assert_bad):
    isic = fixture_copy("ISIC2018_Task3_Training_GroundTruth.csv")
    assert_bad(isic, r"format 'isic2018' is single, task 'multilabel' was asked for", task="multilabel")
    assert load_table(fixture_copy("aptos_train.csv"), task="single", check_images="none").task == "single"


def test_generic_study_and_view_columns(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("path,subject_id,study_id,view,A\na.png,p1,s1,PA,1\nb.png,p1,s1,LATERAL,1\nc.png,p2,s2,AP,0\n")
    table = load_table(path, check_images="none")
    assert table.class_names == ["A"] and table.study_ids == ["s1", "s1", "s2"]
    assert load_table(path, views=["frontal"], check_images="none").ids == ["a.png", "c.png"]
    unlabeled = tmp_path / "u.csv"
    unlabeled.write_text("path\na.png\nb.png\n")
    assert load_table(unlabeled, check_images="none").num_classes == 0
    assert np.isnan(load_table(unlabeled, classes=["A", "B"], check_images="none").labels).all()
