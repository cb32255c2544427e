"""Bad input of the CXR-LT 2024, MIMIC-CXR-JPG, PadChest, VinDr-CXR and single-label generic readers:
one line naming file, row and value, or (skip_bad) dropped with a warning and a count."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from ral.data import MissingFileError, load_table

FIXTURES = Path(__file__).parent / "fixtures"
MIMIC = FIXTURES / "mimic"
PADCHEST_CSV = FIXTURES / "padchest" / "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv"
LABELS = "mimic-cxr-2.0.0-chexpert.csv.gz"
METADATA = "mimic-cxr-2.0.0-metadata.csv.gz"
SPLIT = "mimic-cxr-2.0.0-split.csv.gz"


def edited(source: Path, dest: Path, edit: Callable[[str], str]) -> Path:
    """Copy ``source`` to ``dest`` with its text changed by ``edit`` (gzip in, gzip out)."""
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rt", encoding="utf-8") as fh:
        text = fh.read()
    new = edit(text)
    assert new != text, "the edit changed nothing"
    dest.parent.mkdir(parents=True, exist_ok=True)
    with opener(dest, "wt", encoding="utf-8") as fh:
        fh.write(new)
    return dest


def mimic_copy(tmp_path: Path, edits: dict[str, Callable[[str], str]] | None = None, drop=()) -> Path:
    """The MIMIC fixture folder copied to ``tmp_path`` (files in ``drop`` left out, ``edits`` applied)."""
    for item in MIMIC.iterdir():
        if item.name not in drop:
            shutil.copy(item, tmp_path / item.name)
    for name, edit in (edits or {}).items():
        edited(MIMIC / name, tmp_path / name, edit)
    return tmp_path / LABELS


def _drop_line(fragment: str) -> Callable[[str], str]:
    return lambda text: "".join(line for line in text.splitlines(keepends=True) if fragment not in line)


# --- CXR-LT 2024 -------------------------------------------------------------------------------------
def test_cxrlt_duplicated_dicom_id(tmp_path, assert_bad, assert_skipped):
    path = edited(
        FIXTURES / "cxrlt2024" / "train_labeled.csv",
        tmp_path / "train_labeled.csv",
        lambda t: t.replace(
            "174413ec-4ec4c1f7-34ea26b7-c5f994f8-79ef1962,", "02aa804e-bde0afdd-112c0b34-7bc16630-4e384014,", 1
        ),
    )
    assert_bad(path, r"train_labeled\.csv; first: line 3 .*'dicom_id': duplicated value '02aa804e.*line 2")
    assert len(assert_skipped(path, r"skipped 1 bad row\(s\) of 6")) == 5


def test_cxrlt_column_that_is_no_label_column(tmp_path, assert_bad):
    path = edited(
        FIXTURES / "cxrlt2024" / "train_labeled.csv",
        tmp_path / "t.csv",
        lambda t: (
            "\n".join(line + (",Projection" if k == 0 else ",PA") for k, line in enumerate(t.strip().splitlines()))
            + "\n"
        ),
    )
    assert_bad(path, r"t\.csv: column 'Projection' is neither a metadata column.*holds 'PA'")


def test_cxrlt_path_without_ids_and_bad_label(tmp_path, assert_bad):
    path = tmp_path / "development.csv"
    path.write_text("dicom_id,fpath\nd1,files/p10/p10001122/s59733856/d1.jpg\nd2,images/d2.jpg\n")
    assert_bad(path, r"line 3 .*'fpath': 'images/d2\.jpg' is not a MIMIC path")
    labelled = edited(
        FIXTURES / "cxrlt2024" / "train_labeled.csv",
        tmp_path / "labelled.csv",
        lambda t: t.replace(",1,files/p10/p10000898", ",x,files/p10/p10000898"),
    )
    assert_bad(labelled, r"line 7 \(data row 6\), column 'Tuberculosis': invalid label value 'x'")


def test_cxrlt_forced_without_its_columns(tmp_path, assert_bad):
    path = tmp_path / "t.csv"
    path.write_text("dicom_id,study_id\nd1,s1\n")
    assert_bad(path, r"t\.csv: missing column\(s\) \['fpath'\] required by format 'cxrlt'", format="cxrlt")


# --- MIMIC-CXR-JPG -----------------------------------------------------------------------------------
def test_mimic_needs_the_metadata_file(tmp_path, assert_bad):
    labels = mimic_copy(tmp_path, drop={METADATA})
    assert_bad(
        labels, r"chexpert\.csv\.gz: MIMIC-CXR-JPG labels need mimic-cxr-2\.0\.0-metadata", error=MissingFileError
    )
    mimic_copy(tmp_path, {METADATA: lambda t: t.replace(",ViewPosition,", ",View,", 1)})
    assert_bad(labels, r"metadata\.csv\.gz: missing column\(s\) \['ViewPosition'\]")


def test_mimic_labelled_study_without_images(tmp_path, assert_bad, assert_skipped):
    labels = mimic_copy(tmp_path, {METADATA: _drop_line("10000764,57375967")})
    assert_bad(labels, r"chexpert\.csv\.gz; first: line 4 .*study '10000764/57375967'.*no image")
    assert len(assert_skipped(labels, r"skipped 1 bad row\(s\) of 4 in .*chexpert")) == 5


def test_mimic_image_whose_study_has_no_labels(tmp_path, assert_bad, assert_skipped):
    labels = mimic_copy(tmp_path, {LABELS: _drop_line("10000898,50771383")})
    assert_bad(labels, r"metadata\.csv\.gz; first: line 7 .*image '68b5c4b1.*study '50771383'.*no label row")
    table = assert_skipped(labels, r"skipped 2 bad row\(s\) of 7 in .*metadata")
    assert "50771383" not in table.study_ids and len(table) == 5


def test_mimic_duplicated_dicom_id_and_study(tmp_path, assert_bad):
    labels = mimic_copy(
        tmp_path,
        {
            METADATA: lambda t: t.replace(
                "174413ec-4ec4c1f7-34ea26b7-c5f994f8-79ef1962", "02aa804e-bde0afdd-112c0b34-7bc16630-4e384014"
            )
        },
    )
    assert_bad(labels, r"metadata\.csv\.gz; first: line 3 .*'dicom_id': duplicated value '02aa804e")
    labels = mimic_copy(tmp_path, {LABELS: lambda t: t.replace("10000032,53189527", "10000032,50414267")})
    assert_bad(labels, r"chexpert\.csv\.gz; first: line 3 .*duplicated value '10000032/50414267'")


def test_mimic_invalid_label_drops_the_study_images_with_a_count(tmp_path, assert_bad):
    labels = mimic_copy(tmp_path, {LABELS: lambda t: t.replace("1.0", "2.0", 1)})
    assert_bad(labels, r"chexpert\.csv\.gz; first: line 2 .*'No Finding': invalid label value '2\.0'")
    with pytest.warns(UserWarning) as caught:
        table = load_table(labels, check_images="none", skip_bad=True)
    messages = [str(w.message) for w in caught]
    assert any("skipped 1 bad row(s) of 4" in m for m in messages)
    assert any("dropped 2 image(s)" in m and "label row was skipped" in m for m in messages)
    assert len(table) == 5


def test_mimic_split_file_problems(tmp_path, assert_bad):
    labels = mimic_copy(tmp_path, drop={SPLIT})
    assert_bad(labels, r"the 'validate' part needs the official split file", error=MissingFileError, split="validate")
    with pytest.warns(UserWarning, match=r"no mimic-cxr-2\.0\.0-split\.csv\(\.gz\) beside it: all images are read"):
        assert len(load_table(labels, split="train", check_images="none")) == 7
    mimic_copy(tmp_path, {SPLIT: lambda t: t.replace(",validate", ",val", 1)})
    assert_bad(labels, r"split\.csv\.gz; first: line 5 .*'split': 'val' is not one of", split="train")
    mimic_copy(tmp_path, {SPLIT: _drop_line("2a2277a9")})
    assert_bad(labels, r"metadata\.csv\.gz; first: line 4 .*image '2a2277a9.*' has no row in .*split", split="train")
    with pytest.raises(ValidationError, match=r"split\n.*'train', 'validate' or 'test'"):
        load_table(labels, split="val")


# --- PadChest ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "old, new, shown",
    [
        (
            "\"['pleural effusion', 'pneumonia']\"",
            "\"['pleural effusion', 'pneumonia'\"",
            r"\"\['pleural effusion', 'pneumonia'\"",
        ),
        ("\"['pleural effusion', 'pneumonia']\"", "\"__import__('os')\"", r"\"__import__\('os'\)\""),
        ("\"['pleural effusion', 'pneumonia']\"", '"[1, 2]"', r"'\[1, 2\]'"),
        ("\"['pleural effusion', 'pneumonia']\"", "", "''"),
    ],
)
def test_padchest_unparseable_labels(tmp_path, old, new, shown, assert_bad, assert_skipped):
    path = edited(PADCHEST_CSV, tmp_path / "padchest.csv", lambda t: t.replace(old, new, 1))
    assert_bad(path, rf"padchest\.csv; first: line 5 .*column 'Labels': cannot parse {shown}")
    table = assert_skipped(path, r"skipped 1 bad row\(s\) of 5")
    assert len(table) == 4 and "pneumonia" not in table.class_names


def test_padchest_duplicated_image_and_missing_column(tmp_path, assert_bad):
    path = edited(
        PADCHEST_CSV,
        tmp_path / "padchest.csv",
        lambda t: t.replace("2009033102258826_00-059-088.png", "2009033102258826_00-059-087.png", 1),
    )
    assert_bad(path, r"line 3 .*'ImageID': duplicated value '2168.*_00-059-087\.png' \(first on line 2")
    path = edited(PADCHEST_CSV, tmp_path / "p2.csv", lambda t: t.replace(",Projection,", ",Proj,", 1))
    assert_bad(path, r"p2\.csv: missing column\(s\) \['Projection'\] required by format 'padchest'")


# --- VinDr-CXR ---------------------------------------------------------------------------------------
def test_vindr_unknown_class_drops_the_whole_image(tmp_path, assert_bad):
    path = edited(
        FIXTURES / "vindr_train.csv",
        tmp_path / "train.csv",
        lambda t: t.replace("Pleural thickening,11", "Pleural thickening,12"),
    )
    assert_bad(path, r"train\.csv; first: line 11 .*class_id '12' with class_name 'Pleural thickening'")
    with pytest.warns(UserWarning) as caught:
        table = load_table(path, check_images="none", skip_bad=True)
    assert len(table) == 2 and "1c32170b4af4ce1a3030eb8167753b06" not in table.ids
    assert any("dropped 1 image(s)" in str(w.message) for w in caught)
    path = edited(FIXTURES / "vindr_train.csv", tmp_path / "t2.csv", lambda t: t.replace(",R11,", ",,"))
    assert_bad(path, r"line 6 .*column 'rad_id': empty value")


def test_views_need_a_table_with_views(assert_bad):
    assert_bad(
        FIXTURES / "vindr_train.csv", r"selecting views \['frontal'\] needs a table with views", views=["frontal"]
    )
    found = r"no image has a view in \['AP AXIAL'\]; views in the table: \['AP', 'LATERAL'"
    assert_bad(MIMIC / LABELS, found, views=["AP AXIAL"])


# --- options -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options, field, fragment",
    [
        ({"task": "both"}, "task", r"'auto', 'multilabel' or 'single'"),
        ({"vindr_agreement": "all"}, "vindr_agreement", r"'any' or 'majority'"),
        ({"max_classes": 0}, "max_classes", r"greater than or equal to 1"),
        ({"max_classes": True}, "max_classes", r"valid integer"),
        ({"max_classes": 2, "classes": ["normal"]}, None, r"give classes or max_classes, not both"),
        ({"classes": "cxrlt2025"}, "classes", r"a list of class names or one of \('cxrlt2023', "),
        ({"classes": []}, "classes", r"at least 1 item"),
        ({"skip_bad": "yes"}, "skip_bad", r"valid boolean"),
        ({"hints": {}}, "hints", r"Extra inputs are not permitted"),
    ],
)
def test_bad_options_name_the_option(options, field, fragment):
    with pytest.raises(ValidationError, match=fragment) as caught:
        load_table(PADCHEST_CSV, **options)
    assert caught.value.errors()[0]["loc"] == ((field,) if field else ())


def test_a_task_the_format_cannot_have(assert_bad):
    error = assert_bad(PADCHEST_CSV, r"format 'padchest' is multilabel, task 'single' was asked for", task="single")
    assert (error.value, error.option) == ("single", None)
