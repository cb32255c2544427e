"""Loss speed: forward + backward time and peak memory of RAL against BCEWithLogitsLoss.

Every loss runs on the same logits and targets in one process. Losses are timed by the harness
of :mod:`ral.bench.timing`: interleaved rounds (the order reversed every other round) so that
load from other processes hits all of them alike; a loss's time in a round is the mean of
``repeats`` forward+backward passes (``torch.utils.benchmark``), ``warmup`` untimed passes come
before the first round, and its reported ratio is the median over rounds of the paired ratio
time(loss) / time(bce) of the same round.

The first call of each loss at each shape is timed on its own (``first_call_s``): for the
compiled RAL (``ral_compiled``) it includes building and checking its kernel (the one-time
compile warm-up), which the timed passes exclude.

Peak memory is what one forward+backward allocates on top of what existed before (inputs
excluded, the gradient written to ``logits.grad`` included). On CUDA it is read from
``torch.cuda.max_memory_allocated``; on the CPU, which has no such counter, from the allocator
events of ``torch.profiler`` (``profile_memory=True``): every allocation and free is recorded
with the allocator's running total, whose maximum is the peak.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from pydantic.dataclasses import dataclass
from torch import Tensor, nn

from ral.bench.timing import (
    Clock,
    Count,
    Untimed,
    interleaved_times,
    machine_description,
    measure_and_write,
    one_call_seconds,
    paired_summary,
    ratio_text,
)
from ral.losses import RobustAsymmetricLoss, build_loss

#: A CXR-LT batch (26 classes) at three batch sizes and a wide head (1000 classes).
DEFAULT_SHAPES: tuple[tuple[int, int], ...] = ((256, 26), (1024, 26), (4096, 1000), (16384, 26))
#: Loss labels measured by default; "bce" (the reference) is always measured. "ral" is the
#: default ``RobustAsymmetricLoss()`` (the eager formula), "ral_compiled" its opt-in compiled path.
DEFAULT_LOSSES: tuple[str, ...] = ("ral", "ral_compiled", "asl_reference", "asl", "focal")


class OfficialStyleASL(nn.Module):
    """ASL written the way the authors' code writes it (Ridnik et al., ICCV 2021): probabilities,
    clipping, ``log(clamp(p, eps))``, a focusing weight from ``pow`` computed without gradient,
    and a summed loss. Only a timing reference: use ``ral.losses.AsymmetricLoss`` to train."""

    def __init__(self, gamma_neg: float = 4.0, gamma_pos: float = 1.0, clip: float = 0.05, eps: float = 1e-8):
        super().__init__()
        self.gamma_neg, self.gamma_pos, self.clip, self.eps = gamma_neg, gamma_pos, clip, eps

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        x_sigmoid = torch.sigmoid(x)
        xs_pos = x_sigmoid
        xs_neg = (1 - x_sigmoid + self.clip).clamp(max=1)
        loss = y * torch.log(xs_pos.clamp(min=self.eps)) + (1 - y) * torch.log(xs_neg.clamp(min=self.eps))
        with torch.no_grad():  # the original toggles grad mode globally; no_grad is the scoped form
            pt = xs_pos * y + xs_neg * (1 - y)
            weight = torch.pow(1 - pt, self.gamma_pos * y + self.gamma_neg * (1 - y))
        return -(loss * weight).sum()


#: Labels that are not registry names: the reference, RAL's two paths, the authors' ASL.
_SPECIAL = {
    "bce": nn.BCEWithLogitsLoss,
    "ral_eager": lambda: RobustAsymmetricLoss(impl="eager"),
    "ral_compiled": lambda: RobustAsymmetricLoss(impl="compiled"),
    "asl_reference": OfficialStyleASL,
}


def make_loss(label: str) -> nn.Module:
    """The module behind a benchmark label (a registry name also works)."""
    return _SPECIAL[label]() if label in _SPECIAL else build_loss(label)


@dataclass(frozen=True)
class SpeedConfig:
    """What is measured. ``clock``: "wall" or "cpu" (process CPU time: less sensitive to other
    processes on a shared machine, but it counts every thread's work, spinning included). The
    number of torch threads is the caller's setting (``torch.set_num_threads``)."""

    shapes: tuple[tuple[Count, Count], ...] = DEFAULT_SHAPES
    losses: tuple[str, ...] = DEFAULT_LOSSES
    rounds: Count = 7
    repeats: Count = 10
    warmup: Untimed = 3
    clock: Clock = "wall"
    memory: bool = True
    device: str = "cpu"
    seed: int = 0
    labels: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        labels = ("bce",) + tuple(label for label in self.losses if label != "bce")
        object.__setattr__(self, "labels", labels)


def parse_shape(text: str) -> tuple[int, int]:
    """ "4096x1000" -> (4096, 1000)."""
    try:
        n, c = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"shape must look like 4096x1000, got {text!r}") from None
    if n < 1 or c < 1:
        raise ValueError(f"shape must have positive sizes, got {text!r}")
    return n, c


