"""Claim 3, second half: the cost of a whole training step with RAL against BCE.

One process, one model architecture, one fixed batch. Every loss gets its own copy of the same
initial model and its own AdamW optimiser; a step is forward + loss + backward + optimiser
step. Losses are timed by the harness of :mod:`ral.bench.timing`: interleaved rounds (order
reversed every other round) so that load from other processes on a shared machine hits all of
them alike; the reported overhead is the median over rounds of the paired ratio
``time(loss) / time(bce)`` in the same round.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from pydantic.dataclasses import dataclass

from ral.bench.timing import (
    Count,
    StepBatch,
    interleaved_times,
    machine_description,
    measure_and_write,
    paired_summary,
    ratio_text,
)
from ral.report import markdown_table


@dataclass(frozen=True)
class StepTimeConfig(StepBatch):
    """What is timed. Defaults: the demo model (tiny CNN) at the demo batch and image size.

    Attributes:
        losses: registry names (``ral.losses.LOSSES``); the first is the reference (BCE).
        model: backbone name for ``ral.models.build_model``.
        num_classes: C (26 = CXR-LT).
        missing_rate: fraction of targets set to NaN (ignored), as in the simulated data.
        batch_size, image_size, rounds, steps, warmup, seed: see :class:`ral.bench.timing.StepBatch`
            (the input batch is (B, 1, image_size, image_size); a step is one optimiser step).
    """

    losses: Annotated[tuple[str, ...], Field(min_length=2)] = ("bce", "ral")  # a reference and a loss
    model: str = "tiny"
    num_classes: Count = 26
    missing_rate: Annotated[float, Field(ge=0, lt=1)] = 0.15
    batch_size: Count = 64  # the demo's


def _batch(cfg: StepTimeConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray]:
    """A fixed long-tailed batch: images (B,1,H,W), multi-label targets (B,C) with NaN, class
    indices (B,) for single-label losses, and per-class counts (C,) for count-aware losses."""
    gen = torch.Generator().manual_seed(cfg.seed)
    images = torch.randn(cfg.batch_size, 1, cfg.image_size, cfg.image_size, generator=gen)
    prevalence = torch.logspace(-0.5, -2.5, cfg.num_classes)  # head ~0.3 ... tail ~0.003
    targets = (torch.rand(cfg.batch_size, cfg.num_classes, generator=gen) < prevalence).float()
    missing = torch.rand(cfg.batch_size, cfg.num_classes, generator=gen) < cfg.missing_rate
    targets[missing] = float("nan")
    indices = torch.multinomial(prevalence, cfg.batch_size, replacement=True, generator=gen)
    counts = (prevalence * 10_000).round().to(torch.int64).numpy()
    return images, targets, indices, counts


def measure_step_time(cfg: StepTimeConfig) -> pd.DataFrame:
    """Time ``cfg.rounds`` interleaved rounds of ``cfg.steps`` steps per loss.

    Returns:
        One row per (round, loss): ``round``, ``loss``, ``seconds_per_step``.

    Raises:
        ValueError: unknown loss or model name (from the factories).
    """
    from ral.losses import LOSSES, build_loss
    from ral.models import build_model

    images, targets_ml, targets_single, counts = _batch(cfg)
    torch.manual_seed(cfg.seed)
    base = build_model(cfg.model, num_classes=cfg.num_classes, in_channels=1)
    steps = {}
    for name in cfg.losses:
        if name not in LOSSES:
            raise ValueError(f"unknown loss {name!r}; known: {sorted(LOSSES)}")
        single = getattr(LOSSES[name], "task", "multilabel") == "single"
        kwargs = {} if single else {"ignore_value": float("nan")}
        criterion = build_loss(name, class_counts=counts, num_samples=10_000, **kwargs)
        steps[name] = _training_step(
            copy.deepcopy(base).train(), criterion, images, targets_single if single else targets_ml
        )
    times = interleaved_times(steps, rounds=cfg.rounds, calls=cfg.steps, warmup=cfg.warmup)
    return times.rename(columns={"name": "loss", "seconds": "seconds_per_step"})


def _training_step(
    model: torch.nn.Module, criterion: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor
) -> Callable[[], None]:
    """One optimiser step of ``model`` (its own AdamW) on the fixed batch, as a callable."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        criterion(model(images), targets).backward()
        optimizer.step()

    return step


def summarize_step_time(times: pd.DataFrame, reference: str = "bce") -> pd.DataFrame:
    """Median step time per loss and the paired overhead against ``reference``.

    Returns:
        One row per loss: ``loss``, ``median_ms`` (median over rounds, milliseconds),
        ``ratio_median`` (median over rounds of time/time_reference in the same round),
        ``ratio_q25``, ``ratio_q75`` (quartiles of that paired ratio), ``overhead_pct``
        (``100 * (ratio_median - 1)``).
    """
    summary = paired_summary(times, reference, name="loss", value="seconds_per_step")
    summary["overhead_pct"] = 100.0 * (summary["ratio_median"] - 1.0)
    return summary


def step_table(summary: pd.DataFrame, reference: str = "bce") -> pd.DataFrame:
    """The display table of :func:`summarize_step_time`'s rows (formatted cells)."""
    shown = summary.assign(
        median_ms=summary["median_ms"].map(lambda v: f"{v:.2f}"),
        ratio=[
            ratio_text(m, a, b, digits=3)
            for m, a, b in zip(summary["ratio_median"], summary["ratio_q25"], summary["ratio_q75"])
        ],
        overhead_pct=summary["overhead_pct"].map(lambda v: f"{v:+.1f}%"),
    )[["loss", "median_ms", "ratio", "overhead_pct"]]
    shown.columns = ["loss", "median ms / step", f"time / {reference} (median [IQR])", "overhead"]
    return shown


def step_time_report(cfg: StepTimeConfig, summary: pd.DataFrame, reference: str = "bce") -> str:
    """Markdown record of one measurement (settings, machine, table)."""
    return (
        f"Full training step (forward + loss + backward + AdamW step) of `{cfg.model}` on a batch "
        f"of {cfg.batch_size} x 1 x {cfg.image_size} x {cfg.image_size}, {cfg.num_classes} classes, "
        f"{cfg.rounds} interleaved rounds of {cfg.steps} steps per loss.\n\n"
        f"Machine: {machine_description()}\n\n" + markdown_table(step_table(summary, reference))
    )


def run_step_time(
    cfg: StepTimeConfig, out_dir: str | Path | None = None, *, overwrite: bool = False
) -> tuple[pd.DataFrame, str]:
    """Measure, summarise and (when ``out_dir`` is given) write ``step_time.csv`` (raw rounds),
    ``step_time_summary.csv`` and ``step_time.md`` (:func:`ral.bench.timing.measure_and_write`)."""

    def measure() -> tuple[pd.DataFrame, pd.DataFrame, str]:
        times = measure_step_time(cfg)
        summary = summarize_step_time(times, reference=cfg.losses[0])
        return times, summary, step_time_report(cfg, summary, reference=cfg.losses[0])

    return measure_and_write(out_dir, "step_time", measure, overwrite=overwrite)
