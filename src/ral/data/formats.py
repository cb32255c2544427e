"""The table of label-table formats `ral` reads (name, signature columns, reader), detection and ``load_table``.

Detection (:func:`detect_format`), the column check before a reader runs, the error listing
the formats and the formats table of docs/dataset.md (:func:`formats_reference`,
``python -m ral.data.formats``) all come from :data:`TABLE_FORMATS`. Every reader returns a
:class:`~ral.data.table.LabelTable`; a bad row raises ``ValueError`` naming the file, line,
column and value, or is dropped with a warning and a count when ``skip_bad=True``. The readers
live in :mod:`ral.data.readers` (one module per family of formats). :func:`load_table` also
checks the image paths (:func:`ral.data.checks.check_paths`: duplicates, paths escaping the
root); :func:`load_image_list` reads the images of a table without its labels (``ral predict``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ral.data import images as _images
from ral.data._bad_rows import BAD_ROW_ERRORS
from ral.data.checks import check_paths
from ral.data.classes import CHEXPERT_CLASSES, ISIC2018_CLASSES, resolve_classes
from ral.data.images import IMAGE_EXTENSIONS
from ral.data.readers._common import ReadOptions, read_csv, require
from ral.data.readers.chest import VINDR_AGREEMENTS, read_chexpert, read_nih, read_padchest, read_vindr
from ral.data.readers.mimic import MIMIC_SPLITS, read_cxrlt, read_mimic
from ral.data.readers.plain import read_aptos, read_folder, read_generic, read_isic2018
from ral.data.table import LabelTable

__all__ = [
    "DEFAULT_HINTS",
    "FORMATS",
    "MIMIC_SPLITS",
    "TABLE_FORMATS",
    "TASKS",
    "UNCERTAIN_POLICIES",
    "VINDR_AGREEMENTS",
    "TableFormat",
    "detect_format",
    "formats_reference",
    "list_images",
    "load_image_list",
    "load_table",
    "most_frequent",
    "read_csv",
    "select_classes",
    "select_views",
    "view_types",
]

UNCERTAIN_POLICIES = ("ignore", "ones", "zeros")
#: How the options of :func:`load_table` are named in its hints; callers with other names
#: (``--skip-bad``, ``dataset.skip_bad: true``) pass their own, or None for an option they lack.
DEFAULT_HINTS = {"skip_bad": "skip_bad=True", "allow_outside_root": "allow_outside_root=True"}
TASKS = ("auto", "multilabel", "single")
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
        name: the ``format=`` / ``--format`` / ``dataset.format`` value.
        title: the dataset and its file names (docs).
        signature: header columns that identify the format (all present); empty for "folder".
        reader: ``reader(frame, source, options) -> LabelTable`` (``reader(folder, options)`` for "folder").
        required: further columns the reader needs; checked, with the signature, before it runs.
        excludes: columns whose presence rules the format out in detection.
        task: "multilabel" or "single"; None when the table decides (generic).
        view_groups: ``{"frontal": (...), "lateral": (...)}``: the format's view names of each group
            (``views=["frontal"]``); empty when the format records no view.
        image_list: how a table of the format is read as an image list; None: it cannot be.
        labels, images, patients: what the docs say about labels, image paths and patients / studies.
        example: a one-line example command for the docs.
    """

    name: str
    title: str
    signature: tuple[str, ...]
    reader: Callable[..., LabelTable]
    labels: str
    images: str
    patients: str
    example: str
    required: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    task: str | None = "multilabel"
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
        example="ral data stats CheXpert-v1.0-small/train.csv --view frontal",
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
        example="ral data stats mimic-cxr-jpg/2.0.0/mimic-cxr-2.0.0-chexpert.csv.gz --split train --view frontal",
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
FORMATS: tuple[str, ...] = tuple(FORMAT_BY_NAME)


