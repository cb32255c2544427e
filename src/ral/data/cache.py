"""Preprocessing cache: every image of a table decoded once into one uint8 ``.npy`` (N, S, S).

The file name carries a hash of the image paths, their sizes and modification times and the
target size, so a changed table or image gives a new cache file instead of stale pixels.
Later epochs (and later runs) memory-map the file and never decode images again. Building the
cache is also the one decode check of the images: with ``skip_bad`` an image that cannot be read
is stored as zeros and listed, with the reason, in ``<cache>.failures.json`` beside it, so a
reused cache knows its bad rows without decoding anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np

from ral.data.images import read_image
from ral.data.table import LabelTable
from ral.report.files import atomic_path, write_json

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


def decode_failures(table: LabelTable, size: int) -> dict[int, str]:
    """Decode every image of ``table`` once; ``{row: reason}`` of those that cannot be read."""
    failures = {}
    for i in range(len(table)):
        try:
            decode_row(table, i, size)
        except (FileNotFoundError, ValueError) as exc:
            failures[i] = str(exc)
    return failures


def failures_path(cache_file: str | os.PathLike) -> Path:
    """The ``{row: reason}`` list of the images a cache could not decode (next to the cache)."""
    cache_file = Path(cache_file)
    return cache_file.with_name(cache_file.stem + ".failures.json")


def cache_failures(cache_file: str | os.PathLike) -> dict[int, str]:
    """``{row: reason}`` of the rows :func:`build_cache` could not decode (stored as zeros)."""
    path = failures_path(cache_file)
    if not path.is_file():
        return {}
    return {int(row): str(reason) for row, reason in json.loads(path.read_text(encoding="utf-8")).items()}


def build_cache(table: LabelTable, size: int, cache_dir: str | os.PathLike, *, skip_bad: bool = False) -> Path:
    """Decode every image of ``table`` once into ``cache_dir`` (if not already there).

    Args:
        skip_bad: store an image that cannot be read as zeros and list it (see
            :func:`cache_failures`) instead of raising.

    Returns:
        Path of a ``.npy`` file holding uint8 (N, size, size), written through
        :func:`ral.report.atomic_path`, so an interrupted build leaves no partial cache.

    Raises:
        FileNotFoundError / ValueError: an image cannot be read (without ``skip_bad``); the
            message names the file and the row.
    """
    target = cache_path(table, size, cache_dir)
    if target.is_file():
        return target
    failures: dict[int, str] = {}
    with atomic_path(target) as temp:
        out = np.lib.format.open_memmap(temp, mode="w+", dtype=np.uint8, shape=(len(table), size, size))
        for i in range(len(table)):
            try:
                out[i] = decode_row(table, i, size)
            except (FileNotFoundError, ValueError) as exc:
                if not skip_bad:
                    raise
                failures[i] = str(exc)
                out[i] = 0
        out.flush()
        del out
        if failures:  # written before the cache appears: a cache file never lacks its list
            write_json({str(row): reason for row, reason in failures.items()}, failures_path(target))
    return target
