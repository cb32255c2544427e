"""Bad tables and images: an error naming file, row and value, or (skip_bad) a warning and a count."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_helpers import write_tiny_image

from ral.cli import main
from ral.data import ImageDataset, load_table


def _generic(tmp_path: Path, body: str, images: bool = False) -> Path:
    path = tmp_path / "t.csv"
    path.write_text("path,subject_id,A,B\n" + body)
    if images:
        for k, line in enumerate(body.splitlines()):
            write_tiny_image(tmp_path / line.split(",")[0], seed=k)
    return path


def test_missing_column_names_file_and_column(fixture_copy):
    path = fixture_copy("Data_Entry_2017.csv")
    path.write_text(path.read_text().replace(",Patient ID,", ",Patient,", 1))
    with pytest.raises(ValueError, match=r"Data_Entry_2017\.csv: missing column\(s\) \['Patient ID'\]"):
        load_table(path, check_images="none")


def test_unknown_class_name_in_nih_labels(fixture_copy):
    path = fixture_copy("Data_Entry_2017.csv")
    path.write_text(path.read_text().replace("Cardiomegaly|Effusion", "Cardiomegaly|Pneumonitis"))
    with pytest.raises(ValueError, match=r"Data_Entry_2017\.csv.*line 4 .*unknown class name 'Pneumonitis'"):
        load_table(path, check_images="none")
    with pytest.warns(UserWarning, match=r"skipped 1 bad row\(s\) of 6"):
        table = load_table(path, check_images="none", skip_bad=True)
    assert len(table) == 5 and "00000001_002.png" not in table.ids


def test_unknown_class_name_requested(fixture_copy):
    with pytest.raises(ValueError, match=r"unknown class name\(s\) \['Edemaa'\]"):
        load_table(fixture_copy("cxrlt_train.csv"), classes=["Edemaa"], check_images="none")


def test_label_value_outside_generic_set(tmp_path):
    path = _generic(tmp_path, "a.png,p,1,0\nb.png,p,2,0\nc.png,q,0,yes\n")
    with pytest.raises(ValueError, match=r"t\.csv; first: line 3 \(data row 2\), column 'A': invalid label value '2'"):
        load_table(path, check_images="none")
    with pytest.warns(UserWarning, match=r"skipped 2 bad row\(s\) of 3"):
        table = load_table(path, check_images="none", skip_bad=True)
    assert table.ids == ["a.png"]


@pytest.mark.parametrize(
    "fixture,old,new,value",
    [
        ("chexpert_train.csv", "Female,68,Frontal,AP,1.0,", "Female,68,Frontal,AP,2.0,", "'2.0'"),
        ("ISIC2018_Task3_Training_GroundTruth.csv", "ISIC_0024307,0.0,1.0", "ISIC_0024307,1.0,1.0", "not one-hot"),
        ("aptos_train.csv", "0083ee8054ee,3", "0083ee8054ee,5", "'5'"),
        ("cxrlt_train.csv", ",0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,", ",0,0,0,0,0,0,0,0,0,0,0,0,0,0,-1,", "'-1'"),
    ],
)
def test_label_values_outside_each_formats_set(fixture_copy, fixture, old, new, value):
    path = fixture_copy(fixture)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ValueError, match=rf"{path.name}.*line \d+.*{value}"):
        load_table(path, check_images="none")


def test_missing_image_file_names_file_and_row(tmp_path):
    path = _generic(tmp_path, "a.png,p,1,0\nb.png,p,0,1\n")
    write_tiny_image(tmp_path / "a.png")
    with pytest.raises(FileNotFoundError, match=r"row 1 \(id 'b.png'\): image file not found: .*b\.png"):
        load_table(path)
    with pytest.warns(UserWarning, match=r"skipped 1 bad row\(s\) of 2"):
        table = load_table(path, skip_bad=True)
    assert table.ids == ["a.png"]


def test_corrupt_image_file(tmp_path):
    path = _generic(tmp_path, "a.png,p,1,0\nb.png,p,0,1\n", images=True)
    (tmp_path / "b.png").write_bytes(b"not a png at all")
    table = load_table(path)  # "exists" does not open files
    with pytest.raises(ValueError, match=r"cannot decode image file .*b\.png.*row 1 \(id 'b.png'\)"):
        ImageDataset(table, image_size=16)[1]
    with pytest.raises(ValueError, match=r"cannot decode image file .*b\.png.*row 1"):
        ImageDataset(table, image_size=16, cache_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*.npy"))  # no partial cache left behind
    with pytest.raises(ValueError, match=r"row 1 \(id 'b.png'\): cannot decode image file"):
        load_table(path, check_images="decode")
    with pytest.warns(UserWarning, match=r"skipped 1 bad row"):
        assert load_table(path, check_images="decode", skip_bad=True).ids == ["a.png"]


def test_folder_tree_with_non_image_file(tmp_path):
    write_tiny_image(tmp_path / "tree" / "a" / "1.png")
    (tmp_path / "tree" / "a" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"'a/notes.txt' is not an image"):
        load_table(tmp_path / "tree")
    with pytest.warns(UserWarning, match="skipped 1 bad row"):
        assert load_table(tmp_path / "tree", skip_bad=True).paths == ["a/1.png"]


def test_bad_arguments(tmp_path):
    path = _generic(tmp_path, "a.png,p,1,0\n")
    with pytest.raises(ValueError, match="uncertain must be one of"):
        load_table(path, uncertain="maybe")
    with pytest.raises(ValueError, match="check_images must be one of"):
        load_table(path, check_images="yes")
    empty = tmp_path / "e.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"e\.csv is empty"):
        load_table(empty)


def test_cli_reports_bad_rows_and_skip_bad(tmp_path, capsys):
    path = _generic(tmp_path, "a.png,p,1,0\nb.png,p,3,0\n")
    assert main(["data", "stats", str(path)]) == 2
    assert "invalid label value '3'" in capsys.readouterr().err
    with pytest.warns(UserWarning, match="skipped 1 bad row"):
        assert main(["data", "stats", str(path), "--skip-bad"]) == 0
    assert "images: 1" in capsys.readouterr().out
