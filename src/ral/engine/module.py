"""The LightningModule: a backbone, a loss, an optimiser / schedule, and full-set validation metrics."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor, nn

from ral.engine.checkpoint import CHECKPOINT_FORMAT
from ral.engine.config import Config
from ral.engine.datamodule import gather_unique


def compute_metrics(task: str, y_true: np.ndarray, probs: np.ndarray, groups: Sequence[str] | None) -> dict[str, float]:
    """Headline metrics (scalars only) of one prediction set, via :mod:`ral.metrics`.

    Args:
        task: "multilabel" (y_true (N, C) with NaN = unknown) or "single" (y_true (N,) int).
        probs: (N, C) probabilities. groups: (C,) head / medium / tail or None.
    """
    from ral.metrics import metric_names, multilabel_metrics, single_label_metrics

    if task == "multilabel":
        result = multilabel_metrics(y_true, probs, groups=groups)
    else:
        result = single_label_metrics(y_true, probs, groups=groups)
    return {name: float(result[name]) for name in metric_names(task)}


def monitor_metric(task: str) -> str:
    """The validation metric that selects the best checkpoint (higher is better): ``val_<headline metric>``."""
    from ral.metrics import headline_metric

    return "val_" + headline_metric(task)


def lr_factor(step: int, *, total_steps: int, warmup_steps: int, schedule: str, min_lr_ratio: float) -> float:
    """Learning-rate multiplier at optimiser step ``step``: linear warm-up, then cosine or constant."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "none":
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class ClassifierModule(L.LightningModule):
    """Train ``model`` with ``loss``; validate on the whole validation set.

    Args:
        model: maps images (N, 1, H, W) to logits (N, C).
        loss: multi-label ``loss(logits (N, C), targets (N, C) with NaN = ignore)`` or single-label
            ``loss(logits (N, C), targets (N,) int64)``.
        task: "multilabel" or "single".
        config: the run's config (optimiser and schedule; stored in checkpoints as plain data,
            read back with :func:`ral.engine.config.config_from_checkpoint`).
        meta: plain data describing the classes (class_names, train_counts, groups, ...),
            stored in checkpoints under ``"ral"`` next to the config.
    """

    def __init__(self, model: nn.Module, loss: nn.Module, *, task: str, config: Config, meta: dict[str, Any]) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss
        self.task = task
        self.config = config
        self.meta = meta
        self._val_batches: list[tuple[Tensor, Tensor, Tensor]] = []
        # sum of loss x batch size and number of samples of this epoch (checkpointed: exact after a resume)
        self._epoch_loss = torch.zeros(2)

    def forward(self, images: Tensor) -> Tensor:
        """(N, 1, H, W) -> (N, C) logits."""
        return self.model(images)

    def probabilities(self, logits: Tensor) -> Tensor:
        """Sigmoid (multi-label) or softmax (single-label) in float32, (N, C)."""
        logits = logits.float()
        return torch.sigmoid(logits) if self.task == "multilabel" else torch.softmax(logits, dim=1)

    def _follow_epoch(self) -> None:
        # Losses with an epoch schedule (LDAM's deferred re-weighting) follow the trainer's epoch.
        set_epoch = getattr(self.loss_fn, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(self.current_epoch)

    def on_train_start(self) -> None:
        self._follow_epoch()  # a run resumed inside an epoch gets no on_train_epoch_start
        self._epoch_loss = self._epoch_loss.to(self.device)

    def on_train_epoch_start(self) -> None:
        self._follow_epoch()
        self._epoch_loss.zero_()

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        _, images, targets = batch
        loss = self.loss_fn(self.model(images).float(), targets)
        self.log(
            "train_loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=images.shape[0], sync_dist=True
        )
        size = images.shape[0]
        self._epoch_loss += torch.stack([loss.detach().float() * size, loss.new_tensor(float(size))])
        return loss

    def on_train_epoch_end(self) -> None:
        total, count = self._epoch_loss
        self.log("train_loss_epoch", total / count.clamp(min=1), sync_dist=True)

    def validation_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        index, images, targets = batch
        logits = self.model(images).float()
        self.log("val_loss", self.loss_fn(logits, targets), on_epoch=True, batch_size=images.shape[0], sync_dist=True)
        self._val_batches.append((index, self.probabilities(logits).detach(), targets))

    def on_validation_epoch_start(self) -> None:
        self._val_batches = []

    def on_validation_epoch_end(self) -> None:
        if not self._val_batches:
            return
        index, probs, targets = (torch.cat(parts) for parts in zip(*self._val_batches))
        self._val_batches = []
        if self.trainer.world_size > 1:  # every process gets every prediction
            index, probs, targets = self.all_gather((index, probs, targets))
        _, probs_np, targets_np = gather_unique(index, probs, targets)
        metrics = compute_metrics(self.task, targets_np, probs_np, self.meta.get("groups"))
        monitor = monitor_metric(self.task)
        values = {f"val_{k}": v for k, v in metrics.items()}
        # Identical on every process; sync_dist (a mean of equal values) only keeps Lightning quiet.
        self.log(monitor, values.pop(monitor), prog_bar=True, sync_dist=True)
        self.log_dict(values, sync_dist=True)

    def configure_optimizers(self) -> dict[str, Any]:
        opt_cfg, sched_cfg = self.config.optimizer, self.config.schedule
        decay, no_decay = [], []
        for param in self.model.parameters():
            if param.requires_grad:
                (no_decay if param.ndim <= 1 else decay).append(param)  # no decay on norms / biases
        groups = [{"params": decay, "weight_decay": opt_cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        lr = opt_cfg.lr
        if opt_cfg.name == "adamw":
            optimizer: torch.optim.Optimizer = torch.optim.AdamW(groups, lr=lr)
        elif opt_cfg.name == "adam":
            optimizer = torch.optim.Adam(groups, lr=lr)
        else:
            optimizer = torch.optim.SGD(groups, lr=lr, momentum=opt_cfg.momentum, nesterov=opt_cfg.momentum > 0)
        epochs = max(1, int(self.trainer.max_epochs or 1))
        batches = getattr(self.trainer.datamodule, "train_batches", None)
        if callable(batches):
            # Lightning's estimated_stepping_batches would set up the training loader before a
            # checkpoint's loader position is restored, so a mid-epoch resume would restart the epoch
            total = math.ceil(batches() / self.trainer.accumulate_grad_batches) * epochs
        else:
            total = int(self.trainer.estimated_stepping_batches)
        total = max(1, total)
        warmup = int(round(sched_cfg.warmup_epochs * total / epochs))
        factor: Callable[[int], float] = lambda step: lr_factor(  # noqa: E731
            step, total_steps=total, warmup_steps=warmup, schedule=sched_cfg.name, min_lr_ratio=sched_cfg.min_lr_ratio
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # plain data only: the checkpoint must load with torch.load(weights_only=True)
        checkpoint["ral"] = {"format": CHECKPOINT_FORMAT, "config": self.config.model_dump(mode="json"), **self.meta}
        checkpoint["ral_epoch_loss"] = self._epoch_loss.detach().cpu().clone()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "ral_epoch_loss" in checkpoint:
            self._epoch_loss = checkpoint["ral_epoch_loss"].float().clone()
