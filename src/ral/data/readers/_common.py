"""Pieces every label-table reader shares: column checks, label parsing, the final table.

A reader is ``reader(frame, source, options, root) -> LabelTable``: the CSV (all cells text),
its path, the :class:`~ral.data.options.TableOptions` and the image root resolved by ``load_table``.
"""

from __future__ import annotations

import gzip
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ral.data._bad_rows import BadRows, csv_line
from ral.data.errors import TableError
from ral.data.options import TableOptions
from ral.data.table import LabelTable, Task

_BLANKS = ("", "nan", "NaN", "NA")
#: What a -1 (uncertain) label becomes under each ``uncertain`` policy: NaN (masked), 1 or 0.
UNCERTAIN_VALUE = {"ignore": np.nan, "ones": 1.0, "zeros": 0.0}


def read_csv(path: Path) -> pd.DataFrame:
    """All cells as strings ("" for blank), header names stripped; gzip (``.csv.gz``) read transparently.

    Raises:
        TableError: the file is empty, not CSV, not UTF-8 or a broken gzip file, or its header names
            a column twice (naming the file and the column).
    """
    path = Path(path)
    with open(path, "rb") as fh:
        compression = "gzip" if fh.read(2) == b"\x1f\x8b" else None  # by content, whatever the name
    settings = {"dtype": str, "keep_default_na": False, "index_col": False, "encoding": "utf-8-sig"}
    try:
        frame = pd.read_csv(path, compression=compression, **settings)
        # pandas renames a repeated name (A, A.1): the header as written, to refuse it
        _check_header(path, pd.read_csv(path, compression=compression, header=None, nrows=1, **settings))
    except pd.errors.EmptyDataError as exc:
        raise TableError(f"label table {path} is empty", path=path) from exc
    except (pd.errors.ParserError, UnicodeDecodeError, gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise TableError(f"cannot parse label table {path}: {exc}", path=path) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _check_header(path: Path, header: pd.DataFrame) -> None:
    """Refuse a header naming a column twice (``path,A,A``; also ``path,A ,A``: names are stripped)."""
    names = [str(name).strip() for name in header.iloc[0]] if len(header) else []
    repeated = sorted({name for name in names if name and names.count(name) > 1})
    if repeated:
        raw = [str(name) for name in header.iloc[0] if str(name).strip() in repeated]
        raise TableError(
            f"label table {path}: column name(s) {repeated} appear more than once in the header ({raw}; names are "
            "compared without surrounding blanks); rename or remove the extra column(s)",
            path=path,
            column=repeated[0],
        )


def require(frame: pd.DataFrame, columns: Sequence[str], source: Path, fmt: str) -> None:
    """Raise TableError naming the file and the missing columns (``column``: the first)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise TableError(
            f"{source}: missing column(s) {missing} required by format {fmt!r}; columns found: {list(frame.columns)}",
            path=source,
            column=missing[0],
        )


def text(frame: pd.DataFrame, column: str) -> list[str]:
    """A text column (ids, paths) as stripped strings."""
    return [v.strip() for v in frame[column].tolist()]


def mark_blank(frame: pd.DataFrame, column: str, bad: BadRows) -> None:
    """Rows whose ``column`` is empty are bad."""
    empty = np.array([not v for v in text(frame, column)], dtype=bool)
    bad.add(empty, lambda i: f"{csv_line(i)}, column {column!r}: empty value", column=column, values=frame[column])


def mark_duplicates(values: Sequence[str], column: str, bad: BadRows) -> None:
    """Every repeat of a value (after its first row) is a bad row naming both lines."""
    first: dict[str, int] = {}
    repeat = np.zeros(len(values), dtype=bool)
    for i, value in enumerate(values):
        if value and first.setdefault(value, i) != i:
            repeat[i] = True
    bad.add(
        repeat,
        lambda i: (
            f"{csv_line(i)}, column {column!r}: duplicated value {values[i]!r} (first on {csv_line(first[values[i]])})"
        ),
        column=column,
        values=values,
    )


def _cell_values(series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(codes (N,), distinct stripped texts (K,), their numbers (K,) with NaN where not numeric)."""
    codes, uniques = pd.factorize(series, use_na_sentinel=False)  # few distinct strings per column
    texts = np.array([str(u).strip() for u in uniques], dtype=object)
    numbers = pd.to_numeric(pd.Series(texts, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
    return codes, texts, numbers


def label_columns(
    frame: pd.DataFrame, metadata: Sequence[str], allowed: Sequence[float], source: Path, fmt: str
) -> list[str]:
    """The table's own class columns: every column that is not a metadata column, in table order.

    A class column holds label values (``allowed`` or blank); one with values but none of them
    a label value is not a label column: TableError naming it (single bad values are bad rows,
    found by :func:`parse_numeric`).
    """
    classes = [c for c in frame.columns if c not in metadata]
    for column in classes:
        _, texts, numbers = _cell_values(frame[column])
        filled = ~np.isin(texts, _BLANKS)
        if filled.any() and not np.isin(numbers[filled], np.asarray(allowed, dtype=np.float64)).any():
            shown = ", ".join(repr(t) for t in texts[filled][:5])
            raise TableError(
                f"{source}: column {column!r} is neither a metadata column of format {fmt!r} ({list(metadata)}) "
                f"nor a label column (values {', '.join(f'{v:g}' for v in allowed)} or blank); it holds {shown}",
                path=source,
                column=column,
                value=texts[filled][0],
            )
    return classes


def parse_numeric(
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
        codes, texts, num = _cell_values(frame[col])
        is_blank = np.isin(texts, _BLANKS)
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
            column=col,
            values=frame[col],
        )
        out[:, j] = values[codes]
    return out


def one_positive(frame: pd.DataFrame, columns: Sequence[str], labels: np.ndarray, bad: BadRows) -> None:
    """Single-label one-hot rows: a row with zero or several positives is bad."""
    positives = np.nansum(labels, axis=1)
    row_text = frame[list(columns)].agg(",".join, axis=1)
    bad.add(
        positives != 1,
        lambda i: (
            f"{csv_line(i)}: label row {row_text.iloc[i]!r} is not one-hot ({int(positives[i])} positives; "
            "a single-label row has exactly one 1)"
        ),
        values=row_text,
    )


def locate(root: Path, names: Sequence[str], subdirs: Sequence[Path]) -> Path:
    """First of ``root`` / ``subdirs`` that holds the first image name (default ``root``)."""
    if names:
        for folder in (root, *subdirs):
            if (folder / names[0]).is_file():
                return folder
    return root


def warn_ignored(frame: pd.DataFrame, used: Sequence[str], source: Path, fmt: str) -> None:
    extra = [c for c in frame.columns if c not in used]
    if extra:
        warnings.warn(f"{source}: columns {extra} are not part of format {fmt!r} and were ignored", stacklevel=5)


def optional_text(frame: pd.DataFrame, column: str) -> list[str] | None:
    """``text(frame, column)``, or None when the table has no such column."""
    return text(frame, column) if column in frame.columns else None


@dataclass
class Rows:
    """Per-row values of a table being read (N rows, before bad rows are dropped)."""

    ids: Sequence[str]
    paths: Sequence[str]
    labels: np.ndarray  # float32 (N, C)
    class_names: Sequence[str]
    subject_ids: Sequence[str] | None = None  # None: not recorded (one patient per image)
    study_ids: Sequence[str] | None = None
    views: Sequence[str] | None = None

    def table(self, keep: np.ndarray, *, task: Task, root: Path, fmt: str, source: Path) -> LabelTable:
        """The LabelTable of rows ``keep``."""

        def pick(values: Sequence[str] | None) -> list[str] | None:
            return None if values is None else [str(values[i]) for i in keep]

        return LabelTable(
            ids=pick(self.ids),
            paths=pick(self.paths),
            subject_ids=pick(self.subject_ids if self.subject_ids is not None else self.ids),
            class_names=list(self.class_names),
            labels=self.labels[keep],
            task=task,
            root=root,
            format=fmt,
            source=source,
            study_ids=pick(self.study_ids),
            views=pick(self.views),
        )


def finish(
    rows: Rows, bad: BadRows, options: TableOptions, *, task: Task, fmt: str, source: Path, root: Path
) -> LabelTable:
    """Raise on bad rows (or drop them with ``options.skip_bad``) and build the table."""
    return rows.table(bad.resolve(options.skip_bad), task=task, root=root, fmt=fmt, source=source)


def unlabeled(num_rows: int) -> tuple[np.ndarray, list[str]]:
    """Labels (N, 0) and no class names: a table to predict (``classes=`` later gives NaN columns)."""
    return np.zeros((num_rows, 0), dtype=np.float32), []
