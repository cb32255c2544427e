"""One error line per distributed run: the processes of a DDP run report through rank 0.

Without this, a bad image read by rank 1 prints rank 1's one-line error and then rank 0's long
traceback of the broken collective ("Connection closed by peer"). Here a rank > 0 hands its line
to rank 0 through a file in a folder named by the run's ``MASTER_PORT``, and rank 0 prints it as
the run's one error; rank 0's own error is printed by rank 0 and the other ranks stay quiet.

Lightning's launcher SIGKILLs rank 0 a few seconds after a child exits with an error, so a child
never waits long: if rank 0 has not taken its line within :data:`HANDOVER_SECONDS` (rank 0 busy
outside a collective, or another node), the child prints the line itself and rank 0 stays quiet.
The hand-over uses atomic renames, so exactly one process prints each line.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

#: How long a rank > 0 waits for rank 0 to take its error line before printing it itself.
HANDOVER_SECONDS = 4.0
#: How long a rank waits for the other side's line after its collective broke.
PEER_SECONDS = 6.0
_POLL = 0.05
_STARTED = time.time()  # files older than this process are a former run's (ports are reused)


def rank() -> int:
    """This process's rank in a distributed run (0 outside one)."""
    return int(os.environ.get("RANK") or os.environ.get("LOCAL_RANK") or 0)


def _folder() -> Path | None:
    """The run's hand-over folder, or None outside a distributed run."""
    port = os.environ.get("MASTER_PORT")  # set for every process of the run (WORLD_SIZE is gone after teardown)
    if not port or not (os.environ.get("RANK") or os.environ.get("LOCAL_RANK")):
        return None
    return Path(tempfile.gettempdir()) / f"ral-ranks-{os.environ.get('MASTER_ADDR', 'localhost')}-{port}"


def _fresh(path: Path) -> bool:
    try:
        return path.stat().st_mtime >= _STARTED - 1
    except FileNotFoundError:
        return False


def _wait(found: Callable[[], bool | None], seconds: float) -> bool | None:
    deadline = time.monotonic() + seconds
    while (result := found()) is None and time.monotonic() < deadline:
        time.sleep(_POLL)
    return result


def _leave_process_group() -> None:
    distributed = sys.modules.get("torch.distributed")
    if distributed is None or not distributed.is_available() or not distributed.is_initialized():
        return
    # gloo only: tearing down NCCL while the others wait in a collective may block; there rank 0
    # learns of the failure when this process ends (and the line is printed here)
    with contextlib.suppress(Exception):
        if distributed.get_backend() == "gloo":
            distributed.destroy_process_group()


def report(line: str) -> None:
    """Print the error ``line`` once for the whole run (see the module docstring)."""
    folder = _folder()
    if folder is None:
        print(line, file=sys.stderr, flush=True)
        return
    folder.mkdir(parents=True, exist_ok=True)
    me = rank()
    if me == 0:
        print(line, file=sys.stderr, flush=True)
        (folder / "rank0.reported").touch()
        return
    mine, reported = folder / f"rank{me}.err", folder / "rank0.reported"
    mine.write_text(line, encoding="utf-8")
    _leave_process_group()  # rank 0's pending collective fails now, and it looks here
    if _wait(lambda: True if not mine.exists() or _fresh(reported) else None, HANDOVER_SECONDS):
        mine.unlink(missing_ok=True)
        return  # rank 0 took it, or reported its own error (the same cause, as a rule: one line is enough)
    try:
        mine.rename(folder / f"rank{me}.printed")
    except FileNotFoundError:  # taken at the last moment
        return
    print(line, file=sys.stderr, flush=True)


def peer_failure() -> bool:
    """After this rank's collective broke (a RuntimeError): whether another rank's error explains it.

    Rank 0 prints the line a rank > 0 handed over (True), or finds it printed already (True);
    a rank > 0 finds rank 0's error reported (True). False: no such error (report this one).
    """
    folder = _folder()
    if folder is None:
        return False
    if rank() != 0:
        return bool(_wait(lambda: True if _fresh(folder / "rank0.reported") else None, PEER_SECONDS))

    def peer() -> bool | None:
        for file in sorted(f for f in folder.glob("rank*.err") if _fresh(f)):
            taken = file.with_suffix(".taken")
            try:
                file.rename(taken)
            except FileNotFoundError:  # printed by its rank meanwhile
                continue
            print(taken.read_text(encoding="utf-8"), file=sys.stderr, flush=True)
            taken.unlink()
            with contextlib.suppress(OSError):
                folder.rmdir()  # unless other ranks left lines there
            return True
        return True if any(_fresh(f) for f in folder.glob("rank*.printed")) else None

    return bool(_wait(peer, PEER_SECONDS))
