"""The LightningModule: a backbone, a loss, an optimiser / schedule, and full-set validation metrics."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor, nn

from ral.data.transforms import InputNormalizer
from ral.engine.checkpoint import CHECKPOINT_FORMAT
from ral.engine.config import Config
from ral.engine.datamodule import gather_unique
from ral.engine.schedule import advance, lr_schedule

#: State-dict prefixes of the trained network and of its moving average.
MODEL_PREFIX, EMA_PREFIX = "model.", "ema.module."


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


class WeightEMA(nn.Module):
    """Exponential moving average of a model's weights and floating-point buffers (others are copied).

    Hand-written: torch's ``AveragedModel.update_parameters`` (which Lightning's
    ``EMAWeightAveraging`` calls too) reads its ``n_averaged`` counter back from the device on
    every update (``bool(n_averaged == 0)``, ``n_averaged > 0``): a host synchronisation per step,
    which ``tests/engine/test_gpu.py`` forbids; ``get_ema_multi_avg_fn`` has no decay warm-up.

    ``update(model, step)``: ``ema = decay_t * ema + (1 - decay_t) * value`` with
    ``decay_t = min(decay, (1 + step) / (10 + step))`` (the average follows the first steps closely);
    fused ``foreach`` kernels.

    Args:
        model: the network to average (copied). decay: in (0, 1).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        super().__init__()
        self.decay = float(decay)
        self.module = copy.deepcopy(model)
        self.module.requires_grad_(False)

    @staticmethod
    def _values(model: nn.Module) -> list[Tensor]:
        return [*model.parameters(), *model.buffers()]

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        decay = min(self.decay, (1.0 + step) / (10.0 + step))
        pairs = list(zip(self._values(self.module), self._values(model), strict=True))
        floating = [(e, m.detach()) for e, m in pairs if e.is_floating_point()]
        if floating:
            averaged, current = zip(*floating)
            torch._foreach_lerp_(list(averaged), list(current), 1.0 - decay)
        for e, m in pairs:
            if not e.is_floating_point():
                e.copy_(m)


