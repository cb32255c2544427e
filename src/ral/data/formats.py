"""Readers for the label-table formats `ral` understands, and format auto-detection.

Every reader returns a :class:`~ral.data.table.LabelTable`. Labels are validated against
the format's value set; a bad row raises ``ValueError`` naming the file, line, column and
value, or is dropped with a warning and a count when ``skip_bad=True``.

Each CSV format has one image locator in ``IMAGE_COLUMNS`` (its id / path columns and where its
images are): the label readers use it, and :func:`load_image_list` reads a table of any format
without label columns (for prediction). :func:`load_table` also checks the image paths
(:func:`ral.data.checks.check_paths`: duplicates, paths escaping the root).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ral.data import images as _images
from ral.data._bad_rows import BAD_ROW_ERRORS, BadRows, csv_line
from ral.data.checks import check_paths
from ral.data.classes import (
    APTOS_CLASSES,
    CHEXPERT_CLASSES,
    CXRLT_CLASSES,
    ISIC2018_CLASSES,
    NIH_CLASSES,
)
from ral.data.images import IMAGE_EXTENSIONS
from ral.data.table import LabelTable

FORMATS = ("generic", "cxrlt", "nih", "chexpert", "isic2018", "aptos", "folder")
UNCERTAIN_POLICIES = ("ignore", "ones", "zeros")

CXRLT_META = ("dicom_id", "subject_id", "study_id", "fpath")
CHEXPERT_META = ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA")


def detect_format(columns: Sequence[str]) -> str:
    """Name of the CSV format whose characteristic header columns are all in ``columns``.

    Raises:
        ValueError: no known format matches (the message lists the columns received).
    """
    cols = set(columns)
    if {"dicom_id", "fpath"} <= cols:
        return "cxrlt"
    if {"Image Index", "Finding Labels"} <= cols:
        return "nih"
    if "Path" in cols and cols & set(CHEXPERT_CLASSES):
        return "chexpert"
    if "image" in cols and set(ISIC2018_CLASSES) <= cols:
        return "isic2018"
    if {"id_code", "diagnosis"} <= cols:
        return "aptos"
    if "path" in cols:
        return "generic"
    raise ValueError(
        f"cannot detect the table format from its columns {list(columns)}; expected one of: "
        "generic (path, subject_id, classes...), cxrlt (dicom_id, ..., fpath), "
        "nih (Image Index, Finding Labels, Patient ID), chexpert (Path, observations...), "
        "isic2018 (image, MEL, NV, ...), aptos (id_code, diagnosis); or pass format=..."
    )


#: How the options of :func:`load_table` are named in its hints; callers with other names
#: (``--skip-bad``, ``dataset.skip_bad: true``) pass their own, or None for an option they lack.
DEFAULT_HINTS = {"skip_bad": "skip_bad=True", "allow_outside_root": "allow_outside_root=True"}


def load_table(
    path: str | os.PathLike,
    *,
    format: str | None = None,
    root: str | os.PathLike | None = None,
    uncertain: str = "ignore",
    skip_bad: bool = False,
    classes: Sequence[str] | None = None,
    check_images: str = "exists",
    allow_outside_root: bool = False,
    hints: Mapping[str, str | None] | None = None,
) -> LabelTable:
    """Read a label table (CSV file, or a folder-per-class tree) into a LabelTable.

    Args:
        path: the CSV file, or a folder whose sub-folders are the classes (format "folder").
        format: one of ``FORMATS``; ``None`` detects it from the CSV header.
        root: folder that image paths are relative to (default: the table's folder; for
            CheXpert the folder above it when paths start with the table folder's name).
        uncertain: CheXpert's -1 labels: "ignore" (NaN, masked in the loss), "ones" or "zeros".
        skip_bad: drop bad rows (invalid labels, missing/corrupt images) with a warning and a
            count instead of raising.
        classes: keep only these classes, in this order (default: all of the format's classes).
        check_images: "exists" (default: every image file must exist), "decode" (must also
            decode) or "none" (labels only, e.g. for ``ral data stats``).
        allow_outside_root: accept relative image paths that lead out of the root (``../``).
        hints: how the caller names ``skip_bad`` / ``allow_outside_root`` in error hints
            (see ``DEFAULT_HINTS``; None for an option the caller does not offer).

    Returns:
        LabelTable with N rows and C classes; ``labels`` float32 (N, C), NaN = uncertain.

    Raises:
        FileNotFoundError: the table or an image file is missing.
        ValueError: unknown format / policy / class, missing column, an invalid label value, or
            an image path outside the root.
    """
    hints = {**DEFAULT_HINTS, **(hints or {})}
    path = Path(path)
    if format is not None and format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    if uncertain not in UNCERTAIN_POLICIES:
        raise ValueError(f"uncertain must be one of {UNCERTAIN_POLICIES}, got {uncertain!r}")
    if not path.exists():
        raise FileNotFoundError(f"label table not found: {path}")
    try:
        if path.is_dir() or format == "folder":
            if not path.is_dir():
                raise ValueError(f"format 'folder' needs a directory, got file {path}")
            if format not in (None, "folder"):
                raise ValueError(f"format {format!r} needs a CSV file, got directory {path}")
            table = read_folder(path, skip_bad=skip_bad)
        else:
            frame = read_csv(path)
            fmt = format or detect_format(list(frame.columns))
            base = Path(root) if root is not None else path.parent
            reader = _READERS[fmt]
            table = reader(frame, path, base, uncertain=uncertain, skip_bad=skip_bad, root_given=root is not None)
        if classes is not None:
            table = select_classes(table, classes)
        check_paths(table, allow_outside_root=allow_outside_root, hint=hints["allow_outside_root"])
        return _images.check_images(table, check_images, skip_bad=skip_bad)
    except BAD_ROW_ERRORS as exc:
        raise type(exc)(exc.summary, hints["skip_bad"]) from None


def load_image_list(
    path: str | os.PathLike,
    *,
    format: str | None = None,
    root: str | os.PathLike | None = None,
    allow_outside_root: bool = False,
    hints: Mapping[str, str | None] | None = None,
) -> LabelTable:
    """The images of a table of any CSV format, without labels (label columns are not needed).

    The format is ``format`` or the first of ``IMAGE_COLUMNS`` whose columns the header has; ids
    and image paths are those :func:`load_table` would read (e.g. ``dicom_id`` and ``fpath`` for
    CXR-LT, the ``path`` column for the generic layout).

    Returns:
        LabelTable with no classes (labels of shape (N, 0)); every image file exists.

    Raises:
        FileNotFoundError: the table or an image is missing. ValueError: no id / path columns,
            an empty id or path, or a path outside the root.
    """
    hints = {**DEFAULT_HINTS, **(hints or {})}
    path = Path(path)
    if format is not None and format not in IMAGE_COLUMNS:
        raise ValueError(f"format must be one of {tuple(IMAGE_COLUMNS)} for a CSV of images, got {format!r}")
    if not path.is_file():
        raise FileNotFoundError(f"table not found: {path}")
    frame = read_csv(path)
    fmt = format or next((f for f, (columns, _) in IMAGE_COLUMNS.items() if set(columns) <= set(frame.columns)), None)
    if fmt is None:
        expected = "; ".join(f"{f}: {', '.join(columns)}" for f, (columns, _) in IMAGE_COLUMNS.items())
        raise ValueError(
            f"{path}: no image columns among {list(frame.columns)}; expected those of a format ({expected})"
        )
    columns, locate = IMAGE_COLUMNS[fmt]
    _require(frame, columns, path, fmt)
    try:
        bad = BadRows(path, len(frame))
        for column in columns:
            _blank_ids(frame, column, bad)
        keep = bad.resolve(False)
        ids, paths, subjects, base = locate(
            frame, path, Path(root) if root is not None else path.parent, root is not None
        )
        table = LabelTable(
            ids=[ids[i] for i in keep],
            paths=[paths[i] for i in keep],
            subject_ids=[subjects[i] for i in keep],
            class_names=[],
            labels=np.zeros((len(keep), 0), dtype=np.float32),
            root=base,
            format=fmt,
            source=path,
        )
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


def read_csv(path: Path) -> pd.DataFrame:
    """All cells as strings ("" for blank), header names stripped; errors name the file."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, index_col=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError as exc:
        raise ValueError(f"label table {path} is empty") from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot parse label table {path}: {exc}") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def select_classes(table: LabelTable, classes: Sequence[str]) -> LabelTable:
    """Table restricted to ``classes`` (in that order); unknown names raise ValueError."""
    unknown = [c for c in classes if c not in table.class_names]
    if unknown:
        raise ValueError(f"unknown class name(s) {unknown} for {table.source}; available: {table.class_names}")
    idx = [table.class_names.index(c) for c in classes]
    labels = table.labels[:, idx]
    return LabelTable(
        ids=table.ids,
        paths=table.paths,
        subject_ids=table.subject_ids,
        class_names=list(classes),
        labels=labels,
        task=table.task,
        root=table.root,
        format=table.format,
        source=table.source,
    )


# --- shared pieces ----------------------------------------------------------------------------


def _require(frame: pd.DataFrame, columns: Sequence[str], source: Path, fmt: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{source}: missing column(s) {missing} required by format {fmt!r}; columns found: {list(frame.columns)}"
        )


def _parse_numeric(
    frame: pd.DataFrame,
    columns: Sequence[str],
    allowed: Sequence[float],
    bad: BadRows,
    *,
    blank: float | None,
    remap: dict[float, float] | None = None,
) -> np.ndarray:
    """Parse label columns into float32 (N, C); values outside ``allowed`` mark the row bad.

    ``blank`` is the value of an empty cell (None: blank is invalid); ``remap`` maps parsed
    values to stored ones (e.g. CheXpert -1 -> NaN).
    """
    out = np.empty((len(frame), len(columns)), dtype=np.float32)
    expected = ", ".join(f"{v:g}" for v in allowed) + (", blank" if blank is not None else "")
    allowed_set = np.asarray(allowed, dtype=np.float64)
    for j, col in enumerate(columns):
        codes, uniques = pd.factorize(frame[col], use_na_sentinel=False)  # few distinct strings
        text = np.array([str(u).strip() for u in uniques], dtype=object)
        is_blank = np.isin(text, ["", "nan", "NaN", "NA"])
        num = pd.to_numeric(pd.Series(text, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
        invalid = ~is_blank & ~np.isin(num, allowed_set)
        if blank is None:
            invalid |= is_blank
        values = np.where(is_blank, np.nan if blank is None else blank, num)
        for src, dst in (remap or {}).items():
            values = np.where(values == src, dst, values)
        values[invalid] = np.nan  # the row is bad: raised, or dropped with skip_bad
        bad.add(
            invalid[codes],
            lambda i, col=col: (
                f"{csv_line(i)}, column {col!r}: invalid label value {frame[col].iloc[i]!r} "
                f"(expected one of {expected})"
            ),
        )
        out[:, j] = values[codes]
    return out


def _finish(
    frame: pd.DataFrame,
    bad: BadRows,
    skip_bad: bool,
    *,
    ids: Sequence[str],
    paths: Sequence[str],
    subject_ids: Sequence[str],
    class_names: Sequence[str],
    labels: np.ndarray,
    task: str,
    root: Path,
    fmt: str,
    source: Path,
) -> LabelTable:
    keep = bad.resolve(skip_bad)
    return LabelTable(
        ids=[str(ids[i]) for i in keep],
        paths=[str(paths[i]) for i in keep],
        subject_ids=[str(subject_ids[i]) for i in keep],
        class_names=list(class_names),
        labels=labels[keep],
        task=task,  # type: ignore[arg-type]
        root=root,
        format=fmt,
        source=source,
    )


def _text(frame: pd.DataFrame, column: str) -> list[str]:
    """A text column (ids, paths) as stripped strings."""
    return [v.strip() for v in frame[column].tolist()]


def _blank_ids(frame: pd.DataFrame, column: str, bad: BadRows) -> None:
    empty = np.array([not v for v in _text(frame, column)], dtype=bool)
    bad.add(empty, lambda i: f"{csv_line(i)}, column {column!r}: empty value")


def _locate(root: Path, names: Sequence[str], subdirs: Sequence[Path]) -> Path:
    """First of ``root`` / ``subdirs`` that holds the first image name (default ``root``)."""
    if names:
        for folder in (root, *subdirs):
            if (folder / names[0]).is_file():
                return folder
    return root


def _warn_ignored(frame: pd.DataFrame, used: Sequence[str], source: Path, fmt: str) -> None:
    extra = [c for c in frame.columns if c not in used]
    if extra:
        warnings.warn(f"{source}: columns {extra} are not part of format {fmt!r} and were ignored", stacklevel=4)


# --- where each format's images are --------------------------------------------------------
# A locator maps (frame, source, root, root_given) to (ids, image paths, subject ids, image root).
ImageList = tuple[list[str], list[str], list[str], Path]


def _optional(frame: pd.DataFrame, column: str, default: list[str]) -> list[str]:
    return _text(frame, column) if column in frame.columns else default


def _generic_images(frame, source, root, root_given) -> ImageList:
    paths = _text(frame, "path")
    return paths, paths, _optional(frame, "subject_id", paths), root


def _cxrlt_images(frame, source, root, root_given) -> ImageList:
    ids = _text(frame, "dicom_id")
    return ids, _text(frame, "fpath"), _optional(frame, "subject_id", ids), root


def _nih_images(frame, source, root, root_given) -> ImageList:
    names = _text(frame, "Image Index")
    return names, _nih_paths(root, names), _optional(frame, "Patient ID", names), root


def _nih_paths(root: Path, names: Sequence[str]) -> list[str]:
    """Image paths relative to ``root``: flat, ``images/``, or the download's ``images_NNN/images/``."""
    if not names or (root / names[0]).is_file():
        return list(names)
    if (root / "images" / names[0]).is_file():
        return [f"images/{n}" for n in names]
    found: dict[str, str] = {}
    for part in sorted(root.glob("images_*/images")):
        rel = part.relative_to(root).as_posix()
        for entry in os.scandir(part):
            found.setdefault(entry.name, f"{rel}/{entry.name}")
    return [found.get(n, n) for n in names]


_PATIENT_RE = re.compile(r"(patient\d+)")


def _chexpert_images(frame, source, root, root_given) -> ImageList:
    paths = _text(frame, "Path")
    if not root_given and paths and Path(paths[0]).parts[:1] == (source.parent.name,):
        root = source.parent.parent  # paths start with "CheXpert-v1.0-small/..."
    subjects = [(m.group(1) if (m := _PATIENT_RE.search(p)) else p) for p in paths]
    return paths, paths, subjects, root


ISIC_IMAGE_DIRS = ("ISIC2018_Task3_Training_Input", "ISIC2018_Task3_Validation_Input", "ISIC2018_Task3_Test_Input")


def _isic2018_images(frame, source, root, root_given) -> ImageList:
    """``<image>.jpg`` in the root, ``images/``, or the official ``ISIC2018_Task3_*_Input`` folders
    inside or beside the root (the first image decides)."""
    ids = _text(frame, "image")
    names = [f"{n}.jpg" for n in ids]
    candidates = [root / "images", *(d for name in ISIC_IMAGE_DIRS for d in (root / name, root.parent / name))]
    return ids, names, ids, _locate(root, names, candidates)


def _aptos_images(frame, source, root, root_given) -> ImageList:
    """``<id_code>.png`` in the root, ``train_images/``, ``test_images/`` or ``images/`` (the first image decides)."""
    ids = _text(frame, "id_code")
    names = [f"{n}.png" for n in ids]
    return ids, names, ids, _locate(root, names, [root / "train_images", root / "test_images", root / "images"])


#: Per CSV format: the columns that name its images, and its image locator. The order is the
#: detection order of :func:`load_image_list` (a header holding several picks the first).
IMAGE_COLUMNS: dict[str, tuple[tuple[str, ...], Callable[..., ImageList]]] = {
    "cxrlt": (("dicom_id", "fpath"), _cxrlt_images),
    "nih": (("Image Index",), _nih_images),
    "chexpert": (("Path",), _chexpert_images),
    "isic2018": (("image",), _isic2018_images),
    "aptos": (("id_code",), _aptos_images),
    "generic": (("path",), _generic_images),
}


# --- one reader per format --------------------------------------------------------------------


def _read(frame, source, root, root_given, bad, skip_bad, fmt, *, class_names, labels, task) -> LabelTable:
    """The table of a format's labels, with the images its locator finds."""
    ids, paths, subjects, root = IMAGE_COLUMNS[fmt][1](frame, source, root, root_given)
    return _finish(
        frame,
        bad,
        skip_bad,
        ids=ids,
        paths=paths,
        subject_ids=subjects,
        class_names=class_names,
        labels=labels,
        task=task,
        root=root,
        fmt=fmt,
        source=source,
    )


def read_generic(frame, source, root, *, uncertain, skip_bad, root_given) -> LabelTable:
    """``path, subject_id, <class>...``: 0/1 per class, blank/NaN = uncertain (NaN)."""
    _require(frame, ["path"], source, "generic")
    classes = [c for c in frame.columns if c not in ("path", "subject_id")]
    if not classes:
        raise ValueError(f"{source}: no class columns besides 'path' and 'subject_id'")
    bad = BadRows(source, len(frame))
    _blank_ids(frame, "path", bad)
    labels = _parse_numeric(frame, classes, (0.0, 1.0), bad, blank=np.nan)
    return _read(
        frame, source, root, root_given, bad, skip_bad, "generic", class_names=classes, labels=labels, task="multilabel"
    )


def read_cxrlt(frame, source, root, *, uncertain, skip_bad, root_given) -> LabelTable:
    """CXR-LT 2023: ``dicom_id, subject_id, study_id, <26 findings>, fpath`` (0/1)."""
    _require(frame, [*CXRLT_META, *CXRLT_CLASSES], source, "cxrlt")
    _warn_ignored(frame, [*CXRLT_META, *CXRLT_CLASSES], source, "cxrlt")
    bad = BadRows(source, len(frame))
    _blank_ids(frame, "fpath", bad)
    labels = _parse_numeric(frame, CXRLT_CLASSES, (0.0, 1.0), bad, blank=np.nan)
    return _read(
        frame,
        source,
        root,
        root_given,
        bad,
        skip_bad,
        "cxrlt",
        class_names=CXRLT_CLASSES,
        labels=labels,
        task="multilabel",
    )


def read_nih(frame, source, root, *, uncertain, skip_bad, root_given) -> LabelTable:
    """NIH ChestX-ray14 ``Data_Entry_2017*.csv``: ``Finding Labels`` is pipe-separated."""
    _require(frame, ["Image Index", "Finding Labels", "Patient ID"], source, "nih")
    bad = BadRows(source, len(frame))
    _blank_ids(frame, "Image Index", bad)
    index = {name: j for j, name in enumerate(NIH_CLASSES)}
    labels = np.zeros((len(frame), len(NIH_CLASSES)), dtype=np.float32)
    unknown = np.zeros(len(frame), dtype=bool)
    first_unknown: dict[int, str] = {}
    for i, cell in enumerate(_text(frame, "Finding Labels")):
        for token in (t.strip() for t in cell.split("|")):
            j = index.get(token)
            if j is None:
                unknown[i] = True
                first_unknown.setdefault(i, token)
            else:
                labels[i, j] = 1.0
    bad.add(
        unknown,
        lambda i: (
            f"{csv_line(i)}, column 'Finding Labels': unknown class name {first_unknown[i]!r} "
            f"(expected '|'-separated names from {NIH_CLASSES})"
        ),
    )
    return _read(
        frame,
        source,
        root,
        root_given,
        bad,
        skip_bad,
        "nih",
        class_names=NIH_CLASSES,
        labels=labels,
        task="multilabel",
    )


def read_chexpert(frame, source, root, *, uncertain, skip_bad, root_given) -> LabelTable:
    """CheXpert ``train.csv`` / ``valid.csv``: 1 / 0 / -1 (uncertain) / blank (-> 0)."""
    _require(frame, ["Path", *CHEXPERT_CLASSES], source, "chexpert")
    _warn_ignored(frame, [*CHEXPERT_META, *CHEXPERT_CLASSES], source, "chexpert")
    bad = BadRows(source, len(frame))
    _blank_ids(frame, "Path", bad)
    policy = {"ignore": np.nan, "ones": 1.0, "zeros": 0.0}[uncertain]
    labels = _parse_numeric(frame, CHEXPERT_CLASSES, (1.0, 0.0, -1.0), bad, blank=0.0, remap={-1.0: policy})
    return _read(
        frame,
        source,
        root,
        root_given,
        bad,
        skip_bad,
        "chexpert",
        class_names=CHEXPERT_CLASSES,
        labels=labels,
        task="multilabel",
    )


def read_isic2018(frame, source, root, *, uncertain, skip_bad, root_given) -> LabelTable:
    """ISIC 2018 task 3 ground truth: ``image, MEL, NV, BCC, AKIEC, BKL, DF, VASC`` one-hot."""
    _require(frame, ["image", *ISIC2018_CLASSES], source, "isic2018")
    bad = BadRows(source, len(frame))
    _blank_ids(frame, "image", bad)
    labels = _parse_numeric(frame, ISIC2018_CLASSES, (0.0, 1.0), bad, blank=None)
    not_one_hot = np.nansum(labels, axis=1) != 1
    row_text = frame[ISIC2018_CLASSES].agg(",".join, axis=1)
    bad.add(not_one_hot, lambda i: f"{csv_line(i)}: label row {row_text.iloc[i]!r} is not one-hot")
    return _read(
        frame,
        source,
        root,
        root_given,
        bad,
        skip_bad,
        "isic2018",
        class_names=ISIC2018_CLASSES,
        labels=labels,
        task="single",
    )


def read_aptos(frame, source, root, *, uncertain, skip_bad, root_given) -> LabelTable:
    """APTOS 2019 ``train.csv``: ``id_code, diagnosis`` (grade 0-4)."""
    _require(frame, ["id_code", "diagnosis"], source, "aptos")
    bad = BadRows(source, len(frame))
    _blank_ids(frame, "id_code", bad)
    grade = _parse_numeric(frame, ["diagnosis"], (0.0, 1.0, 2.0, 3.0, 4.0), bad, blank=None)[:, 0]
    labels = np.zeros((len(frame), len(APTOS_CLASSES)), dtype=np.float32)
    ok = np.isfinite(grade)
    labels[np.flatnonzero(ok), grade[ok].astype(np.int64)] = 1.0
    return _read(
        frame,
        source,
        root,
        root_given,
        bad,
        skip_bad,
        "aptos",
        class_names=APTOS_CLASSES,
        labels=labels,
        task="single",
    )


def read_folder(folder: Path, *, skip_bad: bool = False) -> LabelTable:
    """Folder-per-class tree ``folder/<class>/**/<image>``: single-label, classes sorted by name.

    Hidden files and folders (starting with ".") are ignored; any other non-image file is a
    bad row (error, or a warning and a count with ``skip_bad``).
    """
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(f"format 'folder': {folder} has no class sub-folders")
    paths: list[str] = []
    targets: list[int] = []
    for k, name in enumerate(classes):
        for file in sorted((folder / name).rglob("*")):
            rel = file.relative_to(folder)
            if file.is_file() and not any(part.startswith(".") for part in rel.parts):
                paths.append(rel.as_posix())
                targets.append(k)
    bad = BadRows(folder, len(paths))
    not_image = np.array([Path(p).suffix.lower() not in IMAGE_EXTENSIONS for p in paths], dtype=bool)
    bad.add(not_image, lambda i: f"file {paths[i]!r} is not an image (extensions {IMAGE_EXTENSIONS})")
    keep = bad.resolve(skip_bad)
    labels = np.zeros((len(paths), len(classes)), dtype=np.float32)
    labels[np.arange(len(paths)), targets] = 1.0
    kept = [paths[i] for i in keep]
    return LabelTable(
        ids=kept,
        paths=kept,
        subject_ids=kept,
        class_names=classes,
        labels=labels[keep],
        task="single",
        root=folder,
        format="folder",
        source=folder,
    )


_READERS: dict[str, Callable[..., LabelTable]] = {
    "generic": read_generic,
    "cxrlt": read_cxrlt,
    "nih": read_nih,
    "chexpert": read_chexpert,
    "isic2018": read_isic2018,
    "aptos": read_aptos,
}