def detect_format(columns: Sequence[str]) -> str:
    """Name of the first format of :data:`TABLE_FORMATS` whose signature columns are all in ``columns``.

    Raises:
        ValueError: no known format matches (the message lists the columns received and the signatures).
    """
    for fmt in TABLE_FORMATS:
        if fmt.matches(columns):
            return fmt.name
    expected = "; ".join(f"{f.name} ({', '.join(f.signature)})" for f in TABLE_FORMATS if f.signature)
    raise ValueError(
        f"cannot detect the table format from its columns {list(columns)}; expected the columns of one of: "
        f"{expected}; or pass format=..."
    )


def load_table(
    path: str | os.PathLike,
    *,
    format: str | None = None,
    root: str | os.PathLike | None = None,
    uncertain: str = "ignore",
    skip_bad: bool = False,
    classes: Sequence[str] | str | None = None,
    check_images: str = "exists",
    task: str = "auto",
    views: Sequence[str] | None = None,
    split: str | None = None,
    vindr_agreement: str = "any",
    max_classes: int | None = None,
    allow_outside_root: bool = False,
    hints: Mapping[str, str | None] | None = None,
) -> LabelTable:
    """Read a label table (CSV or ``.csv.gz`` file, or a folder-per-class tree) into a LabelTable.

    Args:
        path: the CSV file, or a folder whose sub-folders are the classes (format "folder").
        format: one of ``FORMATS``; ``None`` detects it from the CSV header.
        root: folder that image paths are relative to (default: the table's folder; for
            CheXpert the folder above it when paths start with the table folder's name).
        uncertain: -1 labels (CheXpert, MIMIC-CXR-JPG): "ignore" (NaN, masked in the loss), "ones" or "zeros".
        skip_bad: drop bad rows (invalid labels, missing/corrupt images) with a warning and a
            count instead of raising.
        classes: keep only these classes, in this order, or the name of a list of
            :data:`ral.data.classes.CLASS_SETS` (default: all of the table's classes). A table with
            no label columns gets NaN (unknown) labels for them.
        check_images: "exists" (default: every image file must exist), "decode" (must also
            decode) or "none" (labels only, e.g. for ``ral data stats``).
        task: "auto" (the format decides; one-hot generic tables are multi-label), "multilabel" or
            "single" (a generic one-hot table with exactly one positive per row).
        views: keep only images of these views (the format's names such as ``PA``, or the groups
            ``frontal`` / ``lateral``); None keeps all.
        split: the part of an official split file to read (MIMIC-CXR-JPG: "train", "validate",
            "test"); None reads everything. Formats without a split file ignore it.
        vindr_agreement: VinDr-CXR: a class is positive if "any" radiologist marked it, or a "majority".
        max_classes: keep the ``max_classes`` most frequent classes (in table order); not with ``classes``.
        allow_outside_root: accept relative image paths that lead out of the root (``../``).
        hints: how the caller names ``skip_bad`` / ``allow_outside_root`` in error hints
            (see ``DEFAULT_HINTS``; None for an option the caller does not offer).

    Returns:
        LabelTable with N rows and C classes; ``labels`` float32 (N, C), NaN = uncertain.

    Raises:
        FileNotFoundError: the table, a file it needs (MIMIC's metadata) or an image file is missing.
        ValueError: unknown format / option / class, missing column, an invalid label value, or an
            image path outside the root.
    """
    hints = {**DEFAULT_HINTS, **(hints or {})}
    try:
        table = _read_table(
            path,
            format=format,
            root=root,
            uncertain=uncertain,
            skip_bad=skip_bad,
            classes=classes,
            task=task,
            views=views,
            split=split,
            vindr_agreement=vindr_agreement,
            max_classes=max_classes,
        )
        check_paths(table, allow_outside_root=allow_outside_root, hint=hints["allow_outside_root"])
        return _images.check_images(table, check_images, skip_bad=skip_bad)
    except BAD_ROW_ERRORS as exc:
        raise type(exc)(exc.summary, hints["skip_bad"]) from None


