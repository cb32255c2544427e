"""MIMIC-CXR-JPG based tables: the CXR-LT 2023 / 2024 challenge CSVs and MIMIC-CXR-JPG 2.x's own label files."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ral.data._bad_rows import BadRows, csv_line
from ral.data.errors import MissingFileError
from ral.data.options import MIMIC_SPLITS, TableOptions
from ral.data.readers._common import (
    UNCERTAIN_VALUE,
    Rows,
    finish,
    label_columns,
    mark_blank,
    mark_duplicates,
    optional_text,
    parse_numeric,
    read_csv,
    require,
    text,
    unlabeled,
)
from ral.data.table import LabelTable

# ViewPosition: MIMIC-CXR's metadata column, where a user joined it in (the simulated set has it)
CXRLT_META = ("dicom_id", "subject_id", "study_id", "fpath", "ViewPosition")
MIMIC_LABEL_META = ("subject_id", "study_id")
_MIMIC_PATH = re.compile(r"(?:^|/)p(\d+)/s(\d+)/[^/]+$")  # files/p10/p10000032/s50414267/<dicom_id>.jpg


def read_cxrlt(frame: pd.DataFrame, source: Path, options: TableOptions, root: Path) -> LabelTable:
    """CXR-LT 2023 / 2024: ``dicom_id, [subject_id,] [study_id,] <class columns>, fpath`` (0 / 1, blank = NaN).

    The class columns are the table's own (26 in 2023, 40 in 2024 task 1); a table with only
    the id / path columns is unlabeled (for prediction). An optional ``ViewPosition`` column
    (MIMIC-CXR's metadata, joined in; the embedded simulated set has it) gives the views.
    Without ``subject_id`` / ``study_id`` the patient / study come from the MIMIC path
    ``files/pXX/p<subject>/s<study>/<dicom_id>.jpg``.
    """
    bad = BadRows(source, len(frame))
    for column in ("dicom_id", "fpath"):
        mark_blank(frame, column, bad)
    ids, paths = text(frame, "dicom_id"), text(frame, "fpath")
    mark_duplicates(ids, "dicom_id", bad)
    classes = label_columns(frame, CXRLT_META, (0.0, 1.0), source, "cxrlt")
    if classes:
        labels = parse_numeric(frame, classes, (0.0, 1.0), bad, blank=np.nan)
    else:
        labels, classes = unlabeled(len(frame))
    subjects, studies = optional_text(frame, "subject_id"), optional_text(frame, "study_id")
    if subjects is None or studies is None:
        found = [_MIMIC_PATH.search(p) for p in paths]
        no_ids = np.array([m is None for m in found], dtype=bool)
        bad.add(
            no_ids & np.array([bool(p) for p in paths]),
            lambda i: (
                f"{csv_line(i)}, column 'fpath': {paths[i]!r} is not a MIMIC path "
                "files/pXX/p<subject_id>/s<study_id>/<dicom_id>.jpg (needed without subject_id / study_id columns)"
            ),
            column="fpath",
            values=paths,
        )
        subjects = subjects or [m.group(1) if m else "" for m in found]
        studies = studies or [m.group(2) if m else "" for m in found]
    if "" in subjects or "" in studies:  # blank cells (an image list's placeholders): from a MIMIC path, as above
        found = [_MIMIC_PATH.search(p) for p in paths]
        subjects = [s or (m.group(1) if m else "") for s, m in zip(subjects, found)]
        studies = [t or (m.group(2) if m else "") for t, m in zip(studies, found)]
    views = optional_text(frame, "ViewPosition")
    rows = Rows(ids, paths, labels, classes, subject_ids=subjects, study_ids=studies, views=views)
    return finish(rows, bad, options, task="multilabel", fmt="cxrlt", source=source, root=root)


def mimic_sibling(label_file: Path, kind: str) -> Path | None:
    """The ``metadata`` / ``split`` file beside a MIMIC-CXR-JPG label file (``.csv.gz`` or ``.csv``), if any."""
    match = re.match(r"^(.*)-(?:chexpert|negbio)\.csv(?:\.gz)?$", label_file.name)
    prefixes = [match.group(1)] if match else []
    for prefix in [*prefixes, "mimic-cxr-2.0.0"]:
        for ext in (".csv.gz", ".csv"):
            candidate = label_file.parent / f"{prefix}-{kind}{ext}"
            if candidate.is_file():
                return candidate
    found = sorted(label_file.parent.glob(f"mimic-cxr-*-{kind}.csv*"))
    return found[0] if found else None


def read_mimic(frame: pd.DataFrame, source: Path, options: TableOptions, root: Path) -> LabelTable:
    """MIMIC-CXR-JPG 2.x ``mimic-cxr-2.0.0-chexpert.csv(.gz)`` or ``-negbio``: labels per study, joined to
    the images of ``mimic-cxr-2.0.0-metadata.csv(.gz)`` beside it.

    Labels 1.0 / 0.0 / -1.0 (uncertain: ``options.uncertain``) / blank (not mentioned: 0). With
    ``options.split`` and ``mimic-cxr-2.0.0-split.csv(.gz)`` beside the labels, only that part of
    the official split is read. Image paths: ``files/p<first 2 digits>/p<subject>/s<study>/<dicom_id>.jpg``.
    Bad rows: invalid labels, a study labelled twice, a labelled study without images, an image
    whose study has no labels, a dicom_id listed twice, an image missing from the split file.
    """
    classes = label_columns(frame, MIMIC_LABEL_META, (1.0, 0.0, -1.0), source, "mimic")
    bad_labels = BadRows(source, len(frame))
    for column in MIMIC_LABEL_META:
        mark_blank(frame, column, bad_labels)
    label_keys = [f"{s}/{t}" for s, t in zip(text(frame, "subject_id"), text(frame, "study_id"))]
    mark_duplicates(label_keys, "subject_id/study_id", bad_labels)
    values = parse_numeric(
        frame, classes, (1.0, 0.0, -1.0), bad_labels, blank=0.0, remap={-1.0: UNCERTAIN_VALUE[options.uncertain]}
    )
    meta_path = mimic_sibling(source, "metadata")
    if meta_path is None:
        raise MissingFileError(
            f"{source}: MIMIC-CXR-JPG labels need mimic-cxr-2.0.0-metadata.csv(.gz) (dicom_id, subject_id, "
            f"study_id, ViewPosition) beside them in {source.parent}",
            path=source,
        )
    meta = read_csv(meta_path)
    require(meta, ["dicom_id", "subject_id", "study_id", "ViewPosition"], meta_path, "mimic")
    bad_meta = BadRows(meta_path, len(meta))
    for column in ("dicom_id", "subject_id", "study_id"):
        mark_blank(meta, column, bad_meta)
    dicom, subjects, studies = text(meta, "dicom_id"), text(meta, "subject_id"), text(meta, "study_id")
    mark_duplicates(dicom, "dicom_id", bad_meta)
    image_keys = [f"{s}/{t}" for s, t in zip(subjects, studies)]
    row_of_study = {key: i for i, key in reversed(list(enumerate(label_keys)))}
    label_row = np.array([row_of_study.get(key, -1) for key in image_keys], dtype=np.int64)
    bad_meta.add(
        label_row < 0,
        lambda i: (
            f"{csv_line(i)}: image {dicom[i]!r} of study {studies[i]!r} (subject {subjects[i]!r}) "
            f"has no label row in {source.name}"
        ),
        column="dicom_id",
        values=dicom,
    )
    imaged = set(image_keys)
    bad_labels.add(
        np.array([key not in imaged for key in label_keys], dtype=bool),
        lambda i: f"{csv_line(i)}: study {label_keys[i]!r} (subject_id/study_id) has no image in {meta_path.name}",
        column="subject_id/study_id",
        values=label_keys,
    )
    in_split = _split_mask(source, options, dicom, bad_meta)
    kept_labels = np.zeros(len(frame), dtype=bool)
    kept_labels[bad_labels.resolve(options.skip_bad)] = True
    keep = bad_meta.resolve(options.skip_bad)
    orphaned = keep[~kept_labels[label_row[keep]]]
    if orphaned.size:
        warnings.warn(f"dropped {orphaned.size} image(s) of {meta_path} whose label row was skipped", stacklevel=4)
    keep = keep[kept_labels[label_row[keep]] & in_split[keep]]
    paths = [f"files/p{s[:2]}/p{s}/s{t}/{d}.jpg" for d, s, t in zip(dicom, subjects, studies)]
    labels = values[np.maximum(label_row, 0)]
    rows = Rows(
        dicom, paths, labels, classes, subject_ids=subjects, study_ids=studies, views=text(meta, "ViewPosition")
    )
    return rows.table(keep, task="multilabel", root=root, fmt="mimic", source=source)


def _mark_leaks(ids: list[str], names: list[str], bad: BadRows) -> None:
    """Every row of an image listed in two parts of the split file is bad (a leak between train and test)."""
    parts: dict[str, dict[str, int]] = {}
    for i, (image, name) in enumerate(zip(ids, names)):
        parts.setdefault(image, {}).setdefault(name, i)
    leaked = np.array([len(parts[image]) > 1 for image in ids], dtype=bool)
    bad.add(
        leaked,
        lambda i: (
            f"image {ids[i]!r} is listed in more than one part: "
            + ", ".join(f"{name!r} ({csv_line(row)})" for name, row in parts[ids[i]].items())
        ),
        column="dicom_id",
        values=ids,
    )


def _split_mask(source: Path, options: TableOptions, dicom: list[str], bad_meta: BadRows) -> np.ndarray:
    """(N,) images of the metadata file in ``options.split`` of the official split file (all when it is None)."""
    split = options.split
    everything = np.ones(len(dicom), dtype=bool)
    if split is None:
        return everything
    split_path = mimic_sibling(source, "split")
    if split_path is None:
        if split == "train":
            warnings.warn(f"{source}: no mimic-cxr-2.0.0-split.csv(.gz) beside it: all images are read", stacklevel=5)
            return everything
        raise MissingFileError(
            f"{source}: the {split!r} part needs the official split file mimic-cxr-2.0.0-split.csv(.gz) beside it",
            path=source,
            value=split,
        )
    table = read_csv(split_path)
    require(table, ["dicom_id", "split"], split_path, "mimic")
    bad_split = BadRows(split_path, len(table))
    names = text(table, "split")
    bad_split.add(
        ~np.isin(np.asarray(names, dtype=object), MIMIC_SPLITS),
        lambda i: f"{csv_line(i)}, column 'split': {names[i]!r} is not one of {MIMIC_SPLITS}",
        column="split",
        values=names,
    )
    split_ids = text(table, "dicom_id")
    _mark_leaks(split_ids, names, bad_split)
    part = {split_ids[i]: names[i] for i in bad_split.resolve(options.skip_bad)}
    bad_meta.add(
        np.array([d not in part for d in dicom], dtype=bool),
        lambda i: f"{csv_line(i)}: image {dicom[i]!r} has no row in {split_path.name}",
        column="dicom_id",
        values=dicom,
    )
    return np.array([part.get(d) == split for d in dicom], dtype=bool)
