"""Chest X-ray releases with their own label layout: NIH ChestX-ray14, CheXpert, PadChest, VinDr-CXR."""

from __future__ import annotations

import ast
import os
import re
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from ral.data._bad_rows import BadRows, csv_line
from ral.data.classes import CHEXPERT_CLASSES, NIH_CLASSES, VINDR_CLASSES
from ral.data.options import TableOptions
from ral.data.readers._common import (
    UNCERTAIN_VALUE,
    Rows,
    finish,
    mark_blank,
    mark_duplicates,
    optional_text,
    parse_numeric,
    text,
    warn_ignored,
)
from ral.data.table import LabelTable

CHEXPERT_META = ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA")
# The 36 columns of PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv (the first is an unnamed row index).
PADCHEST_COLUMNS = (
    "Unnamed: 0",
    "ImageID",
    "ImageDir",
    "StudyDate_DICOM",
    "StudyID",
    "PatientID",
    "PatientBirth",
    "PatientSex_DICOM",
    "ViewPosition_DICOM",
    "Projection",
    "MethodProjection",
    "Pediatric",
    "Modality_DICOM",
    "Manufacturer_DICOM",
    "PhotometricInterpretation_DICOM",
    "PixelRepresentation_DICOM",
    "PixelAspectRatio_DICOM",
    "SpatialResolution_DICOM",
    "BitsStored_DICOM",
    "WindowCenter_DICOM",
    "WindowWidth_DICOM",
    "Rows_DICOM",
    "Columns_DICOM",
    "XRayTubeCurrent_DICOM",
    "Exposure_DICOM",
    "ExposureInuAs_DICOM",
    "ExposureTime",
    "RelativeXRayExposure_DICOM",
    "ReportID",
    "Report",
    "MethodLabel",
    "Labels",
    "Localizations",
    "LabelsLocalizationsBySentence",
    "labelCUIS",
    "LocalizationsCUIS",
)


def read_nih(frame: pd.DataFrame, source: Path, options: TableOptions, root: Path) -> LabelTable:
    """NIH ChestX-ray14 ``Data_Entry_2017*.csv``: ``Finding Labels`` is pipe-separated."""
    bad = BadRows(source, len(frame))
    mark_blank(frame, "Image Index", bad)
    index = {name: j for j, name in enumerate(NIH_CLASSES)}
    labels = np.zeros((len(frame), len(NIH_CLASSES)), dtype=np.float32)
    unknown = np.zeros(len(frame), dtype=bool)
    first_unknown: dict[int, str] = {}
    for i, cell in enumerate(text(frame, "Finding Labels")):
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
        column="Finding Labels",
        values=first_unknown,
    )
    names = text(frame, "Image Index")
    views = optional_text(frame, "View Position")
    rows = Rows(names, _nih_paths(root, names), labels, NIH_CLASSES, text(frame, "Patient ID"), views=views)
    return finish(rows, bad, options, task="multilabel", fmt="nih", source=source, root=root)


def _nih_paths(root: Path, names: list[str]) -> list[str]:
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


_CHEXPERT_STUDY = re.compile(r"(patient\d+)/(study\d+)")


def read_chexpert(frame: pd.DataFrame, source: Path, options: TableOptions, root: Path) -> LabelTable:
    """CheXpert ``train.csv`` / ``valid.csv``: 1 / 0 / -1 (uncertain) / blank (-> 0).

    Patient and study come from the path (``patientNNNNN/studyN``); the view is ``AP/PA`` for
    frontal images (``Frontal`` where blank) and ``Lateral`` for lateral ones.
    """
    warn_ignored(frame, [*CHEXPERT_META, *CHEXPERT_CLASSES], source, "chexpert")
    bad = BadRows(source, len(frame))
    mark_blank(frame, "Path", bad)
    labels = parse_numeric(
        frame, CHEXPERT_CLASSES, (1.0, 0.0, -1.0), bad, blank=0.0, remap={-1.0: UNCERTAIN_VALUE[options.uncertain]}
    )
    paths = text(frame, "Path")
    if options.root is None and paths and Path(paths[0]).parts[:1] == (source.parent.name,):
        root = source.parent.parent  # paths start with "CheXpert-v1.0-small/..."
    found = [_CHEXPERT_STUDY.search(p) for p in paths]
    subjects = [m.group(1) if m else p for m, p in zip(found, paths)]
    studies = [f"{m.group(1)}/{m.group(2)}" if m else p for m, p in zip(found, paths)]
    rows = Rows(paths, paths, labels, CHEXPERT_CLASSES, subjects, studies, _chexpert_views(frame))
    return finish(rows, bad, options, task="multilabel", fmt="chexpert", source=source, root=root)


def _chexpert_views(frame: pd.DataFrame) -> list[str] | None:
    side, position = optional_text(frame, "Frontal/Lateral"), optional_text(frame, "AP/PA")
    if side is None:
        return None
    position = position or [""] * len(side)
    return ["Lateral" if s == "Lateral" else (p or s) for s, p in zip(side, position)]


