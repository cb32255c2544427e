"""Preprocessing cache: every image of a table decoded once into one uint8 ``.npy`` (N, C, S, S).

One cache serves every process of a run and every later run:

- **Key without stats**: the file name carries a hash of the cache version, the side S, the
  channels C and the image paths in table order (strings only: no file is touched to compute it).
- **Cheap staleness check**: ``<cache>.json`` beside the cache records the size and modification
  time of up to :data:`PROBES` images spread over the table. A start stats only those; if one
  differs (a dataset re-exported or replaced in place), the cache is rebuilt. A single image
  edited in place without touching the table is not noticed: delete the cache to rebuild it.
- **One build, many processes**: the build runs under a file lock beside the cache
  (``filelock``); every other process (other DDP ranks, other runs) waits on the lock and then
  uses the finished file. The build decodes with a pool of worker processes writing straight into
  the memory-mapped file, through one temporary file that :func:`ral.report.atomic_path` moves into
  place; the lock file is removed when the lock is released. A build killed half-way leaves only
  its temporary file, which the next build removes.
- **Must exist**: ``must_exist=True`` (``dataset.cache_must_exist``) refuses to build, for
  clusters where the cache is built once beforehand (``ral data cache``).

Building the cache is also the one decode check of the images: with ``skip_bad`` an image that
cannot be read is stored as zeros and listed, with the reason, in ``<cache>.json``, so a reused
cache knows its bad rows without decoding anything.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from ral.data.errors import MissingFileError, TableError
from ral.data.images import read_image
from ral.data.table import LabelTable
from ral.report.files import atomic_path, stale_temporaries, write_json

CACHE_VERSION = 3  # 3: channel axis (N, C, S, S); key without stats; probes in <cache>.json
#: Images whose size and modification time the staleness check compares (spread over the table).
PROBES = 64


def cache_key(table: LabelTable, size: int, channels: int = 1) -> str:
    """Hex digest of (cache version, size, channels, each image's absolute path); no file is read or stat-ed."""
    digest = hashlib.sha1(f"ral-cache-v{CACHE_VERSION}:{size}:{channels}".encode())
    digest.update("\n".join(os.path.abspath(table.image_path(i)) for i in range(len(table))).encode())
    return digest.hexdigest()


def cache_path(table: LabelTable, size: int, cache_dir: str | os.PathLike, channels: int = 1) -> Path:
    """Where the cache of ``table`` at ``size`` px and ``channels`` channels lives inside ``cache_dir``."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", table.source.stem if table.source else "table")
    suffix = "" if channels == 1 else f"-{channels}ch"
    return Path(cache_dir) / f"{stem}-{size}px{suffix}-{cache_key(table, size, channels)[:16]}.npy"


def info_path(cache_file: str | os.PathLike) -> Path:
    """``<cache>.json``: version, shape, staleness probes and the rows that could not be decoded."""
    cache_file = Path(cache_file)
    return cache_file.with_name(cache_file.stem + ".json")


def _lock_path(cache_file: Path) -> Path:
    return cache_file.with_name(cache_file.stem + ".lock")


def _describe(table: LabelTable, i: int) -> str:
    return f"row {i} (id {table.ids[i]!r}) of {table.source or 'the table'}"


def decode_row(table: LabelTable, i: int, size: int, channels: int = 1) -> np.ndarray:
    """Row ``i``'s image as uint8 (channels, size, size).

    Raises:
        MissingFileError / TableError: the image is missing / cannot be decoded (naming the file,
            the row and its id; ``option="skip_bad"``).
    """
    path = table.image_path(i)
    fields = {"path": table.source or table.root, "value": str(path), "option": "skip_bad"}
    try:
        pixels = read_image(path, size, channels=channels)
    except FileNotFoundError as exc:
        raise MissingFileError(f"{exc} [{_describe(table, i)}]", **fields) from exc
    except ValueError as exc:
        raise TableError(f"{exc} [{_describe(table, i)}]", **fields) from exc
    return pixels[None] if pixels.ndim == 2 else np.ascontiguousarray(pixels.transpose(2, 0, 1))


def decode_failures(table: LabelTable, size: int, channels: int = 1) -> dict[int, str]:
    """Decode every image of ``table`` once; ``{row: reason}`` of those that cannot be read."""
    failures = {}
    for i in range(len(table)):
        try:
            decode_row(table, i, size, channels)
        except (FileNotFoundError, ValueError) as exc:
            failures[i] = str(exc)
    return failures


def _stamp(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _probe_rows(n: int) -> list[int]:
    return sorted({int(i) for i in np.linspace(0, n - 1, min(n, PROBES))}) if n else []


def _read_info(cache_file: Path) -> dict[str, Any] | None:
    try:
        return json.loads(info_path(cache_file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_current(cache_file: str | os.PathLike, table: LabelTable) -> bool:
    """Whether ``cache_file`` exists, was written by this cache version for ``table``'s rows, and
    its probed images still have the size and modification time they had at the build."""
    cache_file = Path(cache_file)
    info = _read_info(cache_file)
    if not cache_file.is_file() or info is None:
        return False
    if info.get("version") != CACHE_VERSION or info.get("rows") != len(table):
        return False
    return all(_stamp(table.image_path(row)) == stamp for row, stamp in info.get("probes", []))


def cache_failures(cache_file: str | os.PathLike) -> dict[int, str]:
    """``{row: reason}`` of the rows :func:`build_cache` could not decode (stored as zeros)."""
    info = _read_info(Path(cache_file)) or {}
    return {int(row): str(reason) for row, reason in info.get("failures", {}).items()}


def default_cache_workers() -> int:
    """Decoding processes of a cache build: the CPUs this process may use (at most 32)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(32, cpus))


