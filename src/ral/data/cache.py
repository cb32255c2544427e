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
  uses the finished file. The build reserves the whole file at once (a full disk is one error
  naming the cache folder, before any decoding) and decodes with a pool of worker processes
  writing their rows with ``pwrite`` into one temporary file that :func:`ral.report.atomic_path`
  moves into place; the lock file is removed when the lock is released. A build killed half-way
  leaves only its temporary file, which the next build removes; its workers die with it.
- **Verified before use**: ``<cache>.json`` also records the shape, the full key, the header and
  a checksum per block of rows; a cache that does not match (truncated, emptied, overwritten) is
  rebuilt, saying why (:mod:`ral.data.cache_check`).
- **Must exist**: ``must_exist=True`` (``dataset.cache_must_exist``) refuses to build, for
  clusters where the cache is built once beforehand (``ral data cache``).

Building the cache is also the one decode check of the images: with ``skip_bad`` an image that
cannot be read is stored as zeros and listed, with the reason, in ``<cache>.json``, so a reused
cache knows its bad rows without decoding anything.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import signal
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from ral.data.cache_check import block_rows, digest, expected, header_bytes, problem
from ral.data.errors import MissingFileError, TableError
from ral.data.images import read_image
from ral.data.table import LabelTable
from ral.orphans import die_with_parent
from ral.progress import progress
from ral.report.files import atomic_path, stale_temporaries, write_json

CACHE_VERSION = 4  # of <cache>.json; 4: shape, full key, header and block checksums (cache_check)
#: Version in the cache key (file name): 3: channel axis (N, C, S, S); key without stats.
KEY_VERSION = 3
#: Images whose size and modification time the staleness check compares (spread over the table).
PROBES = 64


def cache_key(table: LabelTable, size: int, channels: int = 1) -> str:
    """Hex digest of (cache version, size, channels, each image's absolute path); no file is read or stat-ed."""
    digest = hashlib.sha1(f"ral-cache-v{KEY_VERSION}:{size}:{channels}".encode())
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


def _want(table: LabelTable, size: int, channels: int) -> dict[str, Any]:
    return expected((len(table), channels, size, size), cache_key(table, size, channels))


def cache_problem(cache_file: str | os.PathLike, table: LabelTable, *, full: bool = False) -> str | None:
    """Why ``cache_file`` cannot serve ``table`` (None: it can): missing, written by another cache
    version or for other rows or settings, probed images changed since the build, or its bytes
    differ from what the build wrote (see :mod:`ral.data.cache_check`; ``full``: every block)."""
    cache_file = Path(cache_file)
    if not cache_file.is_file():
        return "it does not exist"
    info = _read_info(cache_file)
    if info is None:
        return "its description <cache>.json is missing or unreadable"
    if info.get("version") != CACHE_VERSION:
        return f"it was written by cache version {info.get('version')!r} (this is {CACHE_VERSION})"
    size, channels = info.get("size"), info.get("channels")
    if info.get("rows") != len(table) or not isinstance(size, int) or channels not in (1, 3):
        return f"its description is for {info.get('rows')!r} rows, not {len(table)}"
    if cache_path(table, size, cache_file.parent, channels) != cache_file:
        return "its description is for other images or settings"
    for row, stamp in info.get("probes", []):
        if _stamp(table.image_path(row)) != stamp:
            return f"image {table.image_path(row)} changed since the build (size or modification time)"
    try:
        return problem(cache_file, info, _want(table, size, channels), full=full)
    except OSError as exc:  # e.g. replaced by a process rebuilding it right now: checked again under the lock
        return f"it cannot be read ({exc.strerror or exc})"


def is_current(cache_file: str | os.PathLike, table: LabelTable) -> bool:
    """Whether ``cache_file`` can serve ``table`` (:func:`cache_problem` with the sampled check)."""
    return cache_problem(cache_file, table) is None


def cache_failures(cache_file: str | os.PathLike) -> dict[int, str]:
    """``{row: reason}`` of the rows :func:`build_cache` could not decode (stored as zeros)."""
    info = _read_info(Path(cache_file)) or {}
    return {int(row): str(reason) for row, reason in info.get("failures", {}).items()}