def _inputs(shape: tuple[int, int], device: str, seed: int) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    logits = (torch.randn(shape, generator=gen) * 2).to(device).requires_grad_()
    targets = (torch.rand(shape, generator=gen) < 0.1).float().to(device)  # long-tailed: few positives
    return logits, targets


def _step(loss: nn.Module, logits: Tensor, targets: Tensor) -> Callable[[], None]:
    def step() -> None:
        logits.grad = None
        loss(logits, targets).backward()

    return step


def _interleaved(steps: dict[str, Callable[[], None]], config: SpeedConfig) -> pd.DataFrame:
    """:func:`ral.bench.timing.interleaved_times` of ``steps`` with the config's rounds, passes and clock."""
    return interleaved_times(
        steps, rounds=config.rounds, calls=config.repeats, warmup=config.warmup, clock=config.clock
    )


@contextlib.contextmanager
def _profiling(**options: Any) -> Iterator[torch.profiler.profile]:
    """torch.profiler on the CPU without the "USDT: ... profiler_start" / "profiler_stop" lines its
    backend (libkineto) prints on stderr at its default log level: ``KINETO_LOG_LEVEL`` above its
    last level (5, USDT), read when a process first starts the profiler, silences them (and
    libkineto's own error lines, which the measured figures do not depend on). A level the user
    set is kept."""
    unset = "KINETO_LOG_LEVEL" not in os.environ
    if unset:
        os.environ["KINETO_LOG_LEVEL"] = "6"
    try:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], **options) as prof:
            yield prof
    finally:
        if unset:
            os.environ.pop("KINETO_LOG_LEVEL", None)


def peak_memory_bytes(step: Callable[[], None], device: str = "cpu") -> int:
    """Bytes allocated at the peak of ``step()`` above what was allocated before it."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        return int(torch.cuda.max_memory_allocated() - base)
    with _profiling(profile_memory=True) as prof:
        step()
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        prof.export_chrome_trace(path)
        with open(path, encoding="utf-8") as handle:
            events = json.load(handle)["traceEvents"]
    finally:
        os.remove(path)
    memory = sorted((e for e in events if e.get("name") == "[memory]"), key=lambda e: e["ts"])
    if not memory:
        return 0
    base = memory[0]["args"]["Total Allocated"] - memory[0]["args"]["Bytes"]
    return int(max(e["args"]["Total Allocated"] for e in memory) - base)


def measure_speed(config: SpeedConfig = SpeedConfig()) -> pd.DataFrame:
    """One row per (shape, loss, round): seconds per forward+backward; plus peak bytes and the
    seconds of the loss's first call at that shape (compile warm-up included).

    Columns: shape, loss, round, seconds, peak_bytes (NaN unless ``config.memory``), first_call_s.
    """
    frames = []
    for shape in config.shapes:
        logits, targets = _inputs(shape, config.device, config.seed)
        steps = {label: _step(make_loss(label).to(config.device), logits, targets) for label in config.labels}
        peaks, first = {}, {}
        for label, step in steps.items():
            first[label] = one_call_seconds(step, config.clock)  # one call: builds a compiled kernel
            logits.grad = None  # the measured pass allocates a fresh gradient
            peaks[label] = peak_memory_bytes(step, config.device) if config.memory else float("nan")
        times = _interleaved(steps, config)
        frames.append(
            pd.DataFrame(
                {
                    "shape": f"{shape[0]}x{shape[1]}",
                    "loss": times["name"],
                    "round": times["round"],
                    "seconds": times["seconds"],
                    "peak_bytes": times["name"].map(peaks),
                    "first_call_s": times["name"].map(first),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def summarize_speed(times: pd.DataFrame) -> pd.DataFrame:
    """Per (shape, loss): median ms, median paired ratio to BCE (and its IQR), peak MiB, peak
    memory ratio to BCE and the seconds of the first call."""
    frames = []
    for shape, group in times.groupby("shape", sort=False):
        summary = paired_summary(group, "bce", name="loss").rename(columns={"ratio_median": "ratio_to_bce"})
        once = group.drop_duplicates("loss").set_index("loss")
        peak = summary["loss"].map(once["peak_bytes"]).astype(float)
        summary.insert(0, "shape", shape)
        summary["peak_mib"] = peak / 2**20
        summary["memory_ratio_to_bce"] = peak / once["peak_bytes"]["bce"]
        summary["first_call_s"] = summary["loss"].map(once["first_call_s"]).astype(float)
        frames.append(summary)
    return pd.concat(frames, ignore_index=True)


def speed_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The display table of :func:`summarize_speed`'s rows (formatted cells)."""
    return pd.DataFrame(
        {
            "shape (N x C)": summary["shape"],
            "loss": summary["loss"],
            "ms fwd+bwd": summary["median_ms"].map(lambda v: f"{v:.3f}"),
            "time / BCE (median [IQR])": list(
                map(ratio_text, summary["ratio_to_bce"], summary["ratio_q25"], summary["ratio_q75"])
            ),
            "peak MiB": summary["peak_mib"].map(lambda v: f"{v:.2f}"),
            "memory / BCE": summary["memory_ratio_to_bce"].map(lambda v: f"{v:.2f}"),
            "first call s": summary["first_call_s"].map(lambda v: f"{v:.2f}"),
        }
    )


