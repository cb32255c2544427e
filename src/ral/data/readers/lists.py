"""NIH ChestX-ray14's official split lists (``train_val_list.txt``, ``test_list.txt``) read as split tables.

A list holds one image file name per line (``00000001_000.png``), no header. Its labels are
those of the NIH table beside it (``Data_Entry_2017_v2020.csv`` or ``Data_Entry_2017.csv``):
the list selects that table's rows, which keep the table's order. So ``dataset.train:
ChestX-ray14/train_val_list.txt``, ``ral data stats test_list.txt`` and ``ral data split
train_val_list.txt`` read the official split, as MIMIC-CXR-JPG's split file does for its labels.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from ral.data.errors import MissingFileError, TableError
from ral.data.options import TableOptions
from ral.data.table import LabelTable

#: The NIH label tables a list is looked up beside, in this order (the 2020 relabel first).
NIH_TABLES = ("Data_Entry_2017_v2020.csv", "Data_Entry_2017.csv")


def is_split_list(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a split list (a ``.txt`` file) rather than a CSV table."""
    return Path(path).suffix.lower() == ".txt"


def split_list_source(path: str | os.PathLike) -> Path:
    """The NIH label table beside the list ``path`` (:data:`NIH_TABLES`, also gzip-compressed).

    Raises:
        MissingFileError: no NIH table beside the list.
    """
    folder = Path(path).parent
    for name in NIH_TABLES:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    found = sorted(folder.glob("Data_Entry_2017*.csv*"))
    if found:
        return found[0]
    raise MissingFileError(
        f"{path}: an NIH split list needs the NIH label table ({' or '.join(NIH_TABLES)}) beside it in {folder}",
        path=path,
    )


def list_names(path: str | os.PathLike) -> list[str]:
    """The image names of a split list, one per line (blank lines skipped).

    Raises:
        MissingFileError: no such file. TableError: an empty list, a line that is no file name (a
            comma: a CSV named .txt), or a name listed twice (naming both lines).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"split list not found: {path}", path=path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise TableError(f"{path}: not a UTF-8 text file of image names ({exc.reason})", path=path) from None
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        name = line.strip()
        if not name:
            continue
        if "," in name:
            raise TableError(
                f"{path}, line {number}: {name[:80]!r} is not an image file name (a split list holds one per line)",
                path=path,
            )
        if name in seen:
            raise TableError(f"{path}, line {number}: {name!r} is listed twice (first on line {seen[name]})", path=path)
        seen[name] = number
    if not seen:
        raise TableError(f"split list {path} lists no image", path=path)
    return list(seen)


def read_split_list(path: str | os.PathLike, options: TableOptions) -> LabelTable:
    """The rows of the NIH table beside the split list ``path`` whose ``Image Index`` it lists.

    The NIH table is read whole (its bad rows are reported with their own line numbers), then
    restricted to the listed images, in the table's order; ``source`` is the list. Images
    ``root`` defaults to the list's folder.

    Raises:
        MissingFileError / TableError: as :func:`split_list_source` and :func:`list_names`; a
            format other than "nih"; a listed image the NIH table lacks (with ``options.skip_bad``:
            a warning, the image dropped).
    """
    from dataclasses import replace

    from ral.data.readers._common import read_csv, require
    from ral.data.readers.chest import read_nih

    path = Path(path)
    if options.format not in (None, "nih"):
        raise TableError(
            f"{path}: a split list (.txt) is read as an NIH ChestX-ray14 split, not format {options.format!r}",
            path=path,
            value=options.format,
        )
    names = list_names(path)
    source = split_list_source(path)
    frame = read_csv(source)
    require(frame, ["Image Index", "Finding Labels", "Patient ID"], source, "nih")
    root = Path(options.root) if options.root is not None else path.parent
    table = read_nih(frame, source, options, root)
    row_of = {image: i for i, image in enumerate(table.ids)}
    missing = [name for name in names if name not in row_of]
    if missing:
        message = f"{path}: {len(missing)} listed image(s) are not in {source.name} (first: {missing[0]!r})"
        if not options.skip_bad:
            raise TableError(message, path=path, value=missing[0], option="skip_bad")
        warnings.warn(message + "; dropped", stacklevel=3)
    keep = sorted(row_of[name] for name in names if name in row_of)
    return replace(table.subset(keep), source=path)
