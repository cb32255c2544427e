"""One process per run folder: ``ral train`` (also ``--resume``) and ``ral evaluate`` hold an
exclusive lock on the folder they write into, so a second process writing into the same folder is
refused in one line before it does any work.

The lock is filelock's (``flock`` on ``.<folder name>.ral.lock`` beside the folder, so that the
folder itself stays empty until the command writes its outputs): the kernel releases it when its
process dies, so a run killed with SIGKILL never blocks the next one. flock says nothing about
who holds it, so the holder writes its pid and command into the sidecar ``.<folder name>.ral.pid``
once it holds the lock; a refused process reads that to name the holder. Both files are removed
when the lock is released (the lock file while still held: filelock retries when the file it
locked was unlinked in between, so no two processes can hold it), and so are the folders the lock
created when nothing else was written into them.

Only the process of global rank 0 locks: the other processes of a distributed run (started by
Lightning or ``torchrun`` with ``RANK`` / ``LOCAL_RANK`` set) write into the folder with it.
"""

from __future__ import annotations

import errno
import functools
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])
# The locks taken inside the innermost function decorated with releases_run_locks.
_HELD: ContextVar[ExitStack | None] = ContextVar("ral_run_locks", default=None)


def lock_files(folder: str | os.PathLike) -> tuple[Path, Path]:
    """The lock file of ``folder`` and its sidecar naming the holder: beside ``folder``, or inside it
    when there is no writable folder beside it (``/``, ``.`` in a read-only parent)."""
    folder = Path(folder).absolute()
    beside = folder.parent
    while not beside.exists() and beside != beside.parent:
        beside = beside.parent
    if not folder.name or not os.access(beside, os.W_OK):
        return folder / ".ral.lock", folder / ".ral.pid"
    return folder.with_name(f".{folder.name}.ral.lock"), folder.with_name(f".{folder.name}.ral.pid")


def _holder(sidecar: Path) -> str:
    """``pid N (command)`` from the sidecar, or a placeholder when the holder has not written it yet."""
    try:
        pid, _, command = sidecar.read_text(encoding="utf-8").strip().partition(" ")
    except OSError:
        return "pid ? (another process; it has not written its pid yet)"
    return f"pid {pid} ({command})" if command else f"pid {pid}"


def _is_rank_zero() -> bool:
    """Whether this process is global rank 0 (or not part of a distributed run), from the environment
    variables Lightning's ``rank_zero_only`` reads, in its order (read here so that ``ral evaluate``
    does not import Lightning for it)."""
    for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        if os.environ.get(key, "").strip().isdigit():
            return int(os.environ[key]) == 0
    return True


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist yet, innermost first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


@contextmanager
def run_lock(folder: str | os.PathLike, command: str) -> Iterator[Path]:
    """Hold the run lock of ``folder`` for this block (its parent folders are created if missing).

    Args:
        folder: the run folder (``output_dir``) or evaluation folder.
        command: what holds it, for the message of a refused process (``ral train``).

    Raises:
        OSError (EBUSY): another live process holds it; the message names the folder and the
            holder's pid (the CLI prints it as one line and exits 2). OSError: as
            :func:`~ral.report.files.check_writable` (``folder`` cannot be made).
    """
    from filelock import FileLock, Timeout

    from ral.report.files import check_writable

    folder = check_writable(folder, folder=True)
    if not _is_rank_zero():
        yield folder
        return
    path, sidecar = lock_files(folder)
    created = _missing_folders(path.parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path)
    try:
        lock.acquire(blocking=False)
    except Timeout:
        raise OSError(
            errno.EBUSY,
            f"is in use by {_holder(sidecar)}; wait for it to finish or choose another folder",
            str(folder),
        ) from None
    try:
        sidecar.write_text(f"{os.getpid()} {command}\n", encoding="utf-8")
        yield folder
    finally:
        sidecar.unlink(missing_ok=True)
        path.unlink(missing_ok=True)  # while held, see the module docstring
        lock.release()
        for made in created:  # a command refused before it wrote anything leaves no empty folder behind
            try:
                made.rmdir()
            except OSError:  # not empty: something was written there
                break


def releases_run_locks(function: _F) -> _F:
    """Decorator: the locks :func:`lock_run_folder` takes inside ``function`` are released when it
    returns or raises. (A decorator rather than a ``with`` block so that a function that learns its
    output folder half-way, like ``evaluate``, takes the lock there without re-indenting its body;
    ``functools.wraps`` keeps the signature and docstring the CLI derives its flags from.)"""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with ExitStack() as stack:
            token = _HELD.set(stack)
            try:
                return function(*args, **kwargs)
            finally:
                _HELD.reset(token)

    return wrapper  # type: ignore[return-value]


def lock_run_folder(folder: str | os.PathLike, command: str) -> Path:
    """Take :func:`run_lock` on ``folder`` until the enclosing :func:`releases_run_locks` function ends.

    Raises:
        OSError (EBUSY): as :func:`run_lock`. RuntimeError: called outside such a function.
    """
    stack = _HELD.get()
    if stack is None:
        raise RuntimeError("lock_run_folder must be called inside a function decorated with releases_run_locks")
    return stack.enter_context(run_lock(folder, command))
