"""``ral bench throughput``: images/s of ``ral train``'s full training step against a plain PyTorch loop.

Both run in one process on the same simulated images (the cache ``ral train`` builds), the same
network (same initial weights), loss, batch, precision, augmentation and loader workers:

- **pipeline**: :func:`ral.engine.train` itself (its data module and resumable loader, uint8
  batches normalised on the device, the Lightning module, its callbacks and its logging),
  running in a background thread; a callback lets it run one training step each time the
  timing harness asks, so a step is the whole cycle of Lightning's loop: fetching the batch,
  the hooks, the step, the logging.
- **plain**: the loop a user writes by hand, written below: a ``DataLoader`` over the cached
  uint8 images, the same augmentation, normalisation, forward, loss, backward, AdamW step.
- **loss**: the loss alone (forward + backward on the step's logits), for its share of a step.

The timing harness (:mod:`ral.bench.timing`) interleaves the three (order reversed every other
round) and reports the median over rounds of the paired ratios ``plain / pipeline`` (the
throughput ratio: 1 = the pipeline costs nothing) and ``loss / plain`` (the loss's share).
Results: ``throughput.json`` (``pipeline_images_per_s``, ``plain_images_per_s``, ``ratio`` ...),
``throughput.csv`` (every round), ``throughput_summary.csv`` and ``throughput.md``.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from ral.bench.timing import (
    AUTOCAST,
    ThroughputConfig,
    interleaved_times,
    machine_description,
    paired_summary,
    ratio_text,
    write_timing,
)


def _simulated(config: ThroughputConfig, data_dir: Path) -> Path:
    """Simulated chest radiographs at ``image_size`` px, enough for one epoch longer than the timing."""
    from ral.data.simulate import ensure_simulated

    n_train = max(200, config.batch_size * (config.steps_per_task + 4))
    folder = data_dir / f"cxr-{config.image_size}px-{n_train}"
    return ensure_simulated(
        folder, log=print, seed=config.seed, size=config.image_size, n_train=n_train, n_val=200, n_test=200
    )


def engine_config(config: ThroughputConfig, data: Path, out: Path) -> dict[str, Any]:
    """The ``ral train`` config of the pipeline: one long epoch, no validation, default logging."""
    return {
        "seed": config.seed,
        "output_dir": str(out / "run"),
        "dataset": {
            "train": str(data / "train.csv"),
            "image_size": config.image_size,
            "channels": config.channels,
            "augment": config.augment,
            "cache_dir": str(data / "cache"),
            "num_workers": config.num_workers,
        },
        "model": {"backbone": config.backbone},
        "loss": {"name": config.loss},
        "schedule": {"name": "cosine", "warmup_epochs": 0},
        "train": {
            "epochs": 1,
            "batch_size": config.batch_size,
            "precision": config.precision,
            "accelerator": "gpu" if config.device == "cuda" else "cpu",
            "devices": 1,
            "progress_bar": False,
            "checkpoint_every_n_steps": 0,
        },
    }


class StepGate(L.Callback):
    """Lets the training loop of a background ``trainer.fit`` run one step per :meth:`step` call.

    The loop waits at the end of each training batch; :meth:`step` releases it and returns once
    the next batch has ended, so one call covers a whole cycle of the loop (the rest of the
    previous batch's hooks, fetching the next batch, its step and hooks). :meth:`finish` stops
    the loop at the end of the current batch. Hand-written: Lightning has no way to advance a
    running ``fit`` one step at a time from another thread, which the interleaved rounds need.
    """

    def __init__(self) -> None:
        self._go = threading.Semaphore(0)
        self._done = threading.Semaphore(0)
        self._stop = self._ended = False
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.loader: dict[str, Any] = {}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        settings = getattr(trainer.datamodule, "loader_settings", None)
        self.loader = settings() if callable(settings) else {}

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self._done.release()
        self._go.acquire()
        if self._stop:
            trainer.should_stop = True

    def start(self, run: Any) -> None:
        """Run ``run()`` (the fit) in a background thread; return after its first training step."""

        def target() -> None:
            try:
                run()
            except BaseException as exc:  # handed to the caller's thread
                self.error = exc
            finally:  # wakes a step waiting for a loop that ended by itself (an epoch too short)
                self._ended = True
                self._done.release()

        self.thread = threading.Thread(target=target, name="ral-train", daemon=True)
        self.thread.start()
        self._wait()

    def _wait(self) -> None:
        self._done.acquire()
        if self.error is not None:
            raise RuntimeError(f"the training run of the pipeline failed: {self.error}") from self.error
        if self._ended:
            raise RuntimeError("the pipeline's epoch ended before the timing did")

    def step(self) -> None:
        """Let the loop run one more training step and wait for it."""
        self._go.release()
        self._wait()

    def finish(self) -> None:
        """Stop the loop after the current batch and wait for the fit to end."""
        self._stop = True
        self._go.release()
        if self.thread is not None:
            self.thread.join()
        if self.error is not None:
            raise RuntimeError(f"the training run of the pipeline failed: {self.error}") from self.error


class PlainImages(Dataset):
    """What a hand-written loop reads: uint8 images (N, c, S, S) in memory, augmented per item."""

    def __init__(self, pixels: Tensor, targets: Tensor, augmentation: Any, seed: int) -> None:
        self.pixels, self.targets, self.augmentation, self.seed = pixels, targets, augmentation, seed

    def __len__(self) -> int:
        return len(self.pixels)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image = self.pixels[index]
        if self.augmentation is not None:
            image = self.augmentation(image, self.seed * 1_000_003 + index)
        return image, self.targets[index]


class PlainLoop:
    """A plain PyTorch training loop: loader, normalisation, forward, loss, backward, AdamW step.

    Args:
        model: the network (float input). loss: the criterion. images: the dataset to read.
        mean, std: the normalisation. config: batch, precision, device, workers.
        channels_last: the model and its input in the channels-last memory format.
    """

    def __init__(
        self,
        model: nn.Module,
        loss: nn.Module,
        images: Dataset,
        mean: list[float],
        std: list[float],
        config: ThroughputConfig,
        *,
        channels_last: bool = False,
    ) -> None:
        self.device = torch.device(config.device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.to(self.device, memory_format=self.memory_format).train()
        self.loss = loss.to(self.device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-3, weight_decay=1e-4)
        self.autocast = AUTOCAST.get(config.precision)
        self.scaler = torch.amp.GradScaler(enabled=self.autocast is torch.float16 and self.device.type == "cuda")
        self.mean = torch.tensor(mean, device=self.device).view(1, -1, 1, 1) * 255.0
        self.std = torch.tensor(std, device=self.device).view(1, -1, 1, 1) * 255.0
        self.channels = len(mean)
        pin = self.device.type == "cuda"
        workers = {"persistent_workers": True} if config.num_workers else {}
        self.loader = DataLoader(
            images,
            batch_size=config.batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=config.num_workers,
            pin_memory=pin,
            generator=torch.Generator().manual_seed(config.seed),
            **workers,
        )
        self.batches = iter(self.loader)
        self.last_logits: Tensor | None = None
        self.last_targets: Tensor | None = None

    def _batch(self) -> tuple[Tensor, Tensor]:
        try:
            return next(self.batches)
        except StopIteration:
            self.batches = iter(self.loader)
            return next(self.batches)

    def step(self) -> None:
        """One training step on the next batch."""
        pixels, targets = self._batch()
        pixels = pixels.to(self.device, non_blocking=True)
        targets = targets.to(self.device, non_blocking=True)
        x = (pixels.float().expand(-1, self.channels, -1, -1) - self.mean) / self.std
        x = x.contiguous(memory_format=self.memory_format)
        with torch.autocast(self.device.type, dtype=self.autocast or torch.float32, enabled=self.autocast is not None):
            logits = self.model(x)
        loss = self.loss(logits.float(), targets)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.last_logits, self.last_targets = logits.detach().float(), targets


def _loss_step(loss: nn.Module, logits: Tensor, targets: Tensor) -> Any:
    """Forward + backward of ``loss`` alone on fixed logits (N, C) of a training step."""
    leaf = logits.detach().clone().requires_grad_()

    def step() -> None:
        leaf.grad = None
        loss(leaf, targets).backward()

    return step


def measure_throughput(config: ThroughputConfig, out: Path, data_dir: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Time the three tasks in interleaved rounds.

    Returns:
        One row per (round, name) (``round``, ``name``, ``seconds`` per step) and the details of
        the pipeline's run (``loader``: its resolved loader settings, ``channels_last``).

    Raises:
        ValueError: a setting the engine refuses. RuntimeError: the pipeline's run failed.
    """
    from ral.engine import train
    from ral.engine.build import absolute_paths, build_run_loss, prepare_run
    from ral.engine.configfile import config_from_dict

    data = _simulated(config, data_dir)
    raw = engine_config(config, data, out)
    # what the pipeline's run builds too, from the same seed: the cache, the loss, the initial weights
    L.seed_everything(config.seed, workers=True, verbose=False)
    prepared = prepare_run(absolute_paths(config_from_dict(raw)))
    images = prepared.train_images
    if images.cache_file is None:
        raise ValueError("the throughput benchmark reads the image cache, but the run has none")
    plain_images = PlainImages(
        torch.from_numpy(np.load(images.cache_file)), images.targets, images.augmentation, config.seed
    )
    channels_last = config.device == "cuda" and config.precision in AUTOCAST  # the engine's default
    normalize = prepared.meta["normalize"]
    plain = PlainLoop(
        prepared.model,
        build_run_loss(config.loss, {}, prepared.meta["task"], prepared.train),
        plain_images,
        normalize["mean"],
        normalize["std"],
        config,
        channels_last=channels_last,
    )
    gate = StepGate()
    gate.start(lambda: train(raw, overwrite=True, callbacks=[gate]))
    plain.step()
    tasks = {
        "pipeline": gate.step,
        "plain": plain.step,
        "loss": _loss_step(plain.loss, plain.last_logits, plain.last_targets),
    }
    try:
        times = interleaved_times(tasks, rounds=config.rounds, calls=config.steps, warmup=config.warmup)
    finally:
        gate.finish()
    return times, {"loader": gate.loader, "channels_last": channels_last}


def throughput_result(config: ThroughputConfig, times: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The summary table (paired ratios to the pipeline) and the figures of ``throughput.json``."""
    summary = paired_summary(times, "pipeline")
    share = paired_summary(times, "plain").set_index("name").loc["loss"]
    rows = summary.set_index("name")
    plain = rows.loc["plain"]
    seconds = {name: rows.loc[name, "median_ms"] / 1e3 for name in ("pipeline", "plain")}
    figures = {
        "pipeline_images_per_s": config.batch_size / seconds["pipeline"],
        "plain_images_per_s": config.batch_size / seconds["plain"],
        "ratio": float(plain["ratio_median"]),
        "ratio_q25": float(plain["ratio_q25"]),
        "ratio_q75": float(plain["ratio_q75"]),
        "pipeline_ms_per_step": float(rows.loc["pipeline", "median_ms"]),
        "plain_ms_per_step": float(rows.loc["plain", "median_ms"]),
        "loss_ms_per_step": float(rows.loc["loss", "median_ms"]),
        "loss_share": float(share["ratio_median"]),
        "loss_share_q25": float(share["ratio_q25"]),
        "loss_share_q75": float(share["ratio_q75"]),
    }
    return summary, figures


def throughput_report(config: ThroughputConfig, figures: dict[str, Any], machine: str, command: str) -> str:
    """Markdown record of one measurement."""
    from ral.report import markdown_table

    ratio = ratio_text(figures["ratio"], figures["ratio_q25"], figures["ratio_q75"], digits=3)
    share = "{:.2%} [{:.2%}, {:.2%}]".format(
        figures["loss_share"], figures["loss_share_q25"], figures["loss_share_q75"]
    )
    table = pd.DataFrame(
        [
            ["ral pipeline", f"{figures['pipeline_ms_per_step']:.1f}", f"{figures['pipeline_images_per_s']:.1f}"],
            ["plain PyTorch loop", f"{figures['plain_ms_per_step']:.1f}", f"{figures['plain_images_per_s']:.1f}"],
            [f"loss alone ({config.loss})", f"{figures['loss_ms_per_step']:.2f}", ""],
        ],
        columns=["", "median ms / step", "images / s"],
    )
    return (
        f"Training step of `{config.backbone}` at {config.image_size} px, batch {config.batch_size}, "
        f"{config.channels} channel(s), precision {config.precision}, augmentation `{config.augment}`, loss "
        f"`{config.loss}`, {config.num_workers} loader worker(s), on {config.device}; {config.rounds} interleaved "
        f"rounds of {config.steps} steps per task.\n\n"
        f"- throughput ratio pipeline / plain (median [IQR] of paired rounds): **{ratio}**\n"
        f"- the loss's share of a plain step: {share}\n\n"
        f"Command: `{command}`\n\nMachine: {machine}\n\n" + markdown_table(table)
    )


def run_throughput(
    config: ThroughputConfig,
    out_dir: str | Path,
    *,
    data_dir: str | Path,
    command: str = "",
    overwrite: bool = False,
) -> tuple[dict[str, Any], str]:
    """Measure and write ``throughput.json``, ``throughput.csv``, ``throughput_summary.csv``,
    ``throughput.md`` (and the pipeline's run folder ``run/``) into ``out_dir``.

    ``out_dir`` is checked before anything runs (missing or empty, or ``overwrite``); the
    simulated images are kept in ``data_dir`` for later measurements.

    Returns:
        The contents of ``throughput.json`` (with ``load_average_before``: the machine's load average
        just before the run, which shows whether other work shared it) and the markdown record.
    """
    from ral.report import write_json
    from ral.report.files import check_output

    out = check_output(out_dir, folder=True, overwrite=overwrite)
    # before this run adds its own load: a high value means other work shared the machine
    before = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"
    start = time.perf_counter()
    times, details = measure_throughput(config, out, Path(data_dir))
    summary, figures = throughput_result(config, times)
    machine = machine_description(config.device)
    text = throughput_report(config, figures, machine, command)
    result = {
        **figures,
        "settings": asdict(config),
        **details,
        "machine": machine,
        "load_average_before": before,
        "command": command,
        "seconds": time.perf_counter() - start,
    }
    write_json(result, out / "throughput.json")
    write_timing(out, "throughput", times, summary, text)
    return result, text
