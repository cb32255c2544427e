"""Atomic writers for JSON / CSV / text outputs and a dependency-free Markdown table.

Every writer renders its whole content first and then writes it to a temporary file in the
destination folder, which replaces the destination with ``os.replace`` (atomic on POSIX and
Windows): an existing file is never left half-written, also when rendering fails.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(handle)`` on a temp file next to ``path``, then move it onto ``path``.

    Parent folders are created. A new file gets mode 0644, a replaced file keeps its mode.
    If ``write`` raises, the temp file is removed and ``path`` is untouched.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o644
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    return target


def write_text(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda handle: handle.write(data))


def to_jsonable(obj: Any, where: str = "obj") -> Any:
    """Plain-JSON copy of ``obj``: numpy / pandas values become lists and numbers,
    NaN and +-inf become ``None`` (JSON null), paths become strings.

    Raises:
        TypeError: for a value JSON cannot hold, naming where it is (e.g. ``obj['a'][2]``).
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, pd.DataFrame):
        return to_jsonable(obj.to_dict(orient="records"), where)
    if isinstance(obj, (np.ndarray, pd.Series, pd.Index)):
        return to_jsonable(np.asarray(obj).tolist(), where)
    if isinstance(obj, Mapping):
        return {str(key): to_jsonable(value, f"{where}[{key!r}]") for key, value in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        return [to_jsonable(value, f"{where}[{i}]") for i, value in enumerate(items)]
    raise TypeError(f"{where} of type {type(obj).__name__} is not JSON serialisable: {obj!r}")


def write_json(obj: Any, path: str | os.PathLike, *, indent: int = 2) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically (NaN / inf as null, numpy values allowed).

    Raises:
        TypeError: ``obj`` holds a value JSON cannot represent; ``path`` is left untouched.
    """
    text = json.dumps(to_jsonable(obj), indent=indent, allow_nan=False) + "\n"
    return write_text(text, path)


def write_csv(df: pd.DataFrame, path: str | os.PathLike, *, index: bool = False) -> Path:
    """Write ``df`` as CSV (UTF-8, NaN as an empty field) to ``path`` atomically."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    return write_text(df.to_csv(index=index, lineterminator="\n"), path)


def _cell(value: Any, floatfmt: str) -> str:
    """One Markdown cell: floats formatted, NaN as "n/a", pipes escaped."""
    if isinstance(value, (float, np.floating)):
        return "n/a" if math.isnan(value) else format(float(value), floatfmt)
    if value is None or value is pd.NA:
        return "n/a"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(df: pd.DataFrame, floatfmt: str = ".4f", *, index: bool | None = None) -> str:
    """GitHub-flavoured Markdown table of ``df`` (numeric columns right-aligned).

    Args:
        df: the table. floatfmt: format spec of float cells (``format(x, floatfmt)``).
        index: include the index as the first column; None includes it unless it is the
            default 0..n-1 range.

    Returns:
        The table as a string ending in a newline.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    if index is None:
        index = not df.index.equals(pd.RangeIndex(len(df)))
    table = df.reset_index() if index else df
    header = [
        " ".join(str(part) for part in column if str(part)) if isinstance(column, tuple)
        else _cell(column, floatfmt)
        for column in table.columns
    ]
    if index and df.index.name is None and df.index.nlevels == 1:
        header[0] = ""
    align = []
    for position in range(table.shape[1]):
        column = table.iloc[:, position]
        numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
        align.append("---:" if numeric else "---")
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(value, floatfmt) for value in row) + " |")
    return "\n".join(lines) + "\n"