@contextmanager
def _build_lock(cache_file: Path) -> Iterator[None]:
    """Hold the build lock of ``cache_file``; says so once when another process holds it."""
    from filelock import FileLock, Timeout

    path = _lock_path(cache_file)
    lock = FileLock(path)
    try:
        lock.acquire(blocking=False)
    except Timeout:
        print(f"ral: waiting for another process to build the image cache {cache_file}", file=sys.stderr, flush=True)
        lock.acquire()
    try:
        yield
    finally:
        # unlinked while held: a process waiting on this lock file retries on a new one, so none is left behind
        path.unlink(missing_ok=True)
        lock.release()


def _open_job(table: LabelTable, size: int, channels: int, temp: str, skip_bad: bool) -> dict[str, Any]:
    """What decoding rows needs: the table, the settings and the cache file, memory-mapped for writing."""
    return {
        "table": table,
        "size": size,
        "channels": channels,
        "skip_bad": skip_bad,
        "out": np.load(temp, mmap_mode="r+"),
    }


def _decode_rows(job: dict[str, Any], start: int, stop: int) -> dict[int, str]:
    """Decode rows ``start:stop`` into the open cache file; ``{row: reason}`` of the failures (skip_bad)."""
    out, failures = job["out"], {}
    for i in range(start, stop):
        try:
            out[i] = decode_row(job["table"], i, job["size"], job["channels"])
        except (FileNotFoundError, ValueError) as exc:
            if not job["skip_bad"]:
                raise
            failures[i] = str(exc)
            out[i] = 0
    out.flush()
    return failures


# A pool worker's job, opened once per worker process by its initializer.
_worker_job: dict[str, Any] = {}


def _start_worker(*args: Any) -> None:
    _worker_job.update(_open_job(*args))


def _worker_rows(start: int, stop: int) -> dict[int, str]:
    return _decode_rows(_worker_job, start, stop)


