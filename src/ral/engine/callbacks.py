"""Lightning callbacks of ``ral train``: restorable RNG state and a per-epoch history with timings."""

from __future__ import annotations

import random
import sys
import time
from typing import Any

import lightning as L
import numpy as np
import torch


def collect_rng_state() -> dict[str, Any]:
    """Global RNG states of Python, numpy, torch (and CUDA) as weights-only-loadable data."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss = random.getstate()
    state = {
        "python": [version, list(py_state), gauss],
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`collect_rng_state`."""
    version, py_state, gauss = state["python"]
    random.setstate((version, tuple(py_state), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


class RNGState(L.Callback):
    """Store the global RNG state in every checkpoint and restore it on resume.

    Lightning restores model, optimiser, scheduler and loop counters but not the RNG; with the
    RNG restored, a run resumed from an end-of-epoch checkpoint draws the same dropout masks,
    augmentations and loader seeds as the uninterrupted run.
    """

    def state_dict(self) -> dict[str, Any]:
        return collect_rng_state()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        restore_rng_state(state_dict)


class EpochHistory(L.Callback):
    """One row per finished epoch: wall-clock and CPU seconds of training (without validation),
    whole-epoch seconds and every ``val_*`` metric; kept in checkpoints so a resumed run reports
    the full history. CPU seconds (``time.process_time`` of this process) are much less affected
    than wall-clock seconds when other jobs share the machine.

    Args:
        verbose: print one line per epoch (useful without a progress bar).
    """

    def __init__(self, verbose: bool = False) -> None:
        self.rows: list[dict[str, float]] = []
        self.verbose = verbose
        self._start = self._val_start = self._cpu_start = self._cpu_val_start = 0.0
        self._recorded = False

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start, self._val_start, self._recorded = time.perf_counter(), 0.0, False
        self._cpu_start, self._cpu_val_start = time.process_time(), 0.0

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._val_start, self._cpu_val_start = time.perf_counter(), time.process_time()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            self._record(trainer)  # before ModelCheckpoint (Lightning runs checkpoint callbacks last)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._recorded:  # no validation this epoch
            self._record(trainer)
        row = self.rows[-1]
        timings = ("train_seconds", "train_cpu_seconds", "epoch_seconds")
        pl_module.log_dict({key: row[key] for key in timings}, sync_dist=True)

    def _record(self, trainer: L.Trainer) -> None:
        now, cpu_now = time.perf_counter(), time.process_time()
        row = {
            "epoch": trainer.current_epoch,
            "train_seconds": (self._val_start or now) - self._start,
            "train_cpu_seconds": (self._cpu_val_start or cpu_now) - self._cpu_start,
            "epoch_seconds": now - self._start,
        }
        for key, value in trainer.callback_metrics.items():
            if key.startswith("val_"):
                row[key] = float(value)
        self.rows = [r for r in self.rows if r["epoch"] != row["epoch"]] + [row]
        self._recorded = True
        if self.verbose and trainer.is_global_zero:
            shown = {k: v for k, v in row.items() if k not in ("epoch",)}
            text = "  ".join(f"{k} {v:.4g}" for k, v in shown.items())
            print(f"epoch {row['epoch'] + 1}/{trainer.max_epochs}  {text}", file=sys.stdout, flush=True)

    def state_dict(self) -> dict[str, Any]:
        return {"rows": [dict(r) for r in self.rows]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rows = [dict(r) for r in state_dict.get("rows", [])]
