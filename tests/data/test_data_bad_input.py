"""Bad tables and images: an error naming file, row and value, or (skip_bad) a warning and a count."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from ral.cli import main
from ral.data import ImageDataset, MissingFileError, TableError, load_table
from ral.data.errors import with_hint


@pytest.fixture
def generic(tmp_path: Path, write_image):
    """``generic(body, images=False)``: a generic table ``t.csv`` (columns path, subject_id, A, B) in tmp_path."""

    def write(body: str, images: bool = False) -> Path:
        path = tmp_path / "t.csv"
        path.write_text("path,subject_id,A,B\n" + body)
        if images:
            for k, line in enumerate(body.splitlines()):
                write_image(tmp_path / line.split(",")[0], seed=k)
        return path

    return write


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


def test_label_value_outside_generic_set(tmp_path, generic):
    path = generic("a.png,p,1,0\nb.png,p,2,0\nc.png,q,0,yes\n")
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


def test_missing_image_file_names_file_and_row(tmp_path, generic, write_image):
    path = generic("a.png,p,1,0\nb.png,p,0,1\n")
    write_image(tmp_path / "a.png")
    with pytest.raises(FileNotFoundError, match=r"row 1 \(id 'b.png'\): image file not found: .*b\.png"):
        load_table(path)
    with pytest.warns(UserWarning, match=r"skipped 1 bad row\(s\) of 2"):
        table = load_table(path, skip_bad=True)
    assert table.ids == ["a.png"]


def test_corrupt_image_file(tmp_path, generic):
    path = generic("a.png,p,1,0\nb.png,p,0,1\n", images=True)
    (tmp_path / "b.png").write_bytes(b"not a png at all")
    table = load_table(path)  # "exists" does not open files
    with pytest.raises(TableError, match=r"cannot decode image file .*b\.png.*row 1 \(id 'b.png'\)") as caught:
        ImageDataset(table, image_size=16)[1]
    assert (caught.value.path, caught.value.option) == (path, "skip_bad") and caught.value.value.endswith("b.png")
    with pytest.raises(TableError, match=r"cannot decode image file .*b\.png.*row 1") as pooled:
        ImageDataset(table, image_size=16, cache_dir=tmp_path / "cache")
    assert pooled.value.option == "skip_bad"
    assert not list((tmp_path / "cache").glob("*.npy"))  # no partial cache left behind
    with pytest.raises(ValueError, match=r"row 1 \(id 'b.png'\): cannot decode image file"):
        load_table(path, check_images="decode")
    with pytest.warns(UserWarning, match=r"skipped 1 bad row"):
        assert load_table(path, check_images="decode", skip_bad=True).ids == ["a.png"]


def test_folder_tree_with_non_image_file(tmp_path, write_image):
    write_image(tmp_path / "tree" / "a" / "1.png")
    (tmp_path / "tree" / "a" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"'a/notes.txt' is not an image"):
        load_table(tmp_path / "tree")
    with pytest.warns(UserWarning, match="skipped 1 bad row"):
        assert load_table(tmp_path / "tree", skip_bad=True).paths == ["a/1.png"]


def test_bad_arguments(tmp_path, generic):
    path = generic("a.png,p,1,0\n")
    with pytest.raises(ValidationError, match=r"uncertain\n.*'ignore', 'ones' or 'zeros'"):
        load_table(path, uncertain="maybe")
    with pytest.raises(ValueError, match="check_images must be one of"):
        load_table(path, check_images="yes")
    empty = tmp_path / "e.csv"
    empty.write_text("")
    with pytest.raises(TableError, match=r"e\.csv is empty"):
        load_table(empty)


def test_cli_reports_bad_rows_and_skip_bad(tmp_path, capsys, generic):
    path = generic("a.png,p,1,0\nb.png,p,3,0\n")
    assert main(["data", "stats", str(path)]) == 2
    assert (
        "invalid label value '3'" in (err := capsys.readouterr().err) and "--skip-bad" in err
    )  # the hint: its own flag
    with pytest.warns(UserWarning, match="skipped 1 bad row"):
        assert main(["data", "stats", str(path), "--skip-bad"]) == 0
    assert "images: 1" in capsys.readouterr().out


def test_errors_carry_fields_and_each_interface_spells_the_option(generic, assert_bad):
    path = generic("a.png,p,1,0\nb.png,p,3,0\n")
    error = assert_bad(path, r"first: line 3 \(data row 2\), column 'A': invalid label value '3'")
    assert (error.path, error.row, error.column, error.value, error.option) == (path, 3, "A", "3", "skip_bad")
    assert "skip" not in str(error) and str(error).endswith("(expected one of 0, 1, blank)")
    assert error.with_hint() == f"{error} (skip_bad=True drops such rows)"
    assert error.with_hint(lambda o: "--" + o.replace("_", "-")).endswith("(--skip-bad drops such rows)")
    assert error.with_hint(lambda o: f"dataset.{o}: true").endswith("(dataset.skip_bad: true drops such rows)")
    assert error.with_hint(lambda o: None) == str(error)  # an interface without the option
    with pytest.raises(MissingFileError) as missing:
        load_table(generic("x.png,p,1,0\n"))
    assert isinstance(missing.value, FileNotFoundError) and "image file not found" in str(missing.value)
    assert (missing.value.row, missing.value.option) == (None, "skip_bad") and missing.value.value.name == "x.png"
    assert with_hint(missing.value, lambda o: o) == f"{missing.value} (skip_bad drops such rows)"
    assert with_hint(KeyError("k"), lambda o: o) == "'k'"
    copy = pickle.loads(pickle.dumps(error))  # errors cross process pools (the image cache build)
    assert (type(copy), str(copy), copy.row, copy.option) == (TableError, str(error), 3, "skip_bad")


def test_duplicate_image_paths_are_one_warning_naming_the_rows(tmp_path, generic):
    path = generic("a.png,p,1,0\nb.png,p,0,1\n./a.png,q,1,1\nb.png,q,0,0\n", images=False)
    with pytest.warns(
        UserWarning, match=r"t\.csv: 2 row\(s\) repeat the image of an earlier row \(row 2 './a.png', row 3"
    ) as caught:
        load_table(path, check_images="none")
    assert len([w for w in caught if "repeat the image" in str(w.message)]) == 1
    assert "row 2 repeats row 0" in str(caught[0].message)


def test_paths_leading_out_of_the_root_are_refused_unless_allowed(tmp_path, write_image):
    (tmp_path / "tables").mkdir()
    write_image(tmp_path / "outside.png")
    write_image(tmp_path / "tables" / "in.png")
    path = tmp_path / "tables" / "t.csv"
    path.write_text("path,subject_id,A\nin.png,p,1\n../outside.png,q,0\nsub/../in.png,r,1\n")
    escaping = r"1 image path\(s\) lead out of the image root .*tables \(row 1 '../outside.png'\)"
    with pytest.raises(TableError, match=escaping + "$") as caught:
        load_table(path)
    assert (caught.value.value, caught.value.option) == ("../outside.png", "allow_outside_root")
    assert caught.value.with_hint(lambda o: f"dataset.{o}: true").endswith(
        "(dataset.allow_outside_root: true allows them)"
    )
    with pytest.warns(UserWarning, match="repeat the image"):  # sub/../in.png is in.png
        assert len(load_table(path, allow_outside_root=True, check_images="none")) == 3
    path.write_text(f"path,subject_id,A\nin.png,p,1\n{tmp_path / 'outside.png'},q,0\n")
    assert len(load_table(path)) == 2  # an absolute path is taken as written


def test_skip_bad_drops_undecodable_images_when_the_cache_is_built(tmp_path, monkeypatch, generic):
    import ral.data.cache as cache_module

    path = generic("a.png,p,1,0\nb.png,p,0,1\nc.png,q,1,1\n", images=True)
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    table = load_table(path)
    with pytest.raises(ValueError, match=r"cannot decode image file .*b\.png"):
        ImageDataset(table, image_size=16, cache_dir=tmp_path / "cache")
    with pytest.warns(
        UserWarning, match=r"skipped 1 of 3 image\(s\) that cannot be read; first: cannot decode .*b\.png"
    ):
        cached = ImageDataset(table, image_size=16, cache_dir=tmp_path / "cache", skip_bad=True)
    assert cached.table.ids == ["a.png", "c.png"] and len(cached) == 2
    assert [row["row"] for row in cached.skipped] == [1] and cached.skipped[0]["id"] == "b.png"
    reference = [cached[i][0] for i in range(2)]

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(cache_module, "read_image", no_decoding)
    with pytest.warns(UserWarning, match="skipped 1 of 3"):  # the reused cache knows its bad rows
        again = ImageDataset(table, image_size=16, cache_dir=tmp_path / "cache", skip_bad=True)
    assert all(torch.equal(again[i][0], reference[i]) for i in range(2))
    with pytest.raises(ValueError, match=r"cannot decode image file .*b\.png"):
        ImageDataset(table, image_size=16, cache_dir=tmp_path / "cache")  # without skip_bad: still an error
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="skipped 1 of 3"):  # no cache: each image decoded once here
        plain = ImageDataset(table, image_size=16, skip_bad=True)
    assert all(torch.equal(plain[i][0], reference[i]) for i in range(2))


def test_classes_without_positives(tmp_path, generic):
    from ral.data.checks import check_validation_classes, warn_training_classes

    table = load_table(generic("a.png,p,1,0\nb.png,p,1,\n"), check_images="none")
    with pytest.warns(UserWarning, match=r"dataset.train: 1 class\(es\) have no positive label in 2 rows: \['B'\]"):
        warn_training_classes(table, "dataset.train")
    with pytest.warns(UserWarning, match=r"dataset.val: 1 class\(es\) have no positive label: \['B'\]"):
        check_validation_classes(table, "dataset.val")
    none = load_table(generic("a.png,p,0,0\nb.png,p,0,\n"), check_images="none")
    with pytest.raises(ValueError, match=r"dataset.val: no class has a positive label in its 2 rows"):
        check_validation_classes(none, "dataset.val")


def test_cli_stats_names_its_own_options_in_hints(tmp_path, capsys):
    (tmp_path / "tables").mkdir()
    path = tmp_path / "tables" / "t.csv"
    path.write_text("path,subject_id,A\n../x.png,p,1\n")
    assert main(["data", "stats", str(path)]) == 2
    assert "--allow-outside-root" in capsys.readouterr().err
    assert main(["data", "stats", str(path), "--allow-outside-root"]) == 0


@pytest.mark.slow  # a subprocess
def test_command_line_warnings_are_one_line_each(tmp_path, generic):
    import subprocess
    import sys

    path = generic("a.png,p,1,0\nb.png,p,0,1\n./a.png,q,1,1\n", images=False)
    done = subprocess.run(
        [sys.executable, "-m", "ral.cli", "data", "stats", str(path)], capture_output=True, text=True, check=True
    )
    warned = [line for line in done.stderr.splitlines() if "repeat the image" in line]
    assert len(warned) == 1 and warned[0].startswith("ral: warning: ") and "t.csv: 1 row(s)" in warned[0]
    assert "UserWarning" not in done.stderr and "warn(" not in done.stderr
