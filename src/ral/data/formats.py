"""The table of label-table formats `ral` reads (name, signature columns, reader), detection and views.

Detection (:func:`detect_format`), the column check before a reader runs, the error listing
the formats, the view groups (``views=["frontal"]``) and the formats table of docs/dataset.md
(:func:`formats_reference`, ``python -m ral.data.formats``) all come from :data:`TABLE_FORMATS`.
Every reader (:mod:`ral.data.readers`, one module per family of formats) returns a
:class:`~ral.data.table.LabelTable`; :func:`ral.data.load_table` runs them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ral.data.classes import CHEXPERT_CLASSES, ISIC2018_CLASSES
from ral.data.errors import TableError
from ral.data.options import FORMATS, FormatName
from ral.data.readers.chest import read_chexpert, read_nih, read_padchest, read_vindr
from ral.data.readers.mimic import read_cxrlt, read_mimic
from ral.data.readers.plain import read_aptos, read_folder, read_generic, read_isic2018
from ral.data.table import LabelTable, Task

__all__ = [
    "FORMATS",
    "TABLE_FORMATS",
    "ImageList",
    "TableFormat",
    "detect_format",
    "formats_reference",
    "select_views",
    "view_types",
]

_FRONTAL, _LATERAL = "frontal", "lateral"


@dataclass(frozen=True)
class ImageList:
    """How a table of a format can be read as an image list (labels or not, for ``ral predict``).

    Attributes:
        columns: the columns that name the format's images: a table with them is an image list
            of the format (:func:`load_image_list`).
        placeholders: values of the other columns the reader needs (they make its rows readable;
            the labels they give are dropped).
        keep: patient / study / view columns an image list also reads when the table has them
            (``ral predict --aggregate study``); a placeholder fills such a column only when absent.
    """

    columns: tuple[str, ...]
    placeholders: Mapping[str, str] = field(default_factory=dict)
    keep: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableFormat:
    """One label-table format: how it is recognised, which columns it needs, who reads it, what the docs say.

    Attributes:
        name: the ``format`` option's value (:data:`ral.data.options.FormatName`).
        title: the dataset and its file names (docs).
        signature: header columns that identify the format (all present); empty for "folder".
        reader: ``reader(frame, source, options, root) -> LabelTable`` (``reader(folder, options)`` for "folder").
        required: further columns the reader needs; checked, with the signature, before it runs.
        excludes: columns whose presence rules the format out in detection.
        task: "multilabel" or "single"; None when the table decides (generic).
        view_groups: ``{"frontal": (...), "lateral": (...)}``: the format's view names of each group
            (``views=["frontal"]``); empty when the format records no view.
        image_list: how a table of the format is read as an image list; None: it cannot be.
        labels, images, patients: what the docs say about labels, image paths and patients / studies.
        example: a one-line example command for the docs.
    """

    name: FormatName
    title: str
    signature: tuple[str, ...]
    reader: Callable[..., LabelTable]
    labels: str
    images: str
    patients: str
    example: str
    required: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    task: Task | None = "multilabel"
    view_groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    image_list: ImageList | None = None

    @property
    def columns(self) -> list[str]:
        """Every column the format needs: the signature, then ``required``."""
        return list(dict.fromkeys((*self.signature, *self.required)))

    def matches(self, columns: Sequence[str]) -> bool:
        """Whether a CSV header ``columns`` is of this format."""
        present = set(columns)
        return bool(self.signature) and set(self.signature) <= present and not present & set(self.excludes)

    def detected_by(self) -> str:
        if not self.signature:
            return "a directory"
        text = ", ".join(f"`{c}`" for c in self.signature) + (" columns" if len(self.signature) > 1 else " column")
        return text + (f" (and no {', '.join(f'`{c}`' for c in self.excludes)})" if self.excludes else "")


_CHEXPERT_VIEWS = {_FRONTAL: ("AP", "PA", "LL", "RL", "Frontal"), _LATERAL: ("Lateral",)}

#: Every format, in detection order (the first whose signature is in the header wins).
TABLE_FORMATS: tuple[TableFormat, ...] = (
    TableFormat(
        name="cxrlt",
        title="CXR-LT 2023 / 2024 CSVs (`train.csv`, `train_labeled.csv`, `development*.csv`, `test*.csv`)",
        signature=("dicom_id", "fpath"),
        reader=read_cxrlt,
        labels="every column but `dicom_id`, `subject_id`, `study_id`, `fpath`, `ViewPosition` is a class, "
        "0 / 1 (blank = "
        "uncertain, NaN): 26 in 2023, 40 in 2024 task 1 (`classes: cxrlt2024-task2` keeps task 2's 26); "
        "with only those columns the table is unlabeled (for `ral predict`)",
        images="`fpath` (`files/p10/p10000032/s50414267/<dicom_id>.jpg`), relative to `root` = the MIMIC-CXR-JPG "
        "folder",
        patients="`subject_id` and `study_id`; without them, from `fpath`; view: an optional `ViewPosition` column",
        example="ral data stats cxr-lt-2024/train_labeled.csv",
        view_groups={_FRONTAL: ("PA", "AP"), _LATERAL: ("LATERAL", "LL")},
        image_list=ImageList(
            ("dicom_id", "fpath"),
            placeholders={"subject_id": "", "study_id": ""},
            keep=("subject_id", "study_id", "ViewPosition"),
        ),
    ),
    TableFormat(
        name="nih",
        title="NIH ChestX-ray14 `Data_Entry_2017*.csv`",
        signature=("Image Index", "Finding Labels"),
        required=("Patient ID",),
        reader=read_nih,
        labels="pipe-separated names; 15 classes (the 14 findings and `No Finding`)",
        images="`Image Index`, looked up in `root`, `root/images/` or the download's `root/images_NNN/images/`",
        patients="`Patient ID`; view `View Position`",
        example="ral data stats ChestX-ray14/Data_Entry_2017_v2020.csv",
        view_groups={_FRONTAL: ("PA", "AP")},
        image_list=ImageList(
            ("Image Index",),
            placeholders={"Finding Labels": "No Finding", "Patient ID": ""},
            keep=("Patient ID", "View Position"),
        ),
    ),
    TableFormat(
        name="chexpert",
        title="CheXpert `train.csv` / `valid.csv`",
        signature=("Path", "No Finding"),
        required=tuple(CHEXPERT_CLASSES),
        reader=read_chexpert,
        labels="14 observations: `1.0` positive, `0.0` negative, **blank -> 0** (unmentioned, the common practice), "
        '`-1.0` uncertain: `uncertain="ignore"` (default, NaN: masked in loss and metrics), `"ones"` or `"zeros"`',
        images="`Path` (`CheXpert-v1.0-small/train/...`); when it starts with the table folder's name the root "
        "defaults to the folder above",
        patients="`patientNNNNN` and `patientNNNNN/studyN` from the path; view `AP/PA` (frontal) or `Lateral`",
        example="ral data stats CheXpert-v1.0-small/train.csv --views frontal",
        view_groups=_CHEXPERT_VIEWS,
        image_list=ImageList(
            ("Path",), placeholders=dict.fromkeys(CHEXPERT_CLASSES, ""), keep=("Frontal/Lateral", "AP/PA")
        ),
    ),
    TableFormat(
        name="isic2018",
        title="ISIC 2018 task 3 ground truth",
        signature=("image", *ISIC2018_CLASSES),
        reader=read_isic2018,
        task="single",
        labels="one-hot, single-label (each row exactly one 1)",
        images="`<image>.jpg` in `root`, `root/images/` or `ISIC2018_Task3_{Training,Validation,Test}_Input/` "
        "inside or beside `root`",
        patients="the image (one per lesion)",
        example="ral data stats ISIC2018_Task3_Training_GroundTruth/ISIC2018_Task3_Training_GroundTruth.csv",
        image_list=ImageList(
            ("image",), placeholders={c: "1" if j == 0 else "0" for j, c in enumerate(ISIC2018_CLASSES)}
        ),
    ),
    TableFormat(
        name="aptos",
        title="APTOS 2019 `train.csv`",
        signature=("id_code", "diagnosis"),
        reader=read_aptos,
        task="single",
        labels="grade 0-4 -> classes No DR, Mild, Moderate, Severe, Proliferative DR",
        images="`<id_code>.png` in `root`, `root/train_images/`, `root/test_images/` or `root/images/`",
        patients="the image",
        example="ral data stats aptos2019/train.csv",
        image_list=ImageList(("id_code",), placeholders={"diagnosis": "0"}),
    ),
    TableFormat(
        name="padchest",
        title="PadChest `PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv(.gz)` (36 columns)",
        signature=("ImageID", "ImageDir", "Labels"),
        required=("StudyID", "PatientID", "Projection"),
        reader=read_padchest,
        labels="`Labels`, a Python-list string such as `['cardiomegaly', 'pleural effusion']` (read with "
        "`ast.literal_eval`); classes: every label that occurs, most frequent first (`max_classes=N` keeps the "
        "N most frequent, `classes=[...]` a named list)",
        images="`<ImageDir>/<ImageID>` (16-bit PNGs, see below), or `<ImageID>` in a flat folder, relative to `root`",
        patients="`PatientID` and `StudyID`; view `Projection`",
        example="ral data stats padchest/PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv.gz --max-classes 30",
        view_groups={_FRONTAL: ("PA", "AP", "AP_horizontal"), _LATERAL: ("L",)},
        image_list=ImageList(
            ("ImageID", "ImageDir"),
            placeholders={"Labels": "[]", "StudyID": "", "PatientID": "", "Projection": ""},
            keep=("StudyID", "PatientID", "Projection"),
        ),
    ),
    TableFormat(
        name="vindr",
        title="VinDr-CXR `train.csv` (one row per radiologist finding)",
        signature=("image_id", "class_name", "rad_id"),
        reader=read_vindr,
        labels="one multi-label row per image: a class is positive if any radiologist marked it "
        "(`vindr_agreement: any`, default) or more than half of the image's radiologists (`majority`); "
        "the 15 classes of `class_id` 0-14 (`No finding` included; without a `class_id` column, every "
        "`class_name` that occurs, sorted)",
        images="`<image_id>.png` (or `.jpg`, converted from the DICOMs) in `root`, `root/train/`, `root/test/` or "
        "`root/images/`",
        patients="not recorded (one per image)",
        example="ral data stats vinbigdata/train.csv --vindr-agreement majority",
        image_list=ImageList(("image_id",), placeholders={"class_name": "No finding", "rad_id": "0"}),
    ),
    TableFormat(
        name="mimic",
        title="MIMIC-CXR-JPG 2.x `mimic-cxr-2.0.0-chexpert.csv(.gz)` / `-negbio.csv(.gz)`",
        signature=("subject_id", "study_id", "No Finding"),
        excludes=("path", "dicom_id", "fpath", "Path"),
        reader=read_mimic,
        labels="labels per study, joined to the images of `mimic-cxr-2.0.0-metadata.csv(.gz)` beside the file: "
        "the 14 columns, `1.0` / `0.0` / `-1.0` (uncertain: `uncertain=`) / blank (-> 0); with "
        "`mimic-cxr-2.0.0-split.csv(.gz)` beside it, `dataset.train` / `val` / `test` read its `train` / "
        "`validate` / `test` part",
        images="`files/p<first 2 digits>/p<subject_id>/s<study_id>/<dicom_id>.jpg`, relative to the label file's "
        "folder",
        patients="`subject_id` and `study_id`; view `ViewPosition` of the metadata",
        view_groups={_FRONTAL: ("PA", "AP"), _LATERAL: ("LATERAL", "LL")},
        example="ral data stats mimic-cxr-jpg/2.0.0/mimic-cxr-2.0.0-chexpert.csv.gz --split train --views frontal",
    ),
    TableFormat(
        name="generic",
        title="generic CSV",
        signature=("path",),
        reader=read_generic,
        task=None,
        labels="every column but `path`, `subject_id`, `study_id`, `view` is a class: 0 / 1, blank / `nan` = "
        "uncertain (NaN); with `task: single` each row has exactly one 1; or one `label` column of class names "
        "(single-label)",
        images="`path`, relative to `root`",
        patients="`subject_id` (else the path) and `study_id`; view `view`",
        example="ral data stats my-dataset/labels.csv",
        view_groups={_FRONTAL: ("PA", "AP"), _LATERAL: ("LATERAL", "LL", "L")},
        image_list=ImageList(("path",), keep=("subject_id", "study_id", "view")),
    ),
    TableFormat(
        name="folder",
        title="a folder per class",
        signature=(),
        task="single",
        reader=read_folder,
        labels="single-label, classes = sub-folder names (sorted)",
        images="every image file below each class folder (hidden files ignored)",
        patients="the file",
        example="ral data stats skin-lesions/",
    ),
)
FORMAT_BY_NAME: dict[str, TableFormat] = {f.name: f for f in TABLE_FORMATS}


def detect_format(columns: Sequence[str], source: str | os.PathLike | None = None) -> FormatName:
    """Name of the first format of :data:`TABLE_FORMATS` whose signature columns are all in ``columns``.

    Raises:
        TableError: no known format matches (the message names ``source``, lists the columns received
            and the signatures).
    """
    for fmt in TABLE_FORMATS:
        if fmt.matches(columns):
            return fmt.name
    expected = "; ".join(f"{f.name} ({', '.join(f.signature)})" for f in TABLE_FORMATS if f.signature)
    where = f"{source}: " if source is not None else ""
    raise TableError(
        f"{where}cannot detect the table format from its columns {list(columns)}; expected the columns of one of: "
        f"{expected}; or give the format",
        path=source,
    )


def select_views(table: LabelTable, views: Sequence[str]) -> LabelTable:
    """Images whose view is one of ``views`` (the format's names, or the groups ``frontal`` / ``lateral``).

    Raises:
        TableError: the format records no views, or no image has one of ``views``.
    """
    fmt = FORMAT_BY_NAME.get(table.format)
    if table.views is None or fmt is None:
        with_views = [f.name for f in TABLE_FORMATS if f.view_groups]
        raise TableError(
            f"{table.source}: selecting views {list(views)} needs a table with views ({with_views}); it has none",
            path=table.source,
            value=list(views),
        )
    allowed = {v for name in views for v in (name, *fmt.view_groups.get(str(name).lower(), ()))}
    keep = [i for i, view in enumerate(table.views) if view in allowed]
    if not keep and len(table):
        found = sorted(set(table.views))
        raise TableError(
            f"{table.source}: no image has a view in {list(views)}; views in the table: {found}",
            path=table.source,
            value=list(views),
        )
    return table.subset(keep)


def view_types(table: LabelTable) -> list[str] | None:
    """Per image "frontal", "lateral" or (neither group) the format's own view name; None without views."""
    if table.views is None:
        return None
    groups = FORMAT_BY_NAME[table.format].view_groups if table.format in FORMAT_BY_NAME else {}
    group_of = {view: group for group, names in groups.items() for view in names}
    return [group_of.get(view, view) for view in table.views]


def formats_reference() -> str:
    """The formats table of docs/dataset.md (markdown), one row per entry of :data:`TABLE_FORMATS`."""
    rows = [
        "| format (`--format`) | detected by | labels | image path | patient / study / view |",
        "| --- | --- | --- | --- | --- |",
    ]
    rows += [
        f"| `{f.name}` — {f.title} | {f.detected_by()} | {f.labels} | {f.images} | {f.patients} |"
        for f in TABLE_FORMATS
    ]
    width = max(len(f.example) for f in TABLE_FORMATS)
    rows += ["", "One example per format:", "", "```bash"]
    rows += [f"{f.example:<{width}s}  # {f.name}" for f in TABLE_FORMATS]
    return "\n".join([*rows, "```"]) + "\n"


if __name__ == "__main__":
    sys.stdout.write(formats_reference())