def _fill(table: LabelTable, size: int, channels: int, temp: Path, skip_bad: bool, workers: int) -> dict[int, str]:
    """Decode every row into the (already created) cache file ``temp``, with ``workers`` processes."""
    n = len(table)
    chunk = max(1, min(1024, math.ceil(n / (4 * workers))))
    ranges = [(start, min(n, start + chunk)) for start in range(0, n, chunk)]
    args = (table, size, channels, str(temp), skip_bad)
    failures: dict[int, str] = {}
    if workers == 1 or len(ranges) == 1:
        job = _open_job(*args)
        for start, stop in ranges:
            failures.update(_decode_rows(job, start, stop))
        del job["out"]  # unmapped before the file is moved
        return failures
    # fork: the workers inherit the table instead of unpickling it (as DataLoader workers do on Linux)
    context = get_context("fork") if sys.platform.startswith("linux") else None
    with ProcessPoolExecutor(
        min(workers, len(ranges)), mp_context=context, initializer=_start_worker, initargs=args
    ) as pool:
        futures = [pool.submit(_worker_rows, start, stop) for start, stop in ranges]
        try:
            for future in futures:  # in order: without skip_bad the first bad row is the one reported
                failures.update(future.result())
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return failures


def build_cache(
    table: LabelTable,
    size: int,
    cache_dir: str | os.PathLike,
    *,
    channels: int = 1,
    skip_bad: bool = False,
    workers: int | None = None,
    must_exist: bool = False,
) -> Path:
    """Decode every image of ``table`` once into ``cache_dir`` (unless an up-to-date cache is there).

    Safe to call from many processes at once: one builds, the others wait for it (see the module
    docstring).

    Args:
        channels: 1 (grayscale) or 3 (RGB), as in :func:`ral.data.images.read_image`.
        skip_bad: store an image that cannot be read as zeros and list it (see
            :func:`cache_failures`) instead of raising.
        workers: decoding processes (default :func:`default_cache_workers`).
        must_exist: raise instead of building when there is no up-to-date cache.

    Returns:
        Path of a ``.npy`` file holding uint8 (N, channels, size, size).

    Raises:
        FileNotFoundError / ValueError: an image cannot be read (without ``skip_bad``; the
            message names the file and the row), or ``must_exist`` and no up-to-date cache.
    """
    target = cache_path(table, size, cache_dir, channels)
    if is_current(target, table):
        return target
    if must_exist:
        state = "is out of date (its probed images changed)" if target.is_file() else "does not exist"
        raise FileNotFoundError(
            f"image cache {target} of {table.source or 'the table'} {state} and dataset.cache_must_exist is set; "
            "build it first with `ral data cache --config <the run's config>`"
        )
    workers = default_cache_workers() if workers is None else workers
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"cache workers must be an integer >= 1, got {workers!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(target):
        if is_current(target, table):  # built by the process this one waited for
            return target
        ours = (f".{target.name}.", f".{info_path(target).name}.")
        for temp in stale_temporaries(target.parent):  # left by a killed build; nobody else builds now
            if temp.name.startswith(ours):
                temp.unlink(missing_ok=True)
        target.unlink(missing_ok=True)  # an out-of-date cache (processes reading it keep their mapping)
        print(
            f"ral: building the image cache {target}: {len(table)} images at {size} px with {workers} process(es)",
            file=sys.stderr,
            flush=True,
        )
        info = {
            "version": CACHE_VERSION,
            "rows": len(table),
            "size": size,
            "channels": channels,
            "source": str(table.source) if table.source else None,
            "probes": [[row, _stamp(table.image_path(row))] for row in _probe_rows(len(table))],
        }
        with atomic_path(target) as temp:
            out = np.lib.format.open_memmap(temp, mode="w+", dtype=np.uint8, shape=(len(table), channels, size, size))
            del out  # the decoding processes open it themselves
            failures = _fill(table, size, channels, temp, skip_bad, workers)
            info["failures"] = {str(row): reason for row, reason in sorted(failures.items())}
            write_json(info, info_path(target))  # before the cache appears: a cache never lacks its info
    return target