def speed_report(config: SpeedConfig, summary: pd.DataFrame, machine: str, command: str = "") -> str:
    """Markdown record: settings, machine, the table."""
    from ral.report import markdown_table

    head = (
        f"Forward + backward of each loss on float32 logits (targets 10% positive), "
        f"{config.rounds} interleaved rounds x mean of {config.repeats} passes "
        f"({config.warmup} warm-up), {config.clock}-clock time, device {config.device}. "
        "`first call s`: the loss's first forward+backward at that shape, which for the compiled "
        "RAL (`ral_compiled`) includes building and checking its kernel (once per shape and process).\n\n"
    )
    if command:
        head += f"Command: `{command}`\n\n"
    return head + f"Machine: {machine}\n\n" + markdown_table(speed_table(summary)) + "\n"


def run_speed(
    config: SpeedConfig, out_dir: str | Path | None = None, command: str = "", *, overwrite: bool = False
) -> tuple[pd.DataFrame, str]:
    """Measure, summarise and (with ``out_dir``) write ``speed.csv`` (every round),
    ``speed_summary.csv`` and ``speed.md`` (:func:`ral.bench.timing.measure_and_write`)."""

    def measure() -> tuple[pd.DataFrame, pd.DataFrame, str]:
        times = measure_speed(config)
        summary = summarize_speed(times)
        return times, summary, speed_report(config, summary, machine_description(config.device), command)

    return measure_and_write(out_dir, "speed", measure, overwrite=overwrite)


def ral_breakdown(shape: tuple[int, int], config: SpeedConfig = SpeedConfig()) -> pd.DataFrame:
    """Where the time of the default RAL goes at one shape (median ms of ``config.repeats`` passes).

    Parts: BCEWithLogitsLoss forward+backward (the reference), RAL forward+backward, input
    validation (``prepare_multilabel``), the compiled kernel alone (value + gradient), the eager
    formula's value alone, and the backward multiply (saved gradient x upstream).
    """
    from ral.losses._common import prepare_multilabel

    logits, targets = _inputs(shape, config.device, config.seed)
    x, y = logits.detach(), targets
    loss = RobustAsymmetricLoss()
    kernel = loss.compiled_loss()
    kernel(x, y, None, None)  # build it before the timing
    grad = torch.randn_like(x)
    upstream = torch.ones((), device=x.device)
    parts = {
        "BCEWithLogitsLoss forward+backward": _step(nn.BCEWithLogitsLoss(), logits, targets),
        "RAL forward+backward": _step(loss, logits, targets),
        "input validation (prepare_multilabel)": lambda: prepare_multilabel(x, y),
        "compiled kernel (value + gradient)": lambda: kernel(x, y, None, None),
        "eager formula (value only)": lambda: kernel.reduced(x, y, None, None),
        "backward (saved gradient x upstream)": lambda: grad * upstream,
    }
    frame = _interleaved(parts, config).rename(columns={"name": "part"})
    out = frame.groupby("part", sort=False)["seconds"].median().mul(1e3).rename("median_ms").reset_index()
    out.insert(0, "shape", f"{shape[0]}x{shape[1]}")
    return out


def breakdown_report(config: SpeedConfig, out_dir: str | Path | None = None) -> str:
    """:func:`ral_breakdown` at every shape of ``config`` as markdown (and ``breakdown.csv``)."""
    from ral.report import markdown_table, write_csv, write_text

    table = pd.concat([ral_breakdown(shape, config) for shape in config.shapes], ignore_index=True)
    text = "Where the time of RAL goes (median ms):\n\n" + markdown_table(table, floatfmt=".3f") + "\n"
    if out_dir is not None:
        write_csv(table, Path(out_dir) / "breakdown.csv")
        write_text(text, Path(out_dir) / "breakdown.md")
    return text


def profile_ral(shape: tuple[int, int], config: SpeedConfig = SpeedConfig(), rows: int = 15) -> str:
    """torch.profiler's operator table (self CPU time) of RAL forward+backward at ``shape``,
    ``config.repeats`` passes after ``config.warmup``: where the time goes."""
    logits, targets = _inputs(shape, config.device, config.seed)
    step = _step(RobustAsymmetricLoss(), logits, targets)
    for _ in range(config.warmup):
        step()
    with _profiling() as prof:
        for _ in range(config.repeats):
            step()
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)
    return f"torch.profiler, RAL forward+backward at {shape[0]}x{shape[1]}, {config.repeats} passes:\n\n{table}\n"


def shapes_from_text(values: Sequence[str] | None) -> tuple[tuple[int, int], ...]:
    """Parsed ``--shapes`` (the defaults when empty)."""
    return tuple(parse_shape(v) for v in values) if values else DEFAULT_SHAPES
