"""``ral train``: fit a classifier with Lightning from a validated config.

Lightning provides mixed precision, gradient accumulation, DDP (``torchrun`` or ``devices: N``;
gloo on CPU), progress bars, CSV / TensorBoard logs, best-checkpoint selection and early
stopping. This module only wires them together and adds what Lightning lacks: atomic
weights-only checkpoints, restorable RNG state and a per-epoch timing history.

Output folder layout::

    <output_dir>/config.yaml            the resolved config (absolute data paths)
    <output_dir>/checkpoints/best.ckpt  best epoch on val mAP (balanced accuracy if single-label)
    <output_dir>/checkpoints/last.ckpt  end of the last finished epoch (what --resume continues)
    <output_dir>/logs/metrics.csv       per-step / per-epoch metrics (CSVLogger; after a resume the
                                        earlier part is kept as logs/metrics-part1.csv, ...)
    <output_dir>/result.json            written when training ends (see :func:`train`)
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ral.engine.build import absolute_paths, prepare_run
from ral.engine.config import Config, config_from_dict, dump_yaml, validate_config


def checkpoint_dir(config: Config) -> Path:
    """Folder of a run's checkpoints."""
    return Path(config.output_dir) / "checkpoints"


def _changed_keys(before: Mapping[str, Any], after: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping) and key not in ("options", "params"):
            keys += _changed_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            keys.append(f"{prefix}{key}")
    return keys


def _resume_path(config: Config, resume: bool) -> str | None:
    import yaml

    from ral.engine.checkpoint import remove_stale_temporaries

    folder = checkpoint_dir(config)
    last = folder / "last.ckpt"
    if resume:
        remove_stale_temporaries(folder)
        stored = Path(config.output_dir) / "config.yaml"
        if stored.is_file():
            changed = _changed_keys(yaml.safe_load(stored.read_text(encoding="utf-8")) or {}, config.to_dict())
            if changed:
                warnings.warn(
                    f"resuming {config.output_dir} with a config that differs from the stored one in "
                    f"{changed}; the new values are used from here on",
                    stacklevel=3,
                )
        if last.is_file():
            return str(last)
        print(f"ral train: no checkpoint in {folder} yet; starting from the first epoch")
        return None
    if folder.is_dir() and any(folder.glob("*.ckpt")):
        raise ValueError(
            f"output_dir {config.output_dir!r} already holds a run ({folder}); pass --resume to continue it "
            "or set another output_dir"
        )
    return None


def _keep_previous_log(out: Path) -> None:
    """Rename ``logs/metrics.csv`` to ``logs/metrics-partN.csv``: Lightning's CSVLogger deletes an
    existing metrics file when it starts, which would lose the epochs before a resume."""
    current = out / "logs" / "metrics.csv"
    if current.is_file():
        part = 1
        while (current.parent / f"metrics-part{part}.csv").exists():
            part += 1
        current.rename(current.parent / f"metrics-part{part}.csv")


def _loggers(out: Path) -> list[Any]:
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    loggers: list[Any] = [CSVLogger(save_dir=str(out), name="logs", version="")]
    if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
        loggers.append(TensorBoardLogger(save_dir=str(out), name="tensorboard", version=""))
    return loggers


def _summary(rows: list[dict[str, float]], monitor: str | None) -> tuple[dict[str, float], float]:
    """Best row (highest ``monitor``; last row without one) and its score."""
    if monitor is None or not any(math.isfinite(r.get(monitor, math.nan)) for r in rows):
        row = rows[-1] if rows else {}
        return row, float(row.get(monitor, math.nan)) if monitor and row else math.nan
    best = max((r for r in rows if math.isfinite(r.get(monitor, math.nan))), key=lambda r: r[monitor])
    return best, float(best[monitor])


def _mean(rows: list[dict[str, float]], key: str) -> float:
    values = [r[key] for r in rows if key in r]
    return float(sum(values) / len(values)) if values else math.nan


