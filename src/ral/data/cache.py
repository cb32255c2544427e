"""Preprocessing cache: every image of a table decoded once into one uint8 ``.npy`` (N, S, S).

The file name carries a hash of the image paths, their sizes and modification times and the
target size, so a changed table or image gives a new cache file instead of stale pixels.
Later epochs (and later runs) memory-map the file and never decode images again.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np

from ral.data.images import read_image
from ral.data.table import LabelTable
from ral.report.files import atomic_path

CACHE_VERSION = 2  # 2: 16-bit images are scaled by their bit depth, no longer by their maximum


def cache_key(table: LabelTable, size: int) -> str:
    """Hex digest of (cache version, size, each image's absolute path, byte size, mtime)."""
    digest = hashlib.sha1(f"ral-cache-v{CACHE_VERSION}:{size}".encode())
    for i in range(len(table)):
        path = table.image_path(i).resolve()
        try:
            st = path.stat()
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        digest.update(f"\n{path}\t{stamp}".encode())
    return digest.hexdigest()


def cache_path(table: LabelTable, size: int, cache_dir: str | os.PathLike) -> Path:
    """Where the cache of ``table`` at ``size`` px lives inside ``cache_dir``."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", table.source.stem if table.source else "table")
    return Path(cache_dir) / f"{stem}-{size}px-{cache_key(table, size)[:16]}.npy"


def _describe(table: LabelTable, i: int) -> str:
    return f"row {i} (id {table.ids[i]!r}) of {table.source or 'the table'}"


def decode_row(table: LabelTable, i: int, size: int) -> np.ndarray:
    """Row ``i``'s image as uint8 (size, size); errors name the file, the row and its id."""
    try:
        return read_image(table.image_path(i), size)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{exc} [{_describe(table, i)}]") from None
    except ValueError as exc:
        raise ValueError(f"{exc} [{_describe(table, i)}]") from None


def build_cache(table: LabelTable, size: int, cache_dir: str | os.PathLike) -> Path:
    """Decode every image of ``table`` once into ``cache_dir`` (if not already there).

    Returns:
        Path of a ``.npy`` file holding uint8 (N, size, size), written through
        :func:`ral.report.atomic_path`, so an interrupted build leaves no partial cache.
    """
    target = cache_path(table, size, cache_dir)
    if target.is_file():
        return target
    with atomic_path(target) as temp:
        out = np.lib.format.open_memmap(temp, mode="w+", dtype=np.uint8, shape=(len(table), size, size))
        for i in range(len(table)):
            out[i] = decode_row(table, i, size)
        out.flush()
        del out
    return target
