"""Running one benchmark in several processes: ``--shard I/N`` and the options of a training benchmark.

A benchmark is a fixed, ordered list of runs; shard ``I`` of ``N`` takes the runs whose position
``i`` (0-based) has ``i % N == I - 1``, so N job-array tasks (or N terminals) cover every run once
with no scheduler. Shards share one output folder: :mod:`ral.bench.runner` locks each run
(``filelock``), so no two processes work on one run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

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
        """Whether this shard is the whole benchmark."""
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