def _read_table(
    path: str | os.PathLike,
    *,
    format: str | None,
    root: str | os.PathLike | None,
    uncertain: str,
    skip_bad: bool,
    classes: Sequence[str] | str | None,
    task: str,
    views: Sequence[str] | None,
    split: str | None,
    vindr_agreement: str,
    max_classes: int | None,
) -> LabelTable:
    """:func:`load_table` without its image checks."""
    path = Path(path)
    for name, value, choices in (
        ("format", format, (None, *FORMATS)),
        ("uncertain", uncertain, UNCERTAIN_POLICIES),
        ("task", task, TASKS),
        ("vindr_agreement", vindr_agreement, VINDR_AGREEMENTS),
        ("split", split, (None, *MIMIC_SPLITS)),
    ):
        if value not in choices:
            raise ValueError(f"{name} must be one of {tuple(c for c in choices if c is not None)}, got {value!r}")
    wanted = resolve_classes(classes)
    if max_classes is not None:
        if isinstance(max_classes, bool) or not isinstance(max_classes, int) or max_classes < 1:
            raise ValueError(f"max_classes must be an integer >= 1, got {max_classes!r}")
        if wanted is not None:
            raise ValueError("give classes or max_classes, not both")
    if not path.exists():
        raise FileNotFoundError(f"label table not found: {path}")
    options = ReadOptions(
        root=Path(root) if root is not None else (path if path.is_dir() else path.parent),
        root_given=root is not None,
        uncertain=uncertain,
        skip_bad=skip_bad,
        task=task,
        classes=tuple(wanted) if wanted is not None else None,
        split=split,
        vindr_agreement=vindr_agreement,
    )
    if path.is_dir() or format == "folder":
        if not path.is_dir():
            raise ValueError(f"format 'folder' needs a directory, got file {path}")
        if format not in (None, "folder"):
            raise ValueError(f"format {format!r} needs a CSV file, got directory {path}")
        fmt = FORMAT_BY_NAME["folder"]
        _check_task(fmt, task, path)
        table = read_folder(path, options)
    else:
        frame = read_csv(path)
        fmt = FORMAT_BY_NAME[format] if format is not None else FORMAT_BY_NAME[detect_format(list(frame.columns))]
        _check_task(fmt, task, path)
        require(frame, fmt.columns, path, fmt.name)
        table = fmt.reader(frame, path, options)
    if views is not None:
        table = select_views(table, views)
    if max_classes is not None:
        table = most_frequent(table, max_classes)
    if wanted is not None:
        table = select_classes(table, wanted)
    return table


def _image_list_format(columns: Sequence[str]) -> TableFormat:
    """The format of an image list: its label-table format when detected, else the first whose image columns it has."""
    try:
        detected = FORMAT_BY_NAME[detect_format(columns)]
    except ValueError:  # not a label table of a known format: match by the image-list columns below
        detected = None
    if detected is not None and detected.image_list:
        return detected
    for fmt in TABLE_FORMATS:
        if fmt.image_list and set(fmt.image_list.columns) <= set(columns):
            return fmt
    expected = "; ".join(f"{f.name}: {', '.join(f.image_list.columns)}" for f in TABLE_FORMATS if f.image_list)
    raise ValueError(f"no image columns among {list(columns)}; expected those of a format ({expected})")