class ClassifierModule(L.LightningModule):
    """Train ``model`` with ``loss``; validate on the whole validation set.

    The batches hold uint8 pixels (what the loader ships); ``normalize`` turns them into the
    model's float input on the device, as the first step of every forward pass.

    Args:
        model: maps normalised images (N, C_in, H, W) to logits (N, C).
        loss: multi-label ``loss(logits (N, C), targets (N, C) with NaN = ignore)`` or single-label
            ``loss(logits (N, C), targets (N,) int64)``.
        task: "multilabel" or "single".
        config: the run's config (optimiser, schedule, EMA, compile; stored in checkpoints as plain
            data, read back with :func:`ral.engine.config.config_from_checkpoint`).
        meta: plain data describing the classes (class_names, train_counts, groups, ...) and the
            input (channels, normalisation), stored in checkpoints under ``"ral"`` next to the config.
        normalize: uint8 (N, c, H, W) -> float (N, C_in, H, W); default: ``meta["normalize"]``'s mean / std.
        channels_last: the model and its inputs in the channels-last memory format.
    """

    def __init__(
        self,
        model: nn.Module,
        loss: nn.Module,
        *,
        task: str,
        config: Config,
        meta: dict[str, Any],
        normalize: InputNormalizer | None = None,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        if normalize is None:
            stats = meta.get("normalize", {"mean": [0.5], "std": [0.5]})
            normalize = InputNormalizer(stats["mean"], stats["std"], channels_last=channels_last)
        self.normalize = normalize
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        decay = config.train.ema_decay
        self.ema = WeightEMA(model, decay) if decay is not None else None
        if config.train.compile:
            self.model.compile()  # in place: the state-dict names stay those of the model
        self.loss_fn = loss
        self.task = task
        self.config = config
        self.meta = meta
        self._val_batches: list[tuple[Tensor, Tensor, Tensor]] = []
        # sum of loss x batch size and number of samples of this epoch (checkpointed: exact after a resume)
        self._epoch_loss = torch.zeros(2)
        self._resume_step = 0  # optimiser steps of the checkpoint a run resumes from

    def forward(self, images: Tensor) -> Tensor:
        """uint8 (N, c, H, W) -> (N, C) logits of the trained network."""
        return self.model(self.normalize(images))

    @property
    def eval_model(self) -> nn.Module:
        """The network validation uses: the moving average of the weights when there is one."""
        return self.ema.module if self.ema is not None else self.model

    def probabilities(self, logits: Tensor) -> Tensor:
        """Sigmoid (multi-label) or softmax (single-label) in float32, (N, C)."""
        logits = logits.float()
        return torch.sigmoid(logits) if self.task == "multilabel" else torch.softmax(logits, dim=1)

    def _follow_epoch(self) -> None:
        # Losses with an epoch schedule (LDAM's deferred re-weighting) follow the trainer's epoch.
        set_epoch = getattr(self.loss_fn, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(self.current_epoch)

    def on_train_epoch_start(self) -> None:
        self._follow_epoch()
        self._epoch_loss.zero_()

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        # Nothing here reads a value back to the host: the step log is this process's loss (no
        # all-reduce), the epoch sums stay on the device, the loss does not check its targets.
        _, images, targets = batch
        loss = self.loss_fn(self(images).float(), targets)
        size = images.shape[0]
        self.log("train_loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=size, sync_dist=False)
        self._epoch_loss[0] += loss.detach().float() * size
        self._epoch_loss[1] += size
        return loss

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        super().optimizer_step(*args, **kwargs)
        if self.ema is not None:
            self.ema.update(self.model, self.global_step)

    def on_train_epoch_end(self) -> None:
        total, count = self._epoch_loss
        self.log("train_loss_epoch", total / count.clamp(min=1), sync_dist=True)

    def validation_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        index, images, targets = batch
        logits = self.eval_model(self.normalize(images)).float()
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
        self.log_dict(self._per_class(targets_np, probs_np), sync_dist=True)

    def _per_class(self, y_true: np.ndarray, probs: np.ndarray) -> dict[str, float]:
        """``val_AP/<class>`` (multi-label) or ``val_recall/<class>`` (single-label) of every class, for the
        experiment trackers (NaN for a class without positives in the validation set)."""
        from ral.metrics import per_class_metrics, single_label_metrics

        if self.task == "multilabel":
            name, scores = "AP", per_class_metrics(y_true, probs)["AP"]
        else:
            name, scores = "recall", single_label_metrics(y_true, probs)["per_class"]["recall"]
        return {f"val_{name}/{c}": float(v) for c, v in zip(self.meta["class_names"], scores, strict=True)}

    def configure_optimizers(self) -> dict[str, Any]:
        opt_cfg, sched_cfg = self.config.optimizer, self.config.schedule
        decay, no_decay = [], []
        for param in self.model.parameters():  # the network's own weights, not their moving average
            if param.requires_grad:
                (no_decay if param.ndim <= 1 else decay).append(param)  # no decay on norms / biases
        groups = [  # named: the trackers log their rates as lr/decay and lr/no_decay
            {"params": decay, "weight_decay": opt_cfg.weight_decay, "name": "decay"},
            {"params": no_decay, "weight_decay": 0.0, "name": "no_decay"},
        ]
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
        schedule = lr_schedule(
            optimizer,
            total_steps=total,
            warmup_steps=int(round(sched_cfg.warmup_epochs * total / epochs)),
            schedule=sched_cfg.name,
            min_lr_ratio=sched_cfg.min_lr_ratio,
        )
        advance(schedule, self._resume_step)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step", "name": "lr"}}

    def on_train_start(self) -> None:
        self._follow_epoch()  # a run resumed inside an epoch gets no on_train_epoch_start
        self._epoch_loss = self._epoch_loss.to(self.device)
        if self._resume_step:  # the restored optimiser holds the stored rate: take the schedule's
            for scheduled in self.trainer.lr_scheduler_configs:
                for group, lr in zip(scheduled.scheduler.optimizer.param_groups, scheduled.scheduler.get_last_lr()):
                    group["lr"] = lr

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # plain data only: the checkpoint must load with torch.load(weights_only=True)
        checkpoint["ral"] = {"format": CHECKPOINT_FORMAT, "config": self.config.model_dump(mode="json"), **self.meta}
        checkpoint["ral_epoch_loss"] = self._epoch_loss.detach().cpu().clone()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "ral_epoch_loss" in checkpoint:
            self._epoch_loss = checkpoint["ral_epoch_loss"].float().clone()
        # The schedule is rebuilt from the current config and advanced to the stored step, not
        # loaded: its stored state would keep the old total, so more epochs would not stretch it.
        stored = checkpoint.get("lr_schedulers") or [{}]
        self._resume_step = int(stored[0].get("last_epoch", checkpoint.get("global_step", 0)))
        checkpoint["lr_schedulers"] = []
        # a resumed run that switches the moving average on starts it from the weights; one that
        # switches it off drops it (Lightning loads the state dict strictly, after this hook)
        state = checkpoint.get("state_dict", {})
        averaged = [key for key in state if key.startswith("ema.")]
        if self.ema is not None and not averaged:
            state.update(
                {EMA_PREFIX + k[len(MODEL_PREFIX) :]: v for k, v in list(state.items()) if k.startswith(MODEL_PREFIX)}
            )
        elif self.ema is None:
            for key in averaged:
                del state[key]
