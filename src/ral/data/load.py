"""Reading a label table (:func:`load_table`) or the images a table lists (:func:`load_image_list`).

Both take one :class:`~ral.data.options.TableOptions` (or its fields as keywords). The format
comes from :data:`ral.data.formats.TABLE_FORMATS`; a bad row raises
:class:`~ral.data.errors.TableError` naming the file, line, column and value, or is dropped
with a warning and a count when ``skip_bad=True``. The image paths are checked too
(:func:`ral.data.checks.check_paths`: duplicates, paths escaping the root).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ral.data import images as _images
from ral.data.checks import check_paths
from ral.data.errors import MissingFileError, TableError
from ral.data.formats import FORMAT_BY_NAME, TABLE_FORMATS, TableFormat, detect_format, select_views
from ral.data.images import ImageCheck
from ral.data.options import TableOptions, TableTask, table_options
from ral.data.readers._common import read_csv, require
from ral.data.readers.lists import is_split_list, read_split_list
from ral.data.readers.plain import read_folder
from ral.data.table import LabelTable

__all__ = ["load_image_list", "load_table", "most_frequent", "select_classes"]


def load_table(
    path: str | os.PathLike,
    options: TableOptions | None = None,
    /,
    *,
    check_images: ImageCheck = "exists",
    **fields: Any,
) -> LabelTable:
    """Read a label table (CSV or ``.csv.gz`` file, or a folder-per-class tree) into a LabelTable.

    Args:
        path: the CSV file, or a folder whose sub-folders are the classes (format "folder").
        options: how to read it (:class:`~ral.data.options.TableOptions`, or a model extending
            it such as the training config's ``dataset`` section); default: every default.
        check_images: "exists" (default: every image file must exist), "decode" (must also
            decode) or "none" (labels only, e.g. for ``ral data stats``).
        **fields: ``TableOptions`` fields that replace those of ``options``
            (``load_table(path, format="nih", skip_bad=True)``).

    Returns:
        LabelTable with N rows and C classes; ``labels`` float32 (N, C), NaN = uncertain.

    Raises:
        pydantic.ValidationError (a ValueError): an unknown option or a value it does not accept.
        MissingFileError (a FileNotFoundError): the table, a file it needs (MIMIC's metadata) or
            an image file is missing.
        TableError (a ValueError): undetectable format, missing column, unknown class, an invalid
            label value, or an image path outside the root; ``error.option`` names the option
            that lets such input through, if one does.
    """
    options = table_options(options, **fields)
    table = _read_table(Path(path), options)
    check_paths(table, allow_outside_root=options.allow_outside_root)
    return _images.check_images(table, check_images, skip_bad=options.skip_bad)


def _read_table(path: Path, options: TableOptions) -> LabelTable:
    """:func:`load_table` without its image checks."""
    if not path.exists():
        raise MissingFileError(f"label table not found: {path}", path=path)
    if path.is_dir() or options.format == "folder":
        if not path.is_dir():
            raise TableError(f"format 'folder' needs a directory, got file {path}", path=path)
        if options.format not in (None, "folder"):
            raise TableError(f"format {options.format!r} needs a CSV file, got directory {path}", path=path)
        _check_task(FORMAT_BY_NAME["folder"], options.task, path)
        table = read_folder(path, options)
    elif is_split_list(path):  # NIH's train_val_list.txt / test_list.txt: rows of the NIH table beside it
        _check_task(FORMAT_BY_NAME["nih"], options.task, path)
        table = read_split_list(path, options)
    else:
        frame = read_csv(path)
        fmt = FORMAT_BY_NAME[options.format or detect_format(list(frame.columns), path)]
        _check_task(fmt, options.task, path)
        require(frame, fmt.columns, path, fmt.name)
        root = Path(options.root) if options.root is not None else path.parent
        table = fmt.reader(frame, path, options, root)
    if options.views is not None:
        table = select_views(table, options.views)
    if options.max_classes is not None:
        table = most_frequent(table, options.max_classes)
    if options.classes is not None:
        table = select_classes(table, options.classes)
    return table


def _check_task(fmt: TableFormat, task: TableTask, path: Path) -> None:
    if fmt.task is not None and task not in ("auto", fmt.task):
        raise TableError(
            f"{path}: format {fmt.name!r} is {fmt.task}, task {task!r} was asked for (only generic tables "
            "can be read either way)",
            path=path,
            value=task,
        )


def _image_list_format(columns: Sequence[str], path: Path) -> TableFormat:
    """The format of an image list: its label-table format when detected, else the first whose image columns it has."""
    detected = next((fmt for fmt in TABLE_FORMATS if fmt.matches(columns)), None)
    if detected is not None and detected.image_list:
        return detected
    for fmt in TABLE_FORMATS:
        if fmt.image_list and set(fmt.image_list.columns) <= set(columns):
            return fmt
    expected = "; ".join(f"{f.name}: {', '.join(f.image_list.columns)}" for f in TABLE_FORMATS if f.image_list)
    raise TableError(
        f"{path}: no image columns among {list(columns)}; expected those of a format ({expected})", path=path
    )


def load_image_list(path: str | os.PathLike, options: TableOptions | None = None, /, **fields: Any) -> LabelTable:
    """The images of a table of any CSV format with image lists, without labels (label columns are not needed).

    Of the options only ``format``, ``root`` and ``allow_outside_root`` apply. The format is
    ``format`` or the table's (:func:`~ral.data.formats.detect_format`), else the first of
    :data:`~ral.data.formats.TABLE_FORMATS` whose ``image_list.columns`` the header has. Only
    those columns and the format's ``image_list.keep`` columns (patient, study, view) are read
    (label columns, when there, are ignored, also bad values in them); ids and image paths are
    those :func:`load_table` gives (``dicom_id`` / ``fpath`` for CXR-LT, ``path`` for the generic
    layout, ``<image>.jpg`` found as for ISIC 2018, ...).

    Returns:
        LabelTable with no classes (labels of shape (N, 0)); every image file exists.

    Raises:
        MissingFileError: the table or an image is missing. TableError: a format without image
            lists, no image columns, an empty or repeated id, or a path outside the root.
    """
    options = table_options(options, **fields)
    path = Path(path)
    if options.format is not None and not FORMAT_BY_NAME[options.format].image_list:
        listed = tuple(f.name for f in TABLE_FORMATS if f.image_list)
        raise TableError(
            f"format must be one of {listed} for a table of images, got {options.format!r}", value=options.format
        )
    if not path.is_file():
        raise MissingFileError(f"table not found: {path}", path=path)
    if is_split_list(path):
        table = read_split_list(path, TableOptions(root=options.root, format=options.format))
        table = replace(table, class_names=[], labels=np.zeros((len(table), 0), dtype=np.float32))
        check_paths(table, allow_outside_root=options.allow_outside_root)
        return _images.check_images(table, "exists")
    frame = read_csv(path)
    fmt = FORMAT_BY_NAME[options.format] if options.format else _image_list_format(list(frame.columns), path)
    listing = fmt.image_list
    require(frame, listing.columns, path, fmt.name)
    columns = [*listing.columns, *(c for c in listing.keep if c in frame.columns)]
    images = frame[columns].assign(**{k: v for k, v in listing.placeholders.items() if k not in columns})
    root = Path(options.root) if options.root is not None else path.parent
    try:
        table = fmt.reader(images, path, TableOptions(root=options.root), root)
        table = replace(table, class_names=[], labels=np.zeros((len(table), 0), dtype=np.float32), task="multilabel")
        check_paths(table, allow_outside_root=options.allow_outside_root)
        return _images.check_images(table, "exists")
    except TableError as exc:
        if exc.option == "skip_bad":  # an image list reads every row: no option drops a bad one
            exc.option = None
        raise


def select_classes(table: LabelTable, classes: Sequence[str]) -> LabelTable:
    """Table restricted to ``classes`` (in that order); unknown names raise TableError.

    A table without label columns (an unlabeled table to predict) gets NaN labels for ``classes``.
    """
    if table.num_classes == 0:
        return replace(table, class_names=list(classes), labels=np.full((len(table), len(classes)), np.nan))
    unknown = [c for c in classes if c not in table.class_names]
    if unknown:
        raise TableError(
            f"unknown class name(s) {unknown} for {table.source}; available: {table.class_names}",
            path=table.source,
            value=unknown[0],
        )
    idx = [table.class_names.index(c) for c in classes]
    return replace(table, class_names=list(classes), labels=table.labels[:, idx])


def most_frequent(table: LabelTable, count: int) -> LabelTable:
    """The ``count`` classes with the most positives (ties: the earlier column), in table order."""
    counts = table.class_counts()
    ranked = sorted(range(table.num_classes), key=lambda j: -int(counts[j]))
    keep = sorted(ranked[:count])
    return select_classes(table, [table.class_names[j] for j in keep])
