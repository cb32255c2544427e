"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_thread() -> Iterator[None]:
    """Tests run single-threaded: deterministic, no thread-pool overhead on tiny tensors, fair to
    other processes on a shared machine. Set before every other fixture, restored at the end."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _child_pids(pid: int) -> list[int]:
    """The pids of the processes whose parent is ``pid`` (Linux: from /proc)."""
    from pathlib import Path

    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


@pytest.fixture(scope="session")
def child_pids():
    """``child_pids(pid)``: the pids of ``pid``'s child processes (Linux), to check that a killed
    command leaves no orphan."""
    return _child_pids
