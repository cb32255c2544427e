"""Plain layouts: the generic CSV (one 0/1 column per class, or a ``label`` column), ISIC 2018, APTOS 2019,
and a folder per class."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ral.data._bad_rows import BadRows, csv_line
from ral.data.classes import APTOS_CLASSES, ISIC2018_CLASSES
from ral.data.errors import TableError
from ral.data.images import IMAGE_EXTENSIONS
from ral.data.options import TableOptions
from ral.data.readers._common import (
    Rows,
    finish,
    label_columns,
    locate,
    mark_blank,
    one_positive,
    optional_text,
    parse_numeric,
    text,
    unlabeled,
)
from ral.data.table import LabelTable

GENERIC_META = ("path", "subject_id", "study_id", "view")
ISIC_IMAGE_DIRS = ("ISIC2018_Task3_Training_Input", "ISIC2018_Task3_Validation_Input", "ISIC2018_Task3_Test_Input")


def read_generic(frame: pd.DataFrame, source: Path, options: TableOptions, root: Path) -> LabelTable:
    """``path, [subject_id,] [study_id,] [view,] <class>...`` or ``path, ..., label``.

    Class columns: 0 / 1, blank / ``nan`` = uncertain (NaN) for ``options.task`` "auto" /
    "multilabel"; with "single" every row has exactly one 1 (no blanks). A ``label`` column of
    class names makes the table single-label (classes: the names, sorted, or ``options.classes``).
    A table with only metadata columns is unlabeled (for prediction).
    """
    bad = BadRows(source, len(frame))
    mark_blank(frame, "path", bad)
    if "label" in frame.columns:
        labels, classes, task = _class_names(frame, source, options, bad)
    else:
        classes = label_columns(frame, GENERIC_META, (0.0, 1.0), source, "generic")
        task = "single" if options.task == "single" else "multilabel"
        if not classes:
            labels, classes = unlabeled(len(frame))
        elif task == "single":
            labels = parse_numeric(frame, classes, (0.0, 1.0), bad, blank=None)
            one_positive(frame, classes, labels, bad)
        else:
            labels = parse_numeric(frame, classes, (0.0, 1.0), bad, blank=np.nan)
    paths = text(frame, "path")
    subjects, studies, views = (optional_text(frame, c) for c in ("subject_id", "study_id", "view"))
    rows = Rows(paths, paths, labels, classes, subjects, studies, views)
    return finish(rows, bad, options, task=task, fmt="generic", source=source, root=root)


def _class_names(
    frame: pd.DataFrame, source: Path, options: TableOptions, bad: BadRows
) -> tuple[np.ndarray, list[str], Literal["single"]]:
    """One-hot labels (N, C), class names and task of a ``label`` column of class names (single-label)."""
    others = [c for c in frame.columns if c not in (*GENERIC_META, "label")]
    if others:
        raise TableError(
            f"{source}: column(s) {others} beside the 'label' column (class names, single-label); "
            f"the other columns may only be {list(GENERIC_META)}",
            path=source,
            column=others[0],
        )
    if options.task == "multilabel":
        raise TableError(
            f"{source}: task 'multilabel' needs one 0/1 column per class, but the table has a 'label' column "
            "of class names (single-label)",
            path=source,
            column="label",
        )
    names = text(frame, "label")
    mark_blank(frame, "label", bad)
    classes = list(options.classes) if options.classes is not None else sorted(set(filter(None, names)))
    index = {c: j for j, c in enumerate(classes)}
    bad.add(
        np.array([bool(n) and n not in index for n in names], dtype=bool),
        lambda i: f"{csv_line(i)}, column 'label': unknown class name {names[i]!r} (expected one of {classes})",
        column="label",
        values=names,
    )
    labels = np.zeros((len(frame), len(classes)), dtype=np.float32)
    known = [i for i, n in enumerate(names) if n in index]
    labels[known, [index[names[i]] for i in known]] = 1.0
    return labels, classes, "single"


def read_isic2018(frame: pd.DataFrame, source: Path, options: TableOptions, root: Path) -> LabelTable:
    """ISIC 2018 task 3 ground truth: ``image, MEL, NV, BCC, AKIEC, BKL, DF, VASC`` one-hot.

    Images ``<image>.jpg`` are looked for in the root, ``images/``, and the official
    ``ISIC2018_Task3_*_Input`` folders inside or beside the root (first image decides).
    """
    bad = BadRows(source, len(frame))
    mark_blank(frame, "image", bad)
    labels = parse_numeric(frame, ISIC2018_CLASSES, (0.0, 1.0), bad, blank=None)
    one_positive(frame, ISIC2018_CLASSES, labels, bad)
    ids = text(frame, "image")
    names = [f"{n}.jpg" for n in ids]
    candidates = [root / "images", *(d for name in ISIC_IMAGE_DIRS for d in (root / name, root.parent / name))]
    rows = Rows(ids, names, labels, ISIC2018_CLASSES)
    return finish(
        rows, bad, options, task="single", fmt="isic2018", source=source, root=locate(root, names, candidates)
    )


def read_aptos(frame: pd.DataFrame, source: Path, options: TableOptions, root: Path) -> LabelTable:
    """APTOS 2019 ``train.csv``: ``id_code, diagnosis`` (grade 0-4).

    Images ``<id_code>.png`` are looked for in the root, ``train_images/``, ``test_images/``
    and ``images/`` (the first image decides).
    """
    bad = BadRows(source, len(frame))
    mark_blank(frame, "id_code", bad)
    grade = parse_numeric(frame, ["diagnosis"], (0.0, 1.0, 2.0, 3.0, 4.0), bad, blank=None)[:, 0]
    labels = np.zeros((len(frame), len(APTOS_CLASSES)), dtype=np.float32)
    ok = np.isfinite(grade)
    labels[np.flatnonzero(ok), grade[ok].astype(np.int64)] = 1.0
    ids = text(frame, "id_code")
    names = [f"{n}.png" for n in ids]
    folder = locate(root, names, [root / "train_images", root / "test_images", root / "images"])
    return finish(
        Rows(ids, names, labels, APTOS_CLASSES), bad, options, task="single", fmt="aptos", source=source, root=folder
    )


def read_folder(folder: Path, options: TableOptions) -> LabelTable:
    """Folder-per-class tree ``folder/<class>/**/<image>``: single-label, classes sorted by name.

    Hidden files and folders (starting with ".") are ignored; any other non-image file is a
    bad row (error, or a warning and a count with ``skip_bad``).
    """
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise TableError(f"format 'folder': {folder} has no class sub-folders", path=folder)
    paths: list[str] = []
    targets: list[int] = []
    for k, name in enumerate(classes):
        for file in sorted((folder / name).rglob("*")):
            rel = file.relative_to(folder)
            if file.is_file() and not any(part.startswith(".") for part in rel.parts):
                paths.append(rel.as_posix())
                targets.append(k)
    bad = BadRows(folder, len(paths), csv=False)
    not_image = np.array([Path(p).suffix.lower() not in IMAGE_EXTENSIONS for p in paths], dtype=bool)
    bad.add(not_image, lambda i: f"file {paths[i]!r} is not an image (extensions {IMAGE_EXTENSIONS})", values=paths)
    labels = np.zeros((len(paths), len(classes)), dtype=np.float32)
    labels[np.arange(len(paths)), targets] = 1.0
    return finish(
        Rows(paths, paths, labels, classes), bad, options, task="single", fmt="folder", source=folder, root=folder
    )
