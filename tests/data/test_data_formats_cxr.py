"""CXR-LT 2024, MIMIC-CXR-JPG 2.x, PadChest and VinDr-CXR read from fixtures in their published layouts."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ral.data import CXRLT2024_TASK1_CLASSES, CXRLT2024_TASK2_CLASSES, MIMIC_CLASSES, VINDR_CLASSES, load_table
from ral.data.formats import detect_format, view_types
from ral.data.images import bit_depth, png_significant_bits, read_image
from ral.data.readers._common import read_csv

FIXTURES = Path(__file__).parent / "fixtures"
MIMIC = FIXTURES / "mimic"
PADCHEST = FIXTURES / "padchest"
PADCHEST_CSV = PADCHEST / "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv"


def _positives(table, image_id: str) -> set[str]:
    row = table.labels[table.ids.index(image_id)]
    return {c for c, v in zip(table.class_names, row) if v == 1}


def gzipped(path: Path, dest: Path) -> Path:
    """``dest`` (a .gz name) holding ``path`` gzip-compressed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "rb") as src, gzip.open(dest, "wb") as out:
        shutil.copyfileobj(src, out)
    return dest


# --- CXR-LT 2024 --------------------------------------------------------------------------------
def test_cxrlt2024_task1_table_without_subject_id():
    table = load_table(FIXTURES / "cxrlt2024" / "train_labeled.csv", check_images="none")
    assert (
        table.format == "cxrlt" and table.class_names == CXRLT2024_TASK1_CLASSES and len(CXRLT2024_TASK1_CLASSES) == 40
    )
    assert len(table) == 6
    # subject from the MIMIC path files/p10/p10000032/s50414267/<dicom_id>.jpg, study from study_id
    assert table.subject_ids == ["10000032"] * 3 + ["10000764"] * 2 + ["10000898"]
    assert table.study_ids == ["50414267", "50414267", "53189527", "57375967", "57375967", "50771383"]
    assert _positives(table, "2a2277a9-b0ded155-c0de8eb9-c124d10e-82c5caab") == {
        "Cardiomegaly",
        "Pleural Effusion",
        "Support Devices",
        "Azygos Lobe",
    }
    assert table.views is None


def test_cxrlt2024_task2_is_a_named_class_list():
    table = load_table(FIXTURES / "cxrlt2024" / "train_labeled.csv", classes="cxrlt2024-task2", check_images="none")
    assert table.class_names == CXRLT2024_TASK2_CLASSES and len(table.class_names) == 26
    assert "Normal" in table.class_names and "No Finding" not in table.class_names
    assert table.labels[:2, table.class_names.index("Normal")].tolist() == [1, 1]


def test_cxrlt_study_from_the_path_when_there_is_no_study_id(tmp_path):
    frame = read_csv(FIXTURES / "cxrlt2024" / "train_labeled.csv").drop(columns=["study_id"])
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    table = load_table(path, check_images="none")
    assert table.study_ids[:3] == ["50414267", "50414267", "53189527"]


def test_cxrlt2024_unlabeled_development_table_for_prediction():
    path = FIXTURES / "cxrlt2024" / "development.csv"
    table = load_table(path, check_images="none")
    assert table.num_classes == 0 and len(table) == 3 and table.study_ids == ["59733856", "59733856", "53186264"]
    wanted = load_table(path, classes=CXRLT2024_TASK1_CLASSES, check_images="none")
    assert wanted.class_names == CXRLT2024_TASK1_CLASSES and np.isnan(wanted.labels).all()
    assert wanted.labels.shape == (3, 40) and wanted.ids[0] == "fffabebf-74fd3a1f-673b6b41-96ec0ac9-2ab69818"


def test_cxrlt_2023_layout_still_reads_with_its_26_classes(fixture_copy):
    table = load_table(fixture_copy("cxrlt_train.csv"), check_images="none")
    assert len(table.class_names) == 26 and table.study_ids[0] == "50414267" and table.subject_ids[0] == "10000032"


def test_extra_label_column_is_a_class_of_the_table(fixture_copy):
    path = fixture_copy("cxrlt_train.csv")
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0] + ",Bulla", *(line + ",0" for line in lines[1:-1]), lines[-1] + ",1"]) + "\n")
    table = load_table(path, check_images="none")
    assert table.class_names[-1] == "Bulla" and table.class_counts()[-1] == 1 and len(table.class_names) == 27