def read_padchest(frame: pd.DataFrame, source: Path, options: TableOptions, root: Path) -> LabelTable:
    """PadChest ``PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv(.gz)``: ``Labels`` is a Python list
    string such as ``"['cardiomegaly', 'pleural effusion']"`` (parsed with ``ast.literal_eval``).

    Classes: every label that occurs, most frequent first (``options.classes``: those, in that
    order; labels not listed are left out). Images ``<ImageDir>/<ImageID>`` below the root
    (or ``<ImageID>`` in a flat copy). Bad rows: unparseable or empty ``Labels``, a duplicated ImageID.
    """
    warn_ignored(frame, PADCHEST_COLUMNS, source, "padchest")
    bad = BadRows(source, len(frame))
    mark_blank(frame, "ImageID", bad)
    ids = text(frame, "ImageID")
    mark_duplicates(ids, "ImageID", bad)
    names = _padchest_labels(frame, bad)
    if options.classes is not None:
        classes = list(options.classes)
    else:
        counts = Counter(name for i, row in enumerate(names) if not bad.bad[i] for name in row)
        classes = sorted(counts, key=lambda c: (-counts[c], c))
    column = {c: j for j, c in enumerate(classes)}
    labels = np.zeros((len(frame), len(classes)), dtype=np.float32)
    for i, row in enumerate(names):
        labels[i, [column[c] for c in row if c in column]] = 1.0
    folders = [_integer_text(d) for d in text(frame, "ImageDir")]
    nested = [f"{d}/{n}" for d, n in zip(folders, ids)]
    flat = bool(ids) and not (root / nested[0]).is_file() and (root / ids[0]).is_file()
    paths = ids if flat else nested
    rows = Rows(
        ids, paths, labels, classes, text(frame, "PatientID"), text(frame, "StudyID"), text(frame, "Projection")
    )
    return finish(rows, bad, options, task="multilabel", fmt="padchest", source=source, root=root)


def _padchest_labels(frame: pd.DataFrame, bad: BadRows) -> list[tuple[str, ...]]:
    """Label names per row (stripped, empty names left out); unparseable cells mark the row bad."""
    codes, cells = pd.factorize(frame["Labels"], use_na_sentinel=False)
    parsed: list[tuple[str, ...] | None] = []
    for cell in cells:
        try:
            value = ast.literal_eval(str(cell).strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            value = None
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
        parsed.append(tuple(v.strip() for v in value if v.strip()) if ok else None)
    unparsed = np.array([p is None for p in parsed], dtype=bool)[codes]
    bad.add(
        unparsed,
        lambda i: (
            f"{csv_line(i)}, column 'Labels': cannot parse {frame['Labels'].iloc[i]!r} "
            "as a Python list of label names such as \"['cardiomegaly', 'pleural effusion']\""
        ),
        column="Labels",
        values=frame["Labels"],
    )
    return [parsed[c] or () for c in codes]


def _integer_text(value: str) -> str:
    """``"3.0"`` -> ``"3"`` (ImageDir is a folder number)."""
    try:
        number = float(value)
    except ValueError:
        return value
    return str(int(number)) if number.is_integer() else value


def read_vindr(frame: pd.DataFrame, source: Path, options: TableOptions, root: Path) -> LabelTable:
    """VinDr-CXR ``train.csv`` (``image_id, class_name, class_id, rad_id, x_min, y_min, x_max, y_max``): one
    row per radiologist finding, turned into one multi-label row per image.

    A class is positive when any radiologist marked it (``options.vindr_agreement="any"``) or more
    than half of the image's radiologists did (``"majority"``). Classes: the 15 of ``class_id``
    0-14 (without ``class_id``: every ``class_name`` that occurs, sorted). Images
    ``<image_id>.png`` (or ``.jpg``) in the root, ``train/``, ``test/`` or ``images/``. An image
    with a bad row (empty id, unknown class, ``class_id`` not matching ``class_name``) is bad as a whole.
    """
    bad = BadRows(source, len(frame))
    for column in ("image_id", "class_name", "rad_id"):
        mark_blank(frame, column, bad)
    image, name, rad = text(frame, "image_id"), text(frame, "class_name"), text(frame, "rad_id")
    classes = VINDR_CLASSES if "class_id" in frame.columns else sorted(set(filter(None, name)))
    if "class_id" in frame.columns:
        code = text(frame, "class_id")
        expected = {str(k): c for k, c in enumerate(VINDR_CLASSES)}
        bad.add(
            np.array([expected.get(_integer_text(k)) != n for k, n in zip(code, name)], dtype=bool),
            lambda i: (
                f"{csv_line(i)}: class_id {code[i]!r} with class_name {name[i]!r} (expected the pairs {expected})"
            ),
            column="class_id",
            values=code,
        )
    bad_images = {image[i] for i in np.flatnonzero(bad.bad) if image[i]}
    keep = bad.resolve(options.skip_bad)
    keep = keep[[image[i] not in bad_images for i in keep]]
    if bad_images and options.skip_bad:
        warnings.warn(f"dropped {len(bad_images)} image(s) of {source} with a skipped row", stacklevel=4)
    kept = pd.DataFrame(
        {"image": [image[i] for i in keep], "name": [name[i] for i in keep], "rad": [rad[i] for i in keep]}
    )
    order = list(dict.fromkeys(kept["image"]))
    readers = kept.groupby("image")["rad"].nunique().reindex(order).to_numpy()
    votes = kept.groupby(["image", "name"])["rad"].nunique().unstack(fill_value=0).reindex(index=order, columns=classes)
    votes = votes.fillna(0).to_numpy()
    positive = votes >= 1 if options.vindr_agreement == "any" else 2 * votes > readers[:, None]
    paths = _vindr_paths(root, order)
    rows = Rows(order, paths, positive.astype(np.float32), classes)
    return rows.table(np.arange(len(order)), task="multilabel", root=root, fmt="vindr", source=source)


def _vindr_paths(root: Path, image_ids: list[str]) -> list[str]:
    """``[<folder>/]<image_id><ext>`` relative to ``root``: the first image's folder and extension decide."""
    for folder in ("", "train", "test", "images"):
        for ext in (".png", ".jpg", ".jpeg"):
            if image_ids and (root / folder / f"{image_ids[0]}{ext}").is_file():
                return [(Path(folder) / f"{i}{ext}").as_posix() for i in image_ids]
    return [f"{i}.png" for i in image_ids]
