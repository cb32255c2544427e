"""Lightning callbacks of ``ral train``: restorable RNG state, a per-epoch history with timings, and
the run's end-of-epoch and mid-epoch checkpoints."""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ral.engine.checkpoint import load_checkpoint, save_atomic

#: File names in ``<output_dir>/checkpoints/``.
LAST = "last.ckpt"
MID_EPOCH = "mid-epoch.ckpt"
BEST = "best.ckpt"


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
    RNG restored, a resumed run draws the same dropout masks as the uninterrupted run (the
    augmentations and the shuffling do not use the global RNG, see :mod:`ral.engine.datamodule`).
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
        self._elapsed = (0.0, 0.0)  # seconds of the current epoch before a mid-epoch resume

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # a run resumed inside an epoch gets no on_train_epoch_start: count from here, plus the time before
        wall, cpu = self._elapsed
        self._start, self._cpu_start = time.perf_counter() - wall, time.process_time() - cpu
        self._val_start = self._cpu_val_start = 0.0

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
            "epoch": trainer.current_epoch + 1,  # 1-based, as printed
            "train_seconds": (self._val_start or now) - self._start,
            "train_cpu_seconds": (self._cpu_val_start or cpu_now) - self._cpu_start,
            "epoch_seconds": now - self._start,
        }
        for key, value in trainer.callback_metrics.items():
            if key.startswith("val_") and "/" not in key:  # per-class values (val_AP/<class>) go to the loggers only
                row[key] = float(value)
        self.rows = [r for r in self.rows if r["epoch"] != row["epoch"]] + [row]
        self._recorded = True
        if self.verbose and trainer.is_global_zero:
            shown = {k: v for k, v in row.items() if k not in ("epoch",)}
            text = "  ".join(f"{k} {v:.4g}" for k, v in shown.items())
            print(f"epoch {row['epoch']}/{trainer.max_epochs}  {text}", file=sys.stdout, flush=True)

    def state_dict(self) -> dict[str, Any]:
        elapsed = [time.perf_counter() - self._start, time.process_time() - self._cpu_start]
        return {"rows": [dict(r) for r in self.rows], "epoch_elapsed": elapsed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rows = [dict(r) for r in state_dict.get("rows", [])]
        wall, cpu = state_dict.get("epoch_elapsed", (0.0, 0.0))
        self._elapsed = (float(wall), float(cpu))


class RunCheckpoints(Checkpoint):
    """``last.ckpt`` at the end of every finished epoch (after validation), and ``mid-epoch.ckpt``
    every ``every_n_steps`` optimiser steps inside an epoch (0: never).

    Both are full training states (Lightning's ``trainer.save_checkpoint``, written atomically
    by the run's checkpoint I/O), so ``--resume`` can continue from either; the mid-epoch file is
    removed once its epoch's ``last.ckpt`` is written. A mid-epoch checkpoint is never written
    on an epoch's last batch (``last.ckpt`` follows at once) nor between the batches of one
    accumulated gradient (their partial gradient would be lost). The best epoch is Lightning's
    ``ModelCheckpoint`` (``best.ckpt``).

    Args:
        folder: ``<output_dir>/checkpoints``. every_n_steps: mid-epoch interval in optimiser steps.
    """

    def __init__(self, folder: str | Path, every_n_steps: int) -> None:
        self.folder = Path(folder)
        self.every_n_steps = every_n_steps
        self._last_saved_step = -1

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step, n = trainer.global_step, self.every_n_steps
        if not n or step == 0 or step % n or step == self._last_saved_step:
            return
        if (batch_idx + 1) % trainer.accumulate_grad_batches or batch_idx + 1 >= trainer.num_training_batches:
            return
        trainer.save_checkpoint(self.folder / MID_EPOCH, weights_only=False)  # the whole training state
        self._last_saved_step = step

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.save_checkpoint(self.folder / LAST, weights_only=False)
        if trainer.is_global_zero:
            (self.folder / MID_EPOCH).unlink(missing_ok=True)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint I/O that writes with :func:`ral.engine.checkpoint.save_atomic` and reads weights-only."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} does not take storage_options, got {storage_options!r}")
        save_atomic(checkpoint, path)

    def load_checkpoint(
        self, path: Any, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return load_checkpoint(path, map_location=map_location or "cpu")
