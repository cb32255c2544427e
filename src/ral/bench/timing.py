"""The timing harness of the speed benchmarks: named callables timed in interleaved rounds.

All callables run in one process. A round times each of them once, in the given order on even
rounds and in the reversed order on odd ones, so that load from other processes on a shared
machine hits all of them alike. In a round a callable's time is the median of ``repeats`` timed
blocks of ``calls`` calls each (seconds per call), after ``round_warmup`` untimed calls;
``warmup`` untimed calls of every callable precede the first round. Its cost relative to a
reference is the median over rounds of the paired ratio ``time / time(reference)`` of the same
round, with the quartiles of that ratio (:func:`paired_summary`).
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

#: Clocks by name: wall-clock time, or the CPU time of the process (every thread's work, spinning included).
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}


@dataclass(frozen=True)
class StepBatch:
    """The batch and timing of a training-step benchmark (``ral bench step`` / ``throughput``):
    ``batch_size`` images of ``image_size`` px, ``rounds`` interleaved rounds of ``steps`` timed
    steps per task after ``warmup`` untimed ones; ``seed`` seeds the data and the weights."""

    batch_size: int = 32
    image_size: int = 64
    rounds: int = 15
    steps: int = 10
    warmup: int = 3
    seed: int = 0


def _no_sync() -> None:
    return None


def clock_function(clock: str) -> Callable[[], float]:
    """The clock function called ``clock`` ("wall" or "cpu"); ``ValueError`` otherwise."""
    if clock not in CLOCKS:
        raise ValueError(f"clock must be 'wall' or 'cpu', got {clock!r}")
    return CLOCKS[clock]


def median_time(
    fn: Callable[[], object],
    *,
    repeats: int = 1,
    calls: int = 1,
    warmup: int = 0,
    clock: str = "wall",
    sync: Callable[[], None] | None = None,
) -> float:
    """Median over ``repeats`` blocks of the seconds per call of ``calls`` calls of ``fn``.

    Args:
        fn: the work to time (no arguments). warmup: untimed calls first.
        clock: "wall" or "cpu". sync: called before and after each block (e.g.
            ``torch.cuda.synchronize``, so that queued GPU work is counted); None for none.
    """
    timer, wait = clock_function(clock), sync or _no_sync
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        wait()
        start = timer()
        for _ in range(calls):
            fn()
        wait()
        times.append((timer() - start) / calls)
    return statistics.median(times)


def interleaved_times(
    tasks: Mapping[str, Callable[[], object]],
    *,
    rounds: int,
    repeats: int = 1,
    calls: int = 1,
    warmup: int = 0,
    round_warmup: int = 0,
    clock: str = "wall",
    sync: Callable[[], None] | None = None,
) -> pd.DataFrame:
    """Time every callable of ``tasks`` in ``rounds`` interleaved rounds (see the module docstring).

    Args:
        tasks: name -> callable without arguments, in the order of the even rounds.
        rounds: interleaved rounds. repeats, calls: timed blocks per round and calls per block.
        warmup: untimed calls of each callable before the first round.
        round_warmup: untimed calls of each callable before its timing in every round.
        clock, sync: as in :func:`median_time`.

    Returns:
        One row per (round, name), in the order run: ``round``, ``name``, ``seconds`` (per call).

    Raises:
        ValueError: no task, rounds / repeats / calls < 1, warm-ups < 0, unknown clock.
    """
    if not tasks:
        raise ValueError("tasks must name at least one callable, got none")
    for label, value, low in (
        ("rounds", rounds, 1),
        ("repeats", repeats, 1),
        ("calls", calls, 1),
        ("warmup", warmup, 0),
        ("round_warmup", round_warmup, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{label} must be an integer >= {low}, got {value!r}")
    clock_function(clock)
    names = tuple(tasks)
    for name in names:
        for _ in range(warmup):
            tasks[name]()
    rows = []
    for round_index in range(rounds):
        for name in names if round_index % 2 == 0 else names[::-1]:
            seconds = median_time(
                tasks[name], repeats=repeats, calls=calls, warmup=round_warmup, clock=clock, sync=sync
            )
            rows.append({"round": round_index, "name": name, "seconds": seconds})
    return pd.DataFrame(rows, columns=["round", "name", "seconds"])


def paired_summary(times: pd.DataFrame, reference: str, *, name: str = "name", value: str = "seconds") -> pd.DataFrame:
    """Median time of each name and its paired ratio to ``reference``, round by round.

    Args:
        times: one row per (``round``, ``name``) with the time in column ``value`` (seconds), as
            from :func:`interleaved_times` (columns renamed through ``name`` / ``value``).
        reference: the name every ratio divides by.

    Returns:
        One row per name (order of first appearance): ``name``, ``median_ms`` (median over rounds),
        ``ratio_median`` (median over rounds of ``time / time(reference)`` in the same round; rounds
        missing either time are left out), ``ratio_q25``, ``ratio_q75`` (quartiles of that ratio).

    Raises:
        ValueError: ``reference`` not among the names.
    """
    wide = times.pivot(index="round", columns=name, values=value)
    if reference not in wide.columns:
        raise ValueError(f"reference {reference!r} not in the timings: {list(wide.columns)}")
    rows = []
    for label in pd.unique(times[name]):
        ratios = (wide[label] / wide[reference]).dropna()
        rows.append(
            {
                name: label,
                "median_ms": 1e3 * float(wide[label].median()),
                "ratio_median": float(ratios.median()),
                "ratio_q25": float(ratios.quantile(0.25)),
                "ratio_q75": float(ratios.quantile(0.75)),
            }
        )
    return pd.DataFrame(rows)


def ratio_text(median: float, q25: float, q75: float, digits: int = 2) -> str:
    """A paired ratio as ``"median [q25, q75]"`` with ``digits`` decimals."""
    return f"{median:.{digits}f} [{q25:.{digits}f}, {q75:.{digits}f}]"


def machine_description(device: str = "cpu") -> str:
    """One line: CPU model, logical cores, torch threads, torch / Python versions, system, the GPU
    (``device`` "cuda...") and the load average at the time of the call (shared machines)."""
    import torch

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    text = (
        f"{cpu}; {os.cpu_count()} logical cores; torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads; Python {platform.python_version()}; {platform.system()}"
    )
    if device.startswith("cuda"):
        text += f"; GPU {torch.cuda.get_device_name()}"
    if hasattr(os, "getloadavg"):
        text += "; load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    return text


def write_timing(out_dir: str | os.PathLike, stem: str, times: pd.DataFrame, summary: pd.DataFrame, text: str) -> None:
    """Write ``<stem>.csv`` (every round), ``<stem>_summary.csv`` and ``<stem>.md`` into ``out_dir``."""
    from ral.report import write_csv, write_text

    out = Path(out_dir)
    write_csv(times, out / f"{stem}.csv")
    write_csv(summary, out / f"{stem}_summary.csv")
    write_text(text, out / f"{stem}.md")


def measure_and_write(
    out_dir: str | os.PathLike | None,
    stem: str,
    measure: Callable[[], tuple[pd.DataFrame, pd.DataFrame, str]],
    *,
    overwrite: bool = False,
) -> tuple[pd.DataFrame, str]:
    """Check ``out_dir`` (missing or empty, or ``overwrite``: :func:`ral.report.files.check_output`),
    run ``measure() -> (times, summary, markdown)`` and write them (:func:`write_timing`).

    Returns the summary and the markdown.
    """
    from ral.report.files import check_output

    if out_dir is not None:
        check_output(out_dir, folder=True, overwrite=overwrite)
    times, summary, text = measure()
    if out_dir is not None:
        write_timing(out_dir, stem, times, summary, text)
    return summary, text
