"""Atomic file writing (the project's only implementation) and a dependency-free Markdown table.

:func:`atomic_path` hands out a temporary file in the destination folder and moves it onto the
destination with ``os.replace`` (atomic on POSIX and Windows) once it is complete, after an
fsync of the file; the folder is fsynced afterwards so the rename survives a crash. An existing
file is never left half-written, also when rendering or writing fails. :func:`atomic_write`,
the text / JSON / CSV writers, the plots, checkpoints and the image cache all go through it.
Temporary files are named ``.<destination name>.<random>.tmp`` (:func:`stale_temporaries`
finds the ones a killed process left behind). An OS error while writing (disk full, ...) names
the destination.

:func:`check_writable` / :func:`check_output` are the one "may I write here" check every command
makes before it starts working: the output is not of the wrong kind (a folder where a file is
expected or the other way round), its nearest existing folder accepts a new file, and (for
:func:`check_output`) an existing output is only replaced when the caller says so.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

_TEMP_SUFFIX = ".tmp"


def _temp_prefix(name: str) -> str:
    return f".{name}."


def stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Temporary files of :func:`atomic_path` in ``folder`` (left there by a killed writer), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"{_temp_prefix('*')}*{_TEMP_SUFFIX}"))


def _fsync_directory(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: some systems cannot open or fsync a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _naming(exc: OSError, path: Path) -> OSError | None:
    """A copy of ``exc`` naming ``path`` (a failed ``write()`` names no file, a failed rename the
    temporary one), or None to re-raise ``exc`` as it is."""
    if exc.errno is None:
        return None
    try:
        return type(exc)(exc.errno, exc.strerror or str(exc), str(path))
    except TypeError:  # an OSError subclass with another constructor
        return None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on a clean exit it replaces ``path``.

    The temporary file exists (empty) when yielded; the caller writes it by name
    (``numpy.lib.format.open_memmap``, ``torch.save``, ...) and closes it before the block
    ends. Its name ends in ".tmp": give a writer that appends its own suffix (``np.save``) an
    open handle instead, or use :func:`atomic_write`. Parent folders are created. A new file
    gets mode 0644, a replaced file keeps its mode. If the block raises, the temporary file is
    removed and ``path`` is untouched.

    Example:
        >>> with atomic_path(folder / "pixels.npy") as temp:  # doctest: +SKIP
        ...     pixels = np.lib.format.open_memmap(temp, mode="w+", dtype=np.uint8, shape=(n, 64, 64))
        ...     pixels[:] = images
        ...     del pixels  # unmaps the file before it is moved
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o644
    try:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=_temp_prefix(target.name), suffix=_TEMP_SUFFIX)
    except OSError as exc:
        if (named := _naming(exc, target)) is None:
            raise
        raise named from exc
    os.close(fd)
    temp = Path(name)
    try:
        yield temp
        fd = os.open(temp, os.O_RDWR)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(temp, mode)
        os.replace(temp, target)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        if (named := _naming(exc, target)) is None:
            raise
        raise named from exc
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_directory(target.parent)


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(handle)`` on a binary handle of a temporary file, then move it onto ``path``.

    See :func:`atomic_path` (fsync, modes, clean-up on error).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    target = Path(path)
    with atomic_path(target) as temp, open(temp, "wb") as handle:
        write(handle)
    return target


def _nearest_folder(path: Path) -> Path:
    """``path`` or its nearest existing ancestor."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(path: str | os.PathLike, *, folder: bool = False) -> Path:
    """Check that ``path`` (a file, or with ``folder`` a folder) can be created or replaced; nothing is kept.

    The path must not be of the other kind, and its nearest existing folder must accept a new
    file: a temporary file is created there and removed (this also catches read-only file
    systems, where permission bits say nothing).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        IsADirectoryError: a file is expected and ``path`` is a folder.
        NotADirectoryError: ``path`` (``folder``) or one of its parents is a file.
        PermissionError / OSError: the folder does not accept new files (the error names it).
    """
    target = Path(path)
    if folder and target.exists() and not target.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "exists and is not a folder", str(target))
    if not folder and target.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder, expected a file name", str(target))
    base = _nearest_folder(target if folder else target.parent)
    if not base.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "is a file, so no folder can be made in it", str(base))
    try:
        fd, name = tempfile.mkstemp(dir=base, prefix=".ral-write-check.", suffix=_TEMP_SUFFIX)
    except OSError as exc:
        raise type(exc)(exc.errno, f"cannot create files here ({exc.strerror})", str(base)) from None
    os.close(fd)
    os.unlink(name)
    return target


def is_empty_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is missing or an empty folder."""
    path = Path(path)
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))


def check_output(path: str | os.PathLike, *, folder: bool = False, overwrite: bool = False) -> Path:
    """:func:`check_writable`, and refuse an existing output unless ``overwrite``.

    An output exists when the file exists, or (``folder``) when the folder holds anything.

    Raises:
        FileExistsError: the output exists and ``overwrite`` is False (the message names it and
            ``--overwrite``).
        OSError: as :func:`check_writable`.
    """
    target = check_writable(path, folder=folder)
    exists = not is_empty_folder(target) if folder else target.exists()
    if exists and not overwrite:
        kind = "folder is not empty" if folder else "file exists"
        raise FileExistsError(f"{target}: the {kind}; pass --overwrite to replace it, or choose another output")
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
        " ".join(str(part) for part in column if str(part)) if isinstance(column, tuple) else _cell(column, floatfmt)
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
