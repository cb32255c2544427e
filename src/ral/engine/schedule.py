"""The per-step learning-rate schedule of ``ral train``: torch's ``LinearLR`` warm-up, then
``CosineAnnealingLR`` (or ``ConstantLR``), chained by ``SequentialLR``."""

from __future__ import annotations

import warnings

from torch.optim import Optimizer
from torch.optim.lr_scheduler import ConstantLR, CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR


def lr_schedule(
    optimizer: Optimizer, *, total_steps: int, warmup_steps: int, schedule: str, min_lr_ratio: float
) -> LRScheduler:
    """The learning rate at optimiser step ``s`` (stepped once per optimiser step).

    ``lr * (s + 1) / warmup_steps`` for ``s < warmup_steps``; then ``schedule`` "cosine": from
    ``lr`` down to ``lr * min_lr_ratio`` at ``total_steps``, or "none": ``lr``. Every parameter
    group has the same ``lr``. A warm-up of ``total_steps`` or more is cut to ``total_steps``: the
    whole run warms up and reaches ``lr`` at its last step (``train.epochs=1`` with a config whose
    warm-up is one epoch).
    """
    eta_min = optimizer.param_groups[0]["lr"] * min_lr_ratio  # read before the warm-up lowers the rate
    phases: list[LRScheduler] = []
    warmup_steps = min(warmup_steps, max(1, total_steps))
    if warmup_steps > 0:
        phases.append(LinearLR(optimizer, 1 / warmup_steps, 1.0, total_iters=warmup_steps - 1))
    if schedule == "cosine":
        phases.append(CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warmup_steps), eta_min=eta_min))
    else:
        phases.append(ConstantLR(optimizer, factor=1.0, total_iters=0))
    if len(phases) == 1:
        return phases[0]
    return SequentialLR(optimizer, phases, milestones=[warmup_steps])


def advance(scheduler: LRScheduler, steps: int) -> None:
    """Step ``scheduler`` ``steps`` times without optimiser steps (to the point a run resumes from)."""
    with warnings.catch_warnings():  # "lr_scheduler.step() before optimizer.step()": intended here
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(steps):
            scheduler.step()
