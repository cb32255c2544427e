"""Worker processes that die with the process that started them, so that a SIGKILL of a ``ral``
command (no clean-up code runs then) leaves no orphan behind.

A child blocked on a pipe or a collective of its dead parent (a ``ProcessPoolExecutor`` worker of
a cache build, a rank of a distributed run launched by Lightning or ``torchrun``) would otherwise
wait forever with PPID 1. On Linux the kernel can send a child a signal when its parent dies
(``prctl(PR_SET_PDEATHSIG)``); Python does not expose it, hence ctypes. It fires when the *thread*
that started the child ends: the pools and launchers here start their children from the thread
that then waits for them. Elsewhere this is a no-op.

This module imports nothing else from :mod:`ral`, so every layer may use it.
"""

from __future__ import annotations

import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent: int | None = None) -> None:
    """Make this process receive SIGKILL when its parent dies (Linux).

    Args:
        parent: the parent's pid when known: if it has died before this call (the process was
            re-parented), exit at once.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def die_with_launcher() -> None:
    """In a process of a distributed run started by a launcher (Lightning's for ``devices: N``, which
    sets ``LOCAL_RANK`` 1..N-1 for the processes it starts, or ``torchrun``): die with the launcher."""
    if os.environ.get("LOCAL_RANK", "0") != "0" or "TORCHELASTIC_RUN_ID" in os.environ:
        die_with_parent()