# --- MIMIC-CXR-JPG 2.x -------------------------------------------------------------------------
def test_mimic_label_file_joined_through_metadata():
    table = load_table(MIMIC / "mimic-cxr-2.0.0-chexpert.csv.gz", check_images="none")
    assert table.format == "mimic" and table.class_names == MIMIC_CLASSES and len(table) == 7
    assert table.root == MIMIC
    assert table.paths[2] == "files/p10/p10000032/s53189527/2a2277a9-b0ded155-c0de8eb9-c124d10e-82c5caab.jpg"
    assert table.study_ids == ["50414267", "50414267", "53189527", "57375967", "57375967", "50771383", "50771383"]
    assert table.views == ["PA", "LATERAL", "AP", "PA", "LL", "PA", "LATERAL"]
    # study 53189527: Cardiomegaly 1.0, Edema -1.0 (uncertain), Pneumothorax 0.0, the rest blank (-> 0)
    row = dict(zip(table.class_names, table.labels[2].tolist()))
    assert row["Cardiomegaly"] == 1 and np.isnan(row["Edema"]) and row["Pneumothorax"] == 0 and row["Fracture"] == 0
    ones = load_table(MIMIC / "mimic-cxr-2.0.0-chexpert.csv.gz", uncertain="ones", check_images="none")
    assert ones.labels[2, MIMIC_CLASSES.index("Edema")] == 1
    # both images of a study carry the study's labels
    assert table.labels[0].tolist() == table.labels[1].tolist()


def test_mimic_official_split_and_view_filter():
    path = MIMIC / "mimic-cxr-2.0.0-chexpert.csv.gz"
    parts = {s: load_table(path, split=s, check_images="none") for s in ("train", "validate", "test")}
    assert [len(parts[s]) for s in ("train", "validate", "test")] == [3, 2, 2]
    assert set(parts["validate"].study_ids) == {"57375967"}
    frontal = load_table(path, split="train", views=["frontal"], check_images="none")
    assert frontal.views == ["PA", "AP"]
    assert view_types(load_table(path, check_images="none")) == ["frontal", "lateral", "frontal", "frontal"] + [
        "lateral",
        "frontal",
        "lateral",
    ]
    assert load_table(path, views=["LL"], check_images="none").ids == ["b79e55c3-735ce5ac-64412506-cdc9ea79-f1af521f"]


def test_mimic_negbio_and_plain_csv_files(tmp_path):
    negbio = load_table(MIMIC / "mimic-cxr-2.0.0-negbio.csv.gz", check_images="none")
    assert negbio.labels[2, MIMIC_CLASSES.index("Edema")] == 1  # negbio: Edema 1.0 where chexpert says -1.0
    for name in ("chexpert", "metadata"):  # uncompressed copies beside each other read the same
        with gzip.open(MIMIC / f"mimic-cxr-2.0.0-{name}.csv.gz", "rb") as src:
            (tmp_path / f"mimic-cxr-2.0.0-{name}.csv").write_bytes(src.read())
    plain = load_table(tmp_path / "mimic-cxr-2.0.0-chexpert.csv", check_images="none")
    reference = load_table(MIMIC / "mimic-cxr-2.0.0-chexpert.csv.gz", check_images="none")
    assert plain.ids == reference.ids and np.array_equal(plain.labels, reference.labels, equal_nan=True)


def test_mimic_images_are_found_below_the_label_files_folder(tmp_path):
    for item in MIMIC.iterdir():
        shutil.copy(item, tmp_path / item.name)
    table = load_table(tmp_path / "mimic-cxr-2.0.0-chexpert.csv.gz", split="validate", check_images="none")
    for i in range(len(table)):
        path = table.image_path(i)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", (20, 24), 100 + i).save(path)
    assert len(load_table(tmp_path / "mimic-cxr-2.0.0-chexpert.csv.gz", split="validate")) == 2


# --- PadChest ------------------------------------------------------------------------------------
def test_padchest_released_layout():
    header = PADCHEST_CSV.read_text().splitlines()[0].split(",")
    assert len(header) == 36 and header[0] == ""  # the release's unnamed row index
    table = load_table(PADCHEST_CSV)  # images exist: <ImageDir>/<ImageID>
    assert table.format == "padchest" and len(table) == 5
    # every label that occurs, most frequent first (ties by name); the leading space is stripped
    assert table.class_names == [
        "aortic elongation",
        "normal",
        "pleural effusion",
        "cardiomegaly",
        "chronic changes",
        "pneumonia",
    ]
    assert _positives(table, table.ids[2]) == {"cardiomegaly", "pleural effusion", "aortic elongation"}
    assert table.paths[2].startswith("1/216840111366964012339356563862009072111404053")
    assert table.study_ids[0] == table.study_ids[1] and table.subject_ids[2] == table.subject_ids[3]
    assert table.views == ["PA", "L", "PA", "AP_horizontal", "PA"]
    assert load_table(PADCHEST_CSV, views=["frontal"]).views == ["PA", "PA", "AP_horizontal", "PA"]


def test_padchest_most_frequent_and_named_classes(tmp_path):
    assert load_table(PADCHEST_CSV, max_classes=2, check_images="none").class_names == ["aortic elongation", "normal"]
    named = load_table(PADCHEST_CSV, classes=["pneumonia", "kyphosis"], check_images="none")
    assert named.class_names == ["pneumonia", "kyphosis"]  # a label that does not occur is an all-zero column
    assert named.labels.sum(axis=0).tolist() == [1, 0]
    packed = load_table(gzipped(PADCHEST_CSV, tmp_path / "padchest.csv.gz"), root=PADCHEST)
    assert packed.class_names == load_table(PADCHEST_CSV).class_names