def default_cache_workers() -> int:
    """Decoding processes of a cache build: the CPUs this process may use (at most 32)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(32, cpus))


@dataclass
class _Audit:
    full: bool
    actions: dict[Path, str] = field(default_factory=dict)


# Set by audit_caches (``ral data cache``): a context variable rather than an argument, because the
# caches are built through ImageDataset, shared with every run, which never asks for a full check.
_AUDIT: ContextVar[_Audit | None] = ContextVar("ral_cache_audit", default=None)


@contextmanager
def audit_caches(full: bool = False) -> Iterator[dict[Path, str]]:
    """Within this block, :func:`build_cache` checks every block of an existing cache (``full``) and
    records what it did with each cache in the yielded ``{cache file: action}`` (``kept (...)``,
    ``built``, ``rebuilt: <reason>``)."""
    audit = _Audit(full)
    token = _AUDIT.set(audit)
    try:
        yield audit.actions
    finally:
        _AUDIT.reset(token)


def _record(cache_file: Path, action: str) -> None:
    if (audit := _AUDIT.get()) is not None:
        audit.actions[cache_file] = action


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


def _allocate(temp: Path, shape: tuple[int, ...]) -> int:
    """Write the ``.npy`` header of ``shape`` to ``temp`` and reserve the pixel bytes; the data offset.

    The space is reserved at once (``posix_fallocate``) so that a full disk is an ``OSError`` here,
    before any decoding, rather than a SIGBUS from a memory map written into a sparse file; the
    pixels are then written with ``pwrite``, which reports a full disk as an error too.
    """
    header = header_bytes(shape)
    total = len(header) + int(np.prod(shape))
    with open(temp, "r+b") as handle:
        handle.write(header)
        handle.flush()
        try:
            os.posix_fallocate(handle.fileno(), 0, total)
        except (AttributeError, OSError) as exc:  # no fallocate here (macOS) or on this file system
            if isinstance(exc, OSError) and exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise
            os.ftruncate(handle.fileno(), total)
    return len(header)


def _open_job(table: LabelTable, size: int, channels: int, temp: str, skip_bad: bool, offset: int) -> dict[str, Any]:
    """What decoding blocks of rows needs: the table, the settings and the cache file, open for writing."""
    return {
        "table": table,
        "shape": (channels, size, size),
        "skip_bad": skip_bad,
        "offset": offset,
        "rows": block_rows((len(table), channels, size, size)),
        "fd": os.open(temp, os.O_WRONLY),
    }


def _decode_blocks(job: dict[str, Any], first: int, stop: int) -> tuple[dict[int, str], dict[int, str]]:
    """Decode checksum blocks ``first:stop`` into the open cache file: ``({row: reason} of the
    failures (skip_bad), {block: digest})``."""
    table, (channels, size, _), rows = job["table"], job["shape"], job["rows"]
    failures, digests = {}, {}
    for block in range(first, stop):
        start, end = block * rows, min(len(table), (block + 1) * rows)
        pixels = np.zeros((end - start, *job["shape"]), dtype=np.uint8)
        for i in range(start, end):
            try:
                pixels[i - start] = decode_row(table, i, size, channels)
            except (FileNotFoundError, ValueError) as exc:
                if not job["skip_bad"]:
                    raise
                failures[i] = str(exc)
        data = pixels.tobytes()
        position, written = job["offset"] + start * int(np.prod(job["shape"])), 0
        while written < len(data):  # a regular file takes it all at once, unless the disk is full
            written += os.pwrite(job["fd"], data[written:], position + written)
        digests[block] = digest(data)
    return failures, digests


# A pool worker's job, opened once per worker process by its initializer.
_worker_job: dict[str, Any] = {}


def _start_worker(parent: int, *args: Any) -> None:
    # a worker of a killed build would wait on its task pipe forever: it dies with the build (ral.orphans)
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the whole group: the build stops the pool
    _worker_job.update(_open_job(*args))


def _worker_blocks(first: int, stop: int) -> tuple[dict[int, str], dict[int, str]]:
    return _decode_blocks(_worker_job, first, stop)


def _fill(
    table: LabelTable, size: int, channels: int, temp: Path, skip_bad: bool, workers: int, offset: int
) -> tuple[dict[int, str], list[str]]:
    """Decode every row into the (already allocated) cache file ``temp`` with ``workers`` processes:
    the failures and the block digests, in order."""
    n, rows = len(table), block_rows((len(table), channels, size, size))
    count = math.ceil(n / rows)
    per_task = max(1, math.ceil(min(1024, math.ceil(n / (4 * workers))) / rows))  # in blocks
    ranges = [(first, min(count, first + per_task)) for first in range(0, count, per_task)]
    args = (table, size, channels, str(temp), skip_bad, offset)
    failures: dict[int, str] = {}
    digests: dict[int, str] = {}

    def done(first: int, stop: int, result: tuple[dict[int, str], dict[int, str]]) -> None:
        failures.update(result[0])
        digests.update(result[1])
        bar.update(min(n, stop * rows) - first * rows)

    with progress(total=n, desc="image cache", unit="image") as bar:
        if workers == 1 or len(ranges) <= 1:
            job = _open_job(*args)
            try:
                for first, stop in ranges:
                    done(first, stop, _decode_blocks(job, first, stop))
            finally:
                os.close(job["fd"])
            return failures, [digests[block] for block in range(count)]
        # fork: the workers inherit the table instead of unpickling it (as DataLoader workers do on Linux)
        context = get_context("fork") if sys.platform.startswith("linux") else None
        with ProcessPoolExecutor(
            min(workers, len(ranges)), mp_context=context, initializer=_start_worker, initargs=(os.getpid(), *args)
        ) as pool:
            futures = [pool.submit(_worker_blocks, first, stop) for first, stop in ranges]
            try:
                for (first, stop), future in zip(ranges, futures):  # in order: the first bad row is reported
                    done(first, stop, future.result())
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    return failures, [digests[block] for block in range(count)]


def _no_space(exc: OSError, folder: Path, needed: int) -> OSError:
    """A full disk (or quota) while building, as one line naming the cache folder."""
    return OSError(
        exc.errno,
        f"no space left for the image cache ({needed / 2**20:.1f} MiB needed; its temporary files were "
        "removed): free space there or set dataset.cache_dir to another folder",
        str(folder),
    )


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
    """Decode every image of ``table`` once into ``cache_dir`` (unless a usable cache is there).

    An existing cache is checked first (:func:`cache_problem`: the sampled check, or every block
    inside :func:`audit_caches` with ``full``) and rebuilt when it fails, saying why on stderr.
    Safe to call from many processes at once: one builds, the others wait for it (see the module
    docstring).

    Args:
        channels: 1 (grayscale) or 3 (RGB), as in :func:`ral.data.images.read_image`.
        skip_bad: store an image that cannot be read as zeros and list it (see
            :func:`cache_failures`) instead of raising.
        workers: decoding processes (default :func:`default_cache_workers`).
        must_exist: raise instead of building when there is no usable cache.

    Returns:
        Path of a ``.npy`` file holding uint8 (N, channels, size, size).

    Raises:
        FileNotFoundError / ValueError: an image cannot be read (without ``skip_bad``; the
            message names the file and the row), or ``must_exist`` and no usable cache (naming
            the cache file and why).
        OSError: the disk is full while building (naming ``cache_dir``; nothing is left behind).
    """
    target = cache_path(table, size, cache_dir, channels)
    audit = _AUDIT.get()
    full = audit is not None and audit.full
    reason = cache_problem(target, table, full=full)
    if reason is None:
        _record(target, "kept (every block checked)" if full else "kept (size, header and sampled blocks checked)")
        return target
    if must_exist:
        state = "does not exist" if not target.is_file() else f"is out of date or damaged ({reason})"
        raise FileNotFoundError(
            f"image cache {target} of {table.source or 'the table'} {state} and dataset.cache_must_exist is set; "
            "build it first with `ral data cache --config <the run's config>`"
        )
    workers = default_cache_workers() if workers is None else workers
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"cache workers must be an integer >= 1, got {workers!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(target):
        reason = cache_problem(target, table, full=full)
        if reason is None:  # built by the process this one waited for
            _record(target, "built by another process")
            return target
        ours = (f".{target.name}.", f".{info_path(target).name}.")
        for temp in stale_temporaries(target.parent):  # left by a killed build; nobody else builds now
            if temp.name.startswith(ours):
                temp.unlink(missing_ok=True)
        rebuild = target.exists()
        if rebuild:
            print(f"ral: image cache {target} cannot be used ({reason}); rebuilding it", file=sys.stderr, flush=True)
        target.unlink(missing_ok=True)  # an unusable cache (processes reading it keep their mapping)
        print(
            f"ral: building the image cache {target}: {len(table)} images at {size} px with {workers} process(es)",
            file=sys.stderr,
            flush=True,
        )
        shape = (len(table), channels, size, size)
        info = {
            "version": CACHE_VERSION,
            "rows": len(table),
            "size": size,
            "channels": channels,
            "source": str(table.source) if table.source else None,
            "probes": [[row, _stamp(table.image_path(row))] for row in _probe_rows(len(table))],
            **expected(shape, cache_key(table, size, channels)),
        }
        try:
            with atomic_path(target) as temp:
                offset = _allocate(temp, shape)
                failures, info["blocks"] = _fill(table, size, channels, temp, skip_bad, workers, offset)
                info["failures"] = {str(row): reason for row, reason in sorted(failures.items())}
                write_json(info, info_path(target))  # before the cache appears: a cache never lacks its info
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise _no_space(exc, target.parent, info["bytes"]) from None
            raise
    _record(target, f"rebuilt: {reason}" if rebuild else "built")
    return target