def train(config: Config | Mapping[str, Any], *, resume: bool = False) -> dict[str, Any]:
    """Train a model as described by ``config``; with ``resume``, continue from ``last.ckpt``.

    The whole config is validated and the tables, loss and model are built before the first
    training step (bad values raise ``ValueError`` / ``FileNotFoundError`` naming the key).

    Returns:
        ``{"output_dir", "best_checkpoint", "last_checkpoint", "monitor", "best_epoch",
        "best_score", "val_metrics" (of the best epoch, without the ``val_`` prefix),
        "epochs_completed", "stopped_early", "train_seconds_per_epoch" (wall clock, training loop
        only), "train_cpu_seconds_per_epoch" (CPU time of this process, training loop only),
        "epoch_seconds" (wall clock, training + validation), "history" (one row per epoch), "task", "loss",
        "backbone", "num_classes", "num_train_images"}``, also written to ``result.json``, plus
        ``"is_global_zero"`` (False in the other processes of a distributed run).

    Raises:
        ValueError: bad config, or ``output_dir`` holds a run and ``resume`` is False.
    """
    import lightning as L
    from lightning.fabric.utilities.exceptions import MisconfigurationException
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    from ral.engine.callbacks import EpochHistory, RNGState
    from ral.engine.checkpoint import AtomicCheckpointIO
    from ral.engine.datamodule import TableDataModule
    from ral.engine.module import ClassifierModule, monitor_metric
    from ral.report import write_json, write_text

    if not isinstance(config, Config):
        config = config_from_dict(dict(config))
    config = absolute_paths(validate_config(config))
    ckpt_path = _resume_path(config, resume)
    L.seed_everything(config.seed, workers=True, verbose=False)
    run = prepare_run(config)

    t = config.train
    out = Path(config.output_dir)
    monitor = monitor_metric(run.meta["task"]) if run.val is not None else None
    history = EpochHistory(verbose=not t.progress_bar)
    callbacks: list[Any] = [
        RNGState(),
        history,
        ModelCheckpoint(
            dirpath=str(checkpoint_dir(config)),
            filename="best",
            monitor=monitor,
            mode="max",
            save_top_k=1,
            save_last=True,
            auto_insert_metric_name=False,
            enable_version_counter=False,
        ),
    ]
    if t.early_stopping_patience is not None and monitor is not None:
        callbacks.append(EarlyStopping(monitor=monitor, mode="max", patience=t.early_stopping_patience))
    try:
        trainer = L.Trainer(
            default_root_dir=str(out),
            max_epochs=t.epochs,
            accelerator=t.accelerator,
            devices=t.devices,
            strategy=t.strategy,
            num_nodes=t.num_nodes,
            precision="32-true" if t.precision in ("32", "32-true") else t.precision,
            accumulate_grad_batches=t.accumulate_grad_batches,
            gradient_clip_val=t.gradient_clip_val,
            sync_batchnorm=t.sync_batchnorm,
            deterministic=t.deterministic or None,
            callbacks=callbacks,
            logger=_loggers(out),
            enable_progress_bar=t.progress_bar,
            enable_model_summary=t.progress_bar,
            log_every_n_steps=t.log_every_n_steps,
            num_sanity_val_steps=0,  # keeps the RNG stream identical between fresh and resumed runs
            limit_val_batches=None if run.val is not None else 0,
            use_distributed_sampler=False,  # TableDataModule builds seed + epoch samplers itself
            plugins=[AtomicCheckpointIO()],
        )
    except (MisconfigurationException, RuntimeError, ValueError) as exc:
        raise ValueError(f"config section 'train' (accelerator / devices / strategy / precision): {exc}") from None

    module = ClassifierModule(run.model, run.loss, task=run.meta["task"], config=config, meta=run.meta)
    data = TableDataModule(
        run.train,
        run.val,
        image_size=config.dataset.image_size,
        augment=config.dataset.augment,
        batch_size=t.batch_size,
        eval_batch_size=t.eval_batch_size or t.batch_size,
        num_workers=config.dataset.num_workers,
        seed=config.seed,
        cache_dir=config.dataset.cache_dir,
    )
    if trainer.is_global_zero:  # before fit: the CSV logger opens its file lazily
        if ckpt_path is not None:
            _keep_previous_log(out)
        write_text(dump_yaml(config), out / "config.yaml")
    trainer.fit(module, datamodule=data, ckpt_path=ckpt_path, weights_only=True)

    rows = history.rows
    best, score = _summary(rows, monitor)
    folder = checkpoint_dir(config)
    result = {
        "output_dir": str(out),
        "best_checkpoint": str(folder / "best.ckpt"),
        "last_checkpoint": str(folder / "last.ckpt"),
        "monitor": monitor,
        "best_epoch": int(best["epoch"]) if best else None,
        "best_score": score,
        "val_metrics": {k[4:]: v for k, v in best.items() if k.startswith("val_")},
        "epochs_completed": len(rows),
        "stopped_early": bool(len(rows) < t.epochs),
        "train_seconds_per_epoch": _mean(rows, "train_seconds"),
        "train_cpu_seconds_per_epoch": _mean(rows, "train_cpu_seconds"),
        "epoch_seconds": _mean(rows, "epoch_seconds"),
        "history": rows,
        "task": run.meta["task"],
        "loss": config.loss.name,
        "backbone": config.model.backbone,
        "num_classes": run.meta["num_classes"],
        "num_train_images": run.meta["num_train_images"],
    }
    if trainer.is_global_zero:
        write_json(result, out / "result.json")
    return result | {"is_global_zero": trainer.is_global_zero}