def test_padchest_16bit_pngs_scaled_by_their_bit_depth():
    twelve = PADCHEST / "0" / "216840111366964012283393834152009033102258826_00-059-087.png"  # sBIT 12
    sixteen = PADCHEST / "1" / "216840111366964012339356563862009072111404053_00-043-192.png"
    no_sbit = PADCHEST / "1" / "216840111366964012558082906712009327122220177_00-102-064.png"  # max 3000
    assert png_significant_bits(twelve) == 12 and png_significant_bits(sixteen) is None
    for path, bits in ((twelve, 12), (sixteen, 16), (no_sbit, 12)):
        raw = np.asarray(Image.open(path), dtype=np.int64)
        assert raw.max() > 255 and bit_depth(raw, png_significant_bits(path)) == bits
        expected = np.round(raw * (255 / (2**bits - 1)))
        assert np.array_equal(read_image(path, 8), expected.astype(np.uint8))  # no clipping, no max-stretching
    assert read_image(no_sbit, 8).max() == round(3000 * 255 / 4095)  # 187, not stretched to 255


def test_bit_depth_rules():
    assert bit_depth(np.array([0, 4095])) == 12 and bit_depth(np.array([4096])) == 13
    assert bit_depth(np.array([3])) == 8 and bit_depth(np.array([70]), 12) == 12
    assert bit_depth(np.array([5000]), 12) == 13  # values above the recorded depth are never clipped


# --- VinDr-CXR -----------------------------------------------------------------------------------
A, B, C = "9a5094b2563a1ef3ff50dc5c7ff71345", "051132a778e61a86eb147c7c6f564dfe", "1c32170b4af4ce1a3030eb8167753b06"


def test_vindr_any_radiologist():
    table = load_table(FIXTURES / "vindr_train.csv", check_images="none")
    assert table.format == "vindr" and table.class_names == VINDR_CLASSES and table.ids == [A, B, C]
    assert _positives(table, A) == {"Cardiomegaly", "Aortic enlargement", "No finding"}
    assert _positives(table, B) == {"No finding"}
    assert _positives(table, C) == {"Nodule/Mass", "Pleural thickening", "Pleural effusion"}
    assert table.paths[0] == f"{A}.png" and table.subject_ids == table.ids and table.study_ids is None


def test_vindr_majority_of_radiologists():
    table = load_table(FIXTURES / "vindr_train.csv", vindr_agreement="majority", check_images="none")
    assert _positives(table, A) == {"Cardiomegaly"}  # 2 of 3 radiologists
    assert _positives(table, B) == {"No finding"}
    assert _positives(table, C) == {"Nodule/Mass"}  # R9's two boxes count as one vote


def test_vindr_images_in_the_train_folder(tmp_path):
    csv = tmp_path / "train.csv"
    shutil.copy(FIXTURES / "vindr_train.csv", csv)
    for image_id in (A, B, C):
        (tmp_path / "train").mkdir(exist_ok=True)
        Image.new("L", (10, 10)).save(tmp_path / "train" / f"{image_id}.png")
    assert load_table(csv).paths == [f"train/{i}.png" for i in (A, B, C)]


# --- detection and gzip everywhere ------------------------------------------------------------
@pytest.mark.parametrize(
    "path, expected",
    [
        (FIXTURES / "cxrlt2024" / "train_labeled.csv", "cxrlt"),
        (FIXTURES / "cxrlt2024" / "development.csv", "cxrlt"),
        (MIMIC / "mimic-cxr-2.0.0-chexpert.csv.gz", "mimic"),
        (MIMIC / "mimic-cxr-2.0.0-negbio.csv.gz", "mimic"),
        (PADCHEST_CSV, "padchest"),
        (FIXTURES / "vindr_train.csv", "vindr"),
    ],
)
def test_detect_new_formats(path, expected):
    assert detect_format(list(read_csv(path).columns)) == expected


@pytest.mark.parametrize(
    "name", ["cxrlt_train.csv", "Data_Entry_2017.csv", "chexpert_train.csv", "aptos_train.csv", "vindr_train.csv"]
)
def test_gzip_tables_read_like_plain_ones(fixture_copy, tmp_path, name):
    plain = fixture_copy(name)
    packed = gzipped(plain, plain.with_name(plain.name + ".gz"))
    a, b = (load_table(p, check_images="none") for p in (plain, packed))
    assert a.format == b.format and a.ids == b.ids and np.array_equal(a.labels, b.labels, equal_nan=True)


def test_vindr_without_class_id_takes_the_names_that_occur(tmp_path):
    frame = read_csv(FIXTURES / "vindr_train.csv").drop(columns=["class_id"])
    path = tmp_path / "annotations_train.csv"
    frame.to_csv(path, index=False)
    table = load_table(path, check_images="none")
    assert table.class_names == sorted(set(frame["class_name"])) and _positives(table, B) == {"No finding"}
