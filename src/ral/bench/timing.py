"""The timing harness of the speed benchmarks: named callables timed in interleaved rounds.

All callables run in one process. A round times each of them once with
``torch.utils.benchmark.Timer.timeit(calls)`` (its own untimed warm-up calls, then ``calls``
timed calls: seconds per call; accelerators synchronised), in the given order on even rounds
and in the reversed order on odd ones; ``warmup`` untimed calls of every callable precede the
first round. Its cost relative to a reference is the median over rounds of the paired ratio
``time / time(reference)`` of the same round, with the quartiles of that ratio
(:func:`paired_summary`).

The rounds are ours: ``torch.utils.benchmark`` times one statement at a time (its ``Compare``
only lays out separate measurements), so it cannot pair the losses round by round, which is
what keeps the ratios steady when other processes load a shared machine.
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Literal

import pandas as pd
import torch
from pydantic import Field
from pydantic.dataclasses import dataclass
from torch.utils.benchmark import Timer
from torch.utils.benchmark.utils.timer import timer as synced_wall_clock

#: Clocks by name: wall-clock time (accelerators synchronised), or the CPU time of the process
#: (every thread's work, spinning included).
CLOCKS: dict[str, Callable[[], float]] = {"wall": synced_wall_clock, "cpu": time.process_time}


#: An integer >= 1 / >= 0: the settings below are validated from their annotations (pydantic dataclasses).
Count = Annotated[int, Field(ge=1)]
Untimed = Annotated[int, Field(ge=0)]
Clock = Literal["wall", "cpu"]


@dataclass(frozen=True)
class StepBatch:
    """The batch and timing of a training-step benchmark (``ral bench step`` / ``throughput``):
    ``batch_size`` images of ``image_size`` px, ``rounds`` interleaved rounds of ``steps`` timed
    steps per task after ``warmup`` untimed ones; ``seed`` seeds the data and the weights."""

    batch_size: Count = 32
    image_size: Count = 64
    rounds: Count = 15
    steps: Count = 10
    warmup: Untimed = 3
    seed: int = 0


def clock_function(clock: str) -> Callable[[], float]:
    """The clock function called ``clock`` ("wall" or "cpu"); ``ValueError`` otherwise."""
    if clock not in CLOCKS:
        raise ValueError(f"clock must be 'wall' or 'cpu', got {clock!r}")
    return CLOCKS[clock]


def one_call_seconds(fn: Callable[[], object], clock: str = "wall") -> float:
    """Seconds of one call of ``fn``, nothing before it (a first call: ``Timer`` always warms up first)."""
    timer = clock_function(clock)
    start = timer()
    fn()
    return timer() - start


def interleaved_times(
    tasks: Mapping[str, Callable[[], object]],
    *,
    rounds: int,
    calls: int = 1,
    warmup: int = 0,
    clock: str = "wall",
) -> pd.DataFrame:
    """Time every callable of ``tasks`` in ``rounds`` interleaved rounds (see the module docstring).

    Args:
        tasks: name -> callable without arguments, in the order of the even rounds.
        rounds: interleaved rounds. calls: timed calls per callable and round.
        warmup: untimed calls of each callable before the first round.
        clock: "wall" or "cpu". The timing keeps torch's current number of threads.

    Returns:
        One row per (round, name), in the order run: ``round``, ``name``, ``seconds`` (per call).

    Raises:
        ValueError: no task, rounds / calls < 1, warmup < 0, unknown clock.
    """
    if not tasks:
        raise ValueError("tasks must name at least one callable, got none")
    for label, value, low in (("rounds", rounds, 1), ("calls", calls, 1), ("warmup", warmup, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{label} must be an integer >= {low}, got {value!r}")
    timer = clock_function(clock)
    threads = torch.get_num_threads()
    timers = {name: Timer("fn()", globals={"fn": fn}, timer=timer, num_threads=threads) for name, fn in tasks.items()}
    for fn in tasks.values():
        for _ in range(warmup):
            fn()
    names = tuple(tasks)
    rows = [
        {"round": index, "name": name, "seconds": timers[name].timeit(calls).median}
        for index in range(rounds)
        for name in (names if index % 2 == 0 else names[::-1])
    ]
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
    wide = wide[list(pd.unique(times[name]))]
    ratios = wide.div(wide[reference], axis=0)
    return pd.DataFrame(
        {
            name: wide.columns,
            "median_ms": 1e3 * wide.median().to_numpy(),
            "ratio_median": ratios.median().to_numpy(),
            "ratio_q25": ratios.quantile(0.25).to_numpy(),
            "ratio_q75": ratios.quantile(0.75).to_numpy(),
        }
    )


def ratio_text(median: float, q25: float, q75: float, digits: int = 2) -> str:
    """A paired ratio as ``"median [q25, q75]"`` with ``digits`` decimals."""
    return f"{median:.{digits}f} [{q25:.{digits}f}, {q75:.{digits}f}]"


def machine_description(device: str = "cpu") -> str:
    """One line: CPU model, logical cores, torch threads, torch / Python versions, system, the GPU
    (``device`` "cuda...") and the load average at the time of the call (shared machines).

    Hand-written: ``torch.utils.collect_env`` gathers far more (pip, conda, drivers) in seconds."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as handle:
        cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
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


#: Mixed precisions: the forward pass under autocast (16-mixed also scales the loss on CUDA).
AUTOCAST = {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}


@dataclass(frozen=True)
class ThroughputConfig(StepBatch):
    """What is measured.

    Attributes:
        backbone, channels: the network and its input (simulated chest radiographs, 26 classes);
            ``channels`` 3 repeats the gray channel on the device.
        augment: preset of :data:`ral.data.transforms.AUGMENTATIONS`. loss: registry name.
        precision: "32", "16-mixed" or "bf16-mixed". device: "cpu" or "cuda".
        num_workers: loader workers of both loops.
        batch_size, image_size, rounds, steps, warmup, seed: see :class:`ral.bench.timing.StepBatch`
            (``torch.utils.benchmark`` starts every round with two untimed steps; the seed also seeds
            the simulation and the shuffling).
    """

    backbone: str = "resnet18"
    channels: Literal[1, 3] = 1
    augment: Literal["none", "light", "cxr"] = "light"
    loss: str = "ral"
    precision: Literal["32", "16-mixed", "bf16-mixed"] = "32"
    device: Literal["cpu", "cuda"] = "cpu"
    num_workers: Untimed = 0
    steps: Count = 5

    def __post_init__(self) -> None:
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for, but torch sees no CUDA device here")

    @property
    def steps_per_task(self) -> int:
        """Steps each task runs: the warm-up, then per round ``Timer.timeit``'s untimed steps
        (``max(steps // 100, 2)``) and ``steps`` timed ones."""
        return self.warmup + self.rounds * (max(self.steps // 100, 2) + self.steps)


#: ``--quick``: the same measurement with fewer rounds (under 2 minutes on 2 CPU cores).
QUICK = {"rounds": 6, "steps": 3, "warmup": 2}
