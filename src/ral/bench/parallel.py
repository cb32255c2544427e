"""Running one benchmark in several processes: ``--shard I/N`` and the file locks that make shards
sharing one output folder safe.

A benchmark is a fixed, ordered list of runs; shard ``I`` of ``N`` takes the runs whose position
``i`` (0-based) has ``i % N == I - 1``, so N job-array tasks (or N terminals) cover every run once
with no scheduler. Locks are advisory OS locks on files (``fcntl.flock`` on POSIX, ``msvcrt``
on Windows): the OS releases them when the holder dies, so a killed shard never leaves a stale
lock behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ral.bench.runner import RunStore

Item = TypeVar("Item")

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``; ``Shard(1, 1)`` is the whole benchmark."""

    index: int = 1
    count: int = 1

    def __post_init__(self) -> None:
        if not (1 <= self.index <= self.count):
            raise ValueError(f"--shard must be I/N with 1 <= I <= N, got {self.index}/{self.count}")

    @classmethod
    def parse(cls, text: str | None) -> Shard:
        """``"2/4"`` -> ``Shard(2, 4)``; None -> the whole benchmark.

        Raises:
            ValueError: not of the form I/N with 1 <= I <= N.
        """
        if text is None:
            return cls()
        match = _SHARD.match(text)
        if not match:
            raise ValueError(f"--shard must look like I/N (e.g. 1/2), got {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    @property
    def whole(self) -> bool:
        return self.count == 1

    def takes(self, position: int) -> bool:
        """Whether the run at 0-based ``position`` of the benchmark's run list is this shard's."""
        return position % self.count == self.index - 1

    def select(self, items: Sequence[Item]) -> list[Item]:
        """This shard's part of ``items`` (in order)."""
        return [item for position, item in enumerate(items) if self.takes(position)]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


#: The whole benchmark in one process (no ``--shard``).
WHOLE = Shard()


def _lock_file(handle: int, blocking: bool) -> bool:
    """Lock the open file ``handle`` exclusively; False when ``blocking`` is off and another holds it."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        while True:
            try:
                msvcrt.locking(handle, msvcrt.LK_NBLCK, 1)
                return True
            except OSError:
                if not blocking:
                    return False
                time.sleep(0.2)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, *, blocking: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` (created if missing) for the block.

    Yields:
        True when the lock is held; False only with ``blocking=False`` when another process holds
        it (the block then runs without the lock and must not touch what the lock guards).

    The lock file stays in place (removing it could let two processes lock two different files).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(target, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        yield _lock_file(handle, blocking)
    finally:
        os.close(handle)  # closing the descriptor releases the lock


def create_exclusive(path: str | os.PathLike, text: str) -> bool:
    """Create ``path`` holding ``text`` unless it exists, atomically: the file appears complete or not
    at all (written to a temporary file, then hard-linked to ``path``, which fails if ``path`` exists).

    Returns:
        True when this call created the file, False when it existed already.
    """
    from ral.report import write_text

    target = Path(path)
    temp = target.with_name(f".{target.name}.{os.getpid()}.{time.monotonic_ns()}.new")
    write_text(text, temp)
    try:
        os.link(temp, target)
        return True
    except FileExistsError:
        return False
    finally:
        temp.unlink(missing_ok=True)


class RunBusy(RuntimeError):
    """A run that another process is computing at this moment (see :meth:`RunStore.run`)."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id} is being computed by another process")
        self.run_id = run_id


@dataclass(frozen=True)
class Job:
    """One run of a benchmark: its id and spec in the run store, the work, and how to log it."""

    run_id: str
    spec: Mapping[str, Any]
    work: Callable[[Path], Mapping[str, Any]]
    label: str
    metric: str


def run_jobs(
    store: RunStore, jobs: Sequence[Job], shard: Shard = WHOLE, *, log: Callable[[str], None] = print
) -> list[dict[str, Any] | None]:
    """Run (or reuse) this shard's jobs in order, then read back the result of every job.

    A job another process is computing (:class:`RunBusy`) is skipped with a log line.

    Returns:
        One entry per job of the whole benchmark (every shard's): its stored result, or None
        while it has not finished (in this or another process).
    """
    for position, job in enumerate(jobs):
        if not shard.takes(position):
            continue
        head = f"[{position + 1}/{len(jobs)}] {job.label}"
        started = time.perf_counter()
        try:
            result, computed = store.run(job.run_id, job.spec, job.work)
        except RunBusy:
            log(f"{head}: being computed by another process, skipped")
            continue
        how = f"{time.perf_counter() - started:.0f} s" if computed else "done before, reused"
        log(f"{head}: {job.metric} {result[job.metric]:.4f} ({how})")
    return [store.result(job.run_id, job.spec) for job in jobs]


def missing_message(missing: int, total: int, shard: Shard, command: str) -> str:
    """What to do when runs of the benchmark are still missing after this process's share."""
    where = f"shard {shard} done; " if not shard.whole else ""
    return (
        f"{where}{missing} of {total} runs are not finished (other shards, or runs being computed elsewhere); "
        f"the summary is written by the process that finishes the last run, or by re-running `{command}` "
        "without --shard (which also runs whatever is left)"
    )


@dataclass(frozen=True)
class RunOptions:
    """How a training benchmark runs in this process: its ``shard``, the ``command`` line the report
    records (without ``--shard``), ``overwrite`` (discard an earlier benchmark in the folder: give
    it to one shard only) and ``log`` (where progress lines go)."""

    shard: Shard = WHOLE
    command: str = ""
    overwrite: bool = False
    log: Callable[[str], None] = print


#: The options of a plain run: the whole benchmark in one process.
DEFAULT_RUN = RunOptions()