def load_image_list(
    path: str | os.PathLike,
    *,
    format: str | None = None,
    root: str | os.PathLike | None = None,
    allow_outside_root: bool = False,
    hints: Mapping[str, str | None] | None = None,
) -> LabelTable:
    """The images of a table of any CSV format with image lists, without labels (label columns are not needed).

    The format is ``format`` or the table's (:func:`detect_format`), else the first of
    :data:`TABLE_FORMATS` whose ``image_list.columns`` the header has. Only those columns and the
    format's ``image_list.keep`` columns (patient, study, view) are read (label columns, when there, are
    ignored, also bad values in them); ids and image paths are
    those :func:`load_table` gives (``dicom_id`` / ``fpath`` for CXR-LT, ``path`` for the generic
    layout, ``<image>.jpg`` found as for ISIC 2018, ...).

    Returns:
        LabelTable with no classes (labels of shape (N, 0)); every image file exists.

    Raises:
        FileNotFoundError: the table or an image is missing. ValueError: no image columns, an empty
            or repeated id, or a path outside the root (``hints`` as in :func:`load_table`).
    """
    hints = {**DEFAULT_HINTS, **(hints or {})}
    path = Path(path)
    if format is not None and (format not in FORMAT_BY_NAME or not FORMAT_BY_NAME[format].image_list):
        listed = tuple(f.name for f in TABLE_FORMATS if f.image_list)
        raise ValueError(f"format must be one of {listed} for a table of images, got {format!r}")
    if not path.is_file():
        raise FileNotFoundError(f"table not found: {path}")
    frame = read_csv(path)
    try:
        fmt = FORMAT_BY_NAME[format] if format is not None else _image_list_format(list(frame.columns))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    listing = fmt.image_list
    require(frame, listing.columns, path, fmt.name)
    columns = [*listing.columns, *(c for c in listing.keep if c in frame.columns)]
    images = frame[columns].assign(**{k: v for k, v in listing.placeholders.items() if k not in columns})
    options = ReadOptions(root=Path(root) if root is not None else path.parent, root_given=root is not None)
    try:
        table = fmt.reader(images, path, options)
        table = replace(table, class_names=[], labels=np.zeros((len(table), 0), dtype=np.float32), task="multilabel")
        check_paths(table, allow_outside_root=allow_outside_root, hint=hints["allow_outside_root"])
        return _images.check_images(table, "exists")
    except BAD_ROW_ERRORS as exc:
        raise type(exc)(exc.summary, None) from None


def list_images(folder: str | os.PathLike) -> tuple[list[Path], list[Path]]:
    """The image files under ``folder`` (recursively, sorted) and the other files found there.

    Hidden files and folders (starting with ".") are left out of both lists.
    """
    folder = Path(folder)
    images, others = [], []
    for file in sorted(folder.rglob("*")):
        rel = file.relative_to(folder)
        if file.is_file() and not any(part.startswith(".") for part in rel.parts):
            (images if file.suffix.lower() in IMAGE_EXTENSIONS else others).append(file)
    return images, others


def _check_task(fmt: TableFormat, task: str, path: Path) -> None:
    if fmt.task is not None and task not in ("auto", fmt.task):
        raise ValueError(
            f"{path}: format {fmt.name!r} is {fmt.task}, task {task!r} was asked for (only generic tables "
            "can be read either way)"
        )


def select_classes(table: LabelTable, classes: Sequence[str]) -> LabelTable:
    """Table restricted to ``classes`` (in that order); unknown names raise ValueError.

    A table without label columns (an unlabeled table to predict) gets NaN labels for ``classes``.
    """
    if table.num_classes == 0:
        return replace(table, class_names=list(classes), labels=np.full((len(table), len(classes)), np.nan))
    unknown = [c for c in classes if c not in table.class_names]
    if unknown:
        raise ValueError(f"unknown class name(s) {unknown} for {table.source}; available: {table.class_names}")
    idx = [table.class_names.index(c) for c in classes]
    return replace(table, class_names=list(classes), labels=table.labels[:, idx])


def most_frequent(table: LabelTable, count: int) -> LabelTable:
    """The ``count`` classes with the most positives (ties: the earlier column), in table order."""
    counts = table.class_counts()
    ranked = sorted(range(table.num_classes), key=lambda j: -int(counts[j]))
    keep = sorted(ranked[:count])
    return select_classes(table, [table.class_names[j] for j in keep])


def select_views(table: LabelTable, views: Sequence[str]) -> LabelTable:
    """Images whose view is one of ``views`` (the format's names, or the groups ``frontal`` / ``lateral``).

    Raises:
        ValueError: the format records no views, or no image has one of ``views``.
    """
    fmt = FORMAT_BY_NAME.get(table.format)
    if table.views is None or fmt is None:
        with_views = [f.name for f in TABLE_FORMATS if f.view_groups]
        raise ValueError(f"{table.source}: views={list(views)} needs a table with views ({with_views}); it has none")
    allowed = {v for name in views for v in (name, *fmt.view_groups.get(str(name).lower(), ()))}
    keep = [i for i, view in enumerate(table.views) if view in allowed]
    if not keep and len(table):
        found = sorted(set(table.views))
        raise ValueError(f"{table.source}: no image has a view in {list(views)}; views in the table: {found}")
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
