"""Each real label-table format, read from a fixture in its exact layout."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from ral.data import (
    APTOS_CLASSES,
    CHEXPERT_CLASSES,
    CXRLT_CLASSES,
    ISIC2018_CLASSES,
    NIH_CLASSES,
    ImageDataset,
    TableOptions,
    detect_format,
    load_image_list,
    load_table,
)
from ral.data.formats import FORMATS, TABLE_FORMATS

FIXTURES = Path(__file__).parent / "fixtures"


def _row(table, image_id: str) -> dict[str, float]:
    i = table.ids.index(image_id)
    return dict(zip(table.class_names, table.labels[i].tolist()))


def _positives(table, image_id: str) -> set[str]:
    return {c for c, v in _row(table, image_id).items() if v == 1}


def test_cxrlt_layout(fixture_copy):
    path = fixture_copy("cxrlt_train.csv")
    table = load_table(path, check_images="none")
    assert table.format == "cxrlt" and table.task == "multilabel"
    assert table.class_names == CXRLT_CLASSES and len(table) == 5
    assert table.ids[2] == "2a2277a9-b0ded155-c0de8eb9-c124d10e-82c5caab"
    assert table.subject_ids[:3] == ["10000032", "10000032", "10000764"]
    assert table.paths[0] == "files/p10/p10000032/s50414267/02aa804e-bde0afdd-112c0b34-7bc16630-4e384014.jpg"
    assert _positives(table, table.ids[2]) == {"Cardiomegaly", "Edema", "Pleural Effusion", "Support Devices"}
    assert table.class_counts()[CXRLT_CLASSES.index("No Finding")] == 2


def test_cxrlt_images_resolved_against_root(tmp_path, fixture_copy, write_image):
    path = fixture_copy("cxrlt_train.csv")
    mimic = tmp_path / "mimic-cxr-jpg"
    table = load_table(path, root=mimic, check_images="none")
    for i in range(len(table)):
        write_image(table.image_path(i).with_suffix(".jpg"), seed=i)
    table = load_table(path, root=mimic)  # default check: every file exists
    image, target = ImageDataset(table, image_size=16)[2]
    assert image.shape == (1, 16, 16) and target.shape == (26,)


def test_nih_layout_pipe_labels_and_no_finding(fixture_copy):
    table = load_table(fixture_copy("Data_Entry_2017.csv"), check_images="none")
    assert table.format == "nih" and table.class_names == NIH_CLASSES and len(NIH_CLASSES) == 15
    assert _positives(table, "00000001_001.png") == {"Cardiomegaly", "Emphysema"}
    assert _positives(table, "00000002_000.png") == {"No Finding"}
    assert _positives(table, "00000005_006.png") == {"Infiltration", "Pleural_Thickening", "Nodule"}
    assert table.subject_ids == ["1", "1", "1", "2", "3", "5"]


def test_nih_images_in_download_folders(tmp_path, fixture_copy, write_image):
    path = fixture_copy("Data_Entry_2017.csv")
    names = ["00000001_000.png", "00000001_001.png", "00000001_002.png"]
    rest = ["00000002_000.png", "00000003_000.png", "00000005_006.png"]
    for k, name in enumerate(names):
        write_image(path.parent / "images_001" / "images" / name, seed=k)
    for k, name in enumerate(rest):
        write_image(path.parent / "images_002" / "images" / name, seed=k)
    table = load_table(path)
    assert table.paths[0] == "images_001/images/00000001_000.png"
    assert table.paths[-1] == "images_002/images/00000005_006.png"


def test_chexpert_uncertain_policies_and_blank(fixture_copy):
    path = fixture_copy("chexpert_train.csv")
    col = CHEXPERT_CLASSES.index
    ignore = load_table(path, check_images="none")
    ones = load_table(path, uncertain="ones", check_images="none")
    zeros = load_table(path, uncertain="zeros", check_images="none")
    assert ignore.format == "chexpert" and ignore.class_names == CHEXPERT_CLASSES
    # row 2: Cardiomegaly -1.0, Lung Opacity 1.0, Pneumothorax blank, Fracture 1.0
    assert math.isnan(ignore.labels[1, col("Cardiomegaly")])
    assert ones.labels[1, col("Cardiomegaly")] == 1.0 and zeros.labels[1, col("Cardiomegaly")] == 0.0
    assert ignore.labels[1, col("Lung Opacity")] == 1.0
    assert ignore.labels[1, col("Pneumothorax")] == 0.0  # blank -> 0
    assert ignore.labels[0, col("Pneumothorax")] == 0.0  # explicit 0.0
    assert int(np.isnan(ignore.labels).sum()) == 7  # the seven -1.0 cells
    assert ignore.subject_ids == ["patient00001", "patient00002", "patient00002", "patient00002", "patient00003"]


def test_chexpert_root_is_parent_of_the_dataset_folder(fixture_copy):
    path = fixture_copy("chexpert_train.csv", folder="CheXpert-v1.0-small", as_name="train.csv")
    table = load_table(path, check_images="none")
    assert table.root == path.parent.parent
    assert table.image_path(0) == path.parent / "train/patient00001/study1/view1_frontal.jpg"


def test_isic2018_layout_single_label(fixture_copy, write_image):
    path = fixture_copy("ISIC2018_Task3_Training_GroundTruth.csv", folder="ISIC2018_Task3_Training_GroundTruth")
    for k, image_id in enumerate(["ISIC_0024306", "ISIC_0024307"]):
        write_image(path.parent.parent / "ISIC2018_Task3_Training_Input" / f"{image_id}.jpg", seed=k)
    table = load_table(path, check_images="none")
    assert table.format == "isic2018" and table.task == "single" and table.class_names == ISIC2018_CLASSES
    assert table.root.name == "ISIC2018_Task3_Training_Input"  # the official folder beside the CSV's
    assert table.targets_single().tolist() == [1, 1, 0, 5, 3, 2, 6, 4]
    image, target = ImageDataset(table, image_size=16)[0]
    assert target.dtype.is_floating_point is False and int(target) == 1 and image.shape == (1, 16, 16)


def test_aptos_layout(fixture_copy):
    path = fixture_copy("aptos_train.csv", as_name="train.csv")
    table = load_table(path, check_images="none")
    assert table.format == "aptos" and table.class_names == APTOS_CLASSES
    assert table.targets_single().tolist() == [2, 4, 1, 0, 0, 3]
    assert table.paths[0] == "000c1434d8d7.png"


def test_generic_layout_nan_and_blank_are_uncertain(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("path,subject_id,A,B\nx/1.png,p1,1,0\nx/2.png,p1,,1\nx/3.png,p2,nan,0.0\n")
    table = load_table(path, check_images="none")
    assert table.format == "generic" and table.class_names == ["A", "B"]
    assert np.isnan(table.labels[1, 0]) and np.isnan(table.labels[2, 0])
    assert table.labels[:, 1].tolist() == [0, 1, 0]
    assert table.subject_ids == ["p1", "p1", "p2"] and table.ids == ["x/1.png", "x/2.png", "x/3.png"]


def test_folder_per_class_tree(tmp_path, write_image):
    for k, rel in enumerate(["b_cls/1.png", "a_cls/x.jpg", "a_cls/sub/y.png", "b_cls/.hidden/z.png"]):
        write_image(tmp_path / "tree" / rel, seed=k)
    (tmp_path / "tree" / "a_cls" / ".DS_Store").write_bytes(b"\0")
    table = load_table(tmp_path / "tree")
    assert table.format == "folder" and table.task == "single" and table.class_names == ["a_cls", "b_cls"]
    assert table.paths == ["a_cls/sub/y.png", "a_cls/x.jpg", "b_cls/1.png"]
    assert table.targets_single().tolist() == [0, 0, 1]
    with pytest.raises(ValueError, match="format 'generic' needs a CSV file, got directory"):
        load_table(tmp_path / "tree", format="generic")


@pytest.mark.parametrize(
    "name,expected",
    [
        ("cxrlt_train.csv", "cxrlt"),
        ("Data_Entry_2017.csv", "nih"),
        ("chexpert_train.csv", "chexpert"),
        ("ISIC2018_Task3_Training_GroundTruth.csv", "isic2018"),
        ("aptos_train.csv", "aptos"),
    ],
)
def test_detect_format_from_headers(name, expected):
    header = (FIXTURES / name).read_text().splitlines()[0].split(",")
    assert detect_format(header) == expected


def test_forced_format_and_unknown_format(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("path,subject_id,A\n1.png,p,1\n")
    with pytest.raises(ValueError, match="missing column.*'dicom_id'"):
        load_table(path, format="cxrlt", check_images="none")
    with pytest.raises(ValidationError, match=r"format\n.*Input should be 'cxrlt', 'nih'"):
        load_table(path, format="dicom", check_images="none")
    other = tmp_path / "o.csv"
    other.write_text("file,label\n1.png,2\n")
    with pytest.raises(ValueError, match=r"o\.csv: cannot detect the table format.*\['file', 'label'\]"):
        load_table(other, check_images="none")


def test_the_format_names_are_those_of_the_table():
    assert tuple(f.name for f in TABLE_FORMATS) == FORMATS


def test_one_options_object_or_its_fields(fixture_copy):
    class WithMore(TableOptions):  # as the training config's dataset section extends it
        train: str = "t.csv"

    path = fixture_copy("chexpert_train.csv")
    options = WithMore(uncertain="ones", classes=["Edema"])
    expected = load_table(path, uncertain="ones", classes=["Edema"], check_images="none")
    for table in (
        load_table(path, options, check_images="none"),
        load_table(path, TableOptions(uncertain="ones", classes=["Edema"]), check_images="none"),
        load_table(path, TableOptions(uncertain="zeros"), uncertain="ones", classes=["Edema"], check_images="none"),
    ):
        np.testing.assert_array_equal(table.labels, expected.labels)
    with pytest.raises(ValidationError, match="give classes or max_classes"):  # fields are validated with the rest
        load_table(path, options, max_classes=2)


def test_classes_selects_and_orders(fixture_copy):
    table = load_table(fixture_copy("cxrlt_train.csv"), classes=["Edema", "Cardiomegaly"], check_images="none")
    assert table.class_names == ["Edema", "Cardiomegaly"] and table.labels[2].tolist() == [1, 1]


def test_missing_table_file(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_table(tmp_path / "nope.csv")


@pytest.mark.parametrize(
    "fixture,columns,fmt",
    [
        ("cxrlt_train.csv", ["dicom_id", "fpath"], "cxrlt"),
        ("Data_Entry_2017.csv", ["Image Index"], "nih"),
        ("chexpert_train.csv", ["Path"], "chexpert"),
        ("ISIC2018_Task3_Training_GroundTruth.csv", ["image"], "isic2018"),
        ("aptos_train.csv", ["id_code"], "aptos"),
        ("vindr_train.csv", ["image_id"], "vindr"),
        ("padchest/PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv", ["ImageID", "ImageDir"], "padchest"),
    ],
)
def test_image_lists_of_every_format_need_no_label_columns(fixture_copy, fixture, columns, fmt, write_image):
    import pandas as pd

    labelled = fixture_copy(fixture)
    reference = load_table(labelled, check_images="none")
    for i in range(len(reference)):
        write_image(reference.image_path(i), seed=i)
    bare = labelled.with_name("bare.csv")
    pd.read_csv(labelled, dtype=str)[columns].to_csv(bare, index=False)  # the id / path columns only
    for path in (bare, labelled):  # label columns, when there, are not read
        images = load_image_list(path)
        assert images.format == fmt and images.class_names == [] and images.labels.shape == (len(reference), 0)
        assert images.ids == reference.ids
        assert [images.image_path(i) for i in range(len(images))] == [
            reference.image_path(i) for i in range(len(reference))
        ]
    # the labelled table's patient / study / view columns are read too (ral predict --aggregate study)
    assert (images.subject_ids, images.study_ids, images.views) == (
        reference.subject_ids,
        reference.study_ids,
        reference.views,
    )


def test_image_lists_refuse_tables_without_image_columns_and_missing_images(tmp_path):
    other = tmp_path / "o.csv"
    other.write_text("file,label\n1.png,2\n")
    with pytest.raises(ValueError, match=r"no image columns among \['file', 'label'\]; expected those of a format"):
        load_image_list(other)
    listed = tmp_path / "l.csv"
    listed.write_text("path\nmissing.png\n")
    with pytest.raises(FileNotFoundError, match="image file not found") as caught:
        load_image_list(listed)
    assert "skip" not in str(caught.value) and caught.value.option is None  # no option lets it through
    with pytest.raises(ValueError, match=r"format must be one of \('cxrlt', .*\) for a table of images, got 'mimic'"):
        load_image_list(listed, format="mimic")
