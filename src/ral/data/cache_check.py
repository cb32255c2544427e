"""What an image cache must hold, and the checks that it does (used by :mod:`ral.data.cache`).

A cache is trusted only after a check against its ``<cache>.json``, written by the build after
the pixels and moved into place before the cache itself:

- the file size and the ``.npy`` header (shape (N, C, S, S), dtype uint8, C order, data offset)
  match what the table and the settings ask for, and the header bytes hash as recorded;
- the full key (:func:`ral.data.cache.cache_key`: cache version, size, channels and every image
  path, of which the file name carries only 16 hex digits) matches;
- the pixel bytes hash as recorded, per block of whole rows (at most :data:`BLOCK_BYTES`; BLAKE2b
  from ``hashlib``, 8-byte digests). A cache opened by a run checks its first and last block and
  up to :data:`SAMPLED_BLOCKS` others drawn at random (a few MiB, whatever the cache's size: a
  truncated, emptied or header-overwritten file is always caught, overwritten pixels with a
  probability that grows with each open); ``ral data cache --verify`` checks every block.

Each check returns the reason a cache cannot be used (``None``: it can), which the build prints
when it rebuilds the cache (or names in its refusal with ``dataset.cache_must_exist``).
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: Pixel bytes per checksum block at most (whole rows; a row larger than this is a block of its own).
BLOCK_BYTES = 1 << 20
#: Blocks a cache of at least this many rows is cut into at least (the build's unit of work, too).
MIN_BLOCKS = 16
#: Blocks checked at random on open, besides the first and the last.
SAMPLED_BLOCKS = 6
DTYPE = np.dtype(np.uint8)


def digest(data: bytes) -> str:
    """16 hex digits of BLAKE2b over ``data``."""
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def block_rows(shape: Sequence[int]) -> int:
    """Rows per checksum block of a cache of ``shape`` (N, C, S, S)."""
    return max(1, min(BLOCK_BYTES // int(np.prod(shape[1:])), -(-int(shape[0]) // MIN_BLOCKS)))


def header_bytes(shape: Sequence[int]) -> bytes:
    """The ``.npy`` header numpy writes for a C-order uint8 array of ``shape``."""
    import io

    buffer = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(DTYPE), "fortran_order": False, "shape": tuple(shape)}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def expected(shape: Sequence[int], key: str) -> dict[str, Any]:
    """The fields of ``<cache>.json`` that describe the file itself (all but the block digests)."""
    header = header_bytes(shape)
    rows = block_rows(shape)
    return {
        "key": key,
        "shape": [int(n) for n in shape],
        "dtype": DTYPE.str,
        "offset": len(header),
        "bytes": len(header) + int(np.prod(shape)),
        "header": digest(header),
        "block_rows": rows,
    }


def _read_header(handle: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(handle)
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    return reader(handle)


def _blocks_to_check(count: int, full: bool) -> Iterable[int]:
    if full or count <= SAMPLED_BLOCKS + 2:
        return range(count)
    # an unseeded generator of its own: the global RNG (and so a run's results) is left untouched
    drawn = random.Random(os.urandom(8)).sample(range(1, count - 1), SAMPLED_BLOCKS)
    return [0, *sorted(drawn), count - 1]


def problem(cache_file: Path, info: dict[str, Any] | None, want: dict[str, Any], *, full: bool = False) -> str | None:
    """Why ``cache_file`` does not hold what ``want`` (:func:`expected`) describes, or None when it does.

    Args:
        info: the content of ``<cache>.json`` (None: missing or unreadable).
        full: hash every block instead of a sample.
    """
    if info is None:
        return "its description <cache>.json is missing or unreadable"
    for field in ("key", "shape", "dtype", "offset", "bytes", "header", "block_rows"):
        if info.get(field) != want[field]:
            return f"its description records {field} {info.get(field)!r}, expected {want[field]!r}"
    size = cache_file.stat().st_size
    if size != want["bytes"]:
        return f"the file has {size} bytes, expected {want['bytes']} (truncated or overwritten)"
    digests = info.get("blocks")
    rows, n = want["block_rows"], want["shape"][0]
    if not isinstance(digests, list) or len(digests) != -(-n // rows):
        return "its description lacks the block checksums"
    row_bytes = int(np.prod(want["shape"][1:]))
    with open(cache_file, "rb") as handle:
        try:
            shape, fortran, dtype = _read_header(handle)
        except Exception as exc:  # noqa: BLE001 - numpy's parser raises ValueError, SyntaxError, TokenError... on garbage
            return f"its .npy header cannot be read ({exc})"
        if (list(shape), fortran, dtype) != (want["shape"], False, DTYPE) or handle.tell() != want["offset"]:
            return f"its .npy header says shape {shape}, dtype {dtype}, expected {tuple(want['shape'])}, uint8"
        handle.seek(0)
        if digest(handle.read(want["offset"])) != want["header"]:
            return "its .npy header bytes differ from those written"
        for block in _blocks_to_check(len(digests), full):
            start = block * rows
            handle.seek(want["offset"] + start * row_bytes)
            data = handle.read((min(n, start + rows) - start) * row_bytes)
            if digest(data) != digests[block]:
                return f"the pixels of rows {start}-{min(n, start + rows) - 1} differ from those written (checksum)"
    return None
