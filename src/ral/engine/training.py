"""``ral train``: fit a classifier with Lightning from a validated config.

Lightning provides mixed precision, gradient accumulation, DDP (``torchrun`` or ``devices: N``;
gloo on CPU), progress bars, CSV / TensorBoard logs, best-checkpoint selection and early
stopping. This module only wires them together and adds what Lightning lacks: atomic
weights-only checkpoints, end-of-epoch and mid-epoch checkpoints that resume bit for bit,
restorable RNG state and a per-epoch timing history.

Output folder layout::

    <output_dir>/config.yaml                 the resolved config (absolute data paths)
    <output_dir>/checkpoints/best.ckpt       best epoch on val mAP (balanced accuracy if single-label)
    <output_dir>/checkpoints/last.ckpt       end of the last finished epoch
    <output_dir>/checkpoints/mid-epoch.ckpt  every train.checkpoint_every_n_steps steps inside an epoch
                                             (removed when the epoch's last.ckpt is written)
    <output_dir>/logs/metrics.csv            per-step / per-epoch metrics (CSVLogger; after a resume the
                                             earlier part is kept as logs/metrics-part1.csv, ...)
    <output_dir>/tensorboard/, mlflow/, wandb/  the trackers of train.logger (see ral.engine.loggers)
    <output_dir>/skipped_images.csv          images dropped by dataset.skip_bad (only when there are some)
    <output_dir>/pretrained_load.json        what model.pretrained_path matched (only with pretrained weights)
    <output_dir>/result.json                 written when training ends (see :func:`train`)

``--resume`` continues from the newer of ``last.ckpt`` and ``mid-epoch.ckpt``.

One process per run folder: a lock beside it (``.<name>.ral.lock``, and ``.<name>.ral.pid`` naming
the holder) while it trains (:mod:`ral.engine.runlock`). SIGTERM / SIGINT save ``mid-epoch.ckpt`` and stop with
status 128 + the signal (:mod:`ral.engine.signals`).
"""

from __future__ import annotations

import contextlib
import math
import shutil
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ral.engine.build import absolute_paths, prepare_run
from ral.engine.callbacks import BEST, LAST, MID_EPOCH
from ral.engine.config import Config
from ral.engine.configfile import config_from_dict, dump_yaml, validate_config
from ral.engine.loggers import hides_known_notices
from ral.engine.runlock import lock_run_folder, releases_run_locks
from ral.orphans import die_with_launcher

SKIPPED_IMAGES = "skipped_images.csv"
PRETRAINED_LOAD = "pretrained_load.json"
#: What ``ral train`` writes into its output folder (and ``--overwrite`` removes); ``eval/`` is
#: the default folder of ``ral evaluate``.
RUN_ENTRIES = (
    "checkpoints",
    "logs",
    "tensorboard",
    "wandb",
    "eval",
    "config.yaml",
    "result.json",
    SKIPPED_IMAGES,
    PRETRAINED_LOAD,
)
MIXED_PRECISION = ("16-mixed", "bf16-mixed")


def _shows_bar(config: Config) -> bool:
    """Lightning's progress bar: with ``train.progress_bar``, where ral's own bars show (stderr is a
    terminal, no ``--quiet``); elsewhere (CI logs, files) one line per epoch is printed instead."""
    from ral.progress import bars_shown

    return config.train.progress_bar and bars_shown()


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


def holds_run(output_dir: str | Path) -> bool:
    """Whether ``output_dir`` holds (part of) a ``ral train`` run: a checkpoint or a result."""
    out = Path(output_dir)
    return (out / "result.json").is_file() or any((out / "checkpoints").glob("*.ckpt"))


def newest_checkpoint(folder: str | Path) -> tuple[Path, dict[str, Any]] | None:
    """The checkpoint ``--resume`` continues from: the one of ``last.ckpt`` / ``mid-epoch.ckpt``
    with the larger global step (memory-mapped, not read), or None when there is none."""
    from ral.engine.checkpoint import load_checkpoint

    paths = [path for path in (Path(folder) / LAST, Path(folder) / MID_EPOCH) if path.is_file()]
    found = [(path, load_checkpoint(path, mmap=True)) for path in paths]
    return max(found, key=lambda item: int(item[1].get("global_step", 0)), default=None)


def _resume_from(config: Config, resume: bool, overwrite: bool) -> tuple[Path | None, dict[str, Any] | None]:
    """The checkpoint to continue from (path and memory-mapped content); refuses an existing run
    unless ``resume`` or ``overwrite``. Writes nothing."""
    folder = checkpoint_dir(config)
    if resume:
        newest = newest_checkpoint(folder)
        if newest is None:
            print(f"ral train: no checkpoint in {folder} yet; starting from the first epoch")
            return None, None
        return newest
    if not overwrite and holds_run(config.output_dir):
        raise ValueError(
            f"output_dir {config.output_dir!r} already holds a run ({folder}); pass --resume to continue it, "
            "--overwrite to start it anew, or set another output_dir"
        )
    return None, None


def _check_epochs_left(config: Config, path: Path, checkpoint: dict[str, Any]) -> None:
    """Refuse in one line a resume with fewer ``train.epochs`` than the checkpoint has finished
    (Lightning would raise inside ``fit``, after the run's files were written)."""
    # Lightning's epoch progress: "processed" counts an epoch whose end-of-epoch checkpoint this is
    progress = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("current", {})
    done = int(progress.get("processed", 0))
    if config.train.epochs < done:
        raise ValueError(
            f"train.epochs={config.train.epochs}: {path} has already finished {done} epochs; "
            f"set train.epochs to {done} or more to resume it"
        )


def _warn_changed_config(config: Config) -> None:
    """Warn when a resumed run's config differs from its stored ``config.yaml`` (the new values are used)."""
    import yaml

    stored = Path(config.output_dir) / "config.yaml"
    if stored.is_file():
        changed = _changed_keys(yaml.safe_load(stored.read_text(encoding="utf-8")) or {}, config.to_dict())
        if changed:
            warnings.warn(
                f"resuming {config.output_dir} with a config that differs from the stored one in "
                f"{changed}; the new values are used from here on",
                stacklevel=3,
            )


def _remove_run(out: Path) -> None:
    """Delete what an earlier run wrote into ``out`` (only the entries of ``RUN_ENTRIES``).

    Never what a run did not write: in ``checkpoints/`` only the run's own checkpoints and their
    temporary files (a checkpoint a user copied there stays, and so does the folder), in ``eval/``
    only the folders ``ral evaluate`` wrote (those holding a metrics.json).
    """
    from ral.engine.checkpoint import remove_stale_temporaries

    for name in RUN_ENTRIES:
        entry = out / name
        if name == "checkpoints" and entry.is_dir():
            remove_stale_temporaries(entry)
            for own in (BEST, LAST, MID_EPOCH):
                (entry / own).unlink(missing_ok=True)
            _remove_if_empty(entry)
        elif name == "eval" and entry.is_dir() and not entry.is_symlink():
            for evaluation in entry.iterdir():
                if (evaluation / "metrics.json").is_file() and not evaluation.is_symlink():
                    shutil.rmtree(evaluation)
            _remove_if_empty(entry)
        elif entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink(missing_ok=True)


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # it holds files the run did not write
        folder.rmdir()


def _keep_previous_log(out: Path) -> None:
    """Rename ``logs/metrics.csv`` to ``logs/metrics-partN.csv``: Lightning's CSVLogger deletes an
    existing metrics file when it starts, which would lose the epochs before a resume."""
    current = out / "logs" / "metrics.csv"
    if current.is_file():
        part = 1
        while (current.parent / f"metrics-part{part}.csv").exists():
            part += 1
        current.rename(current.parent / f"metrics-part{part}.csv")


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


def _callbacks(config: Config, monitor: str | None, history: Any, extra: Sequence[Any]) -> list[Any]:
    """The run's Lightning callbacks: RNG state, history, best / last / mid-epoch checkpoints,
    ``extra``, then the progress bar and early stopping when the config asks for them."""
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, TQDMProgressBar

    from ral.engine.callbacks import RNGState, RunCheckpoints
    from ral.engine.loggers import tracking_callbacks

    t, folder = config.train, checkpoint_dir(config)
    best = ModelCheckpoint(
        dirpath=str(folder),
        filename=Path(BEST).stem,
        monitor=monitor,
        mode="max",
        save_top_k=1,
        save_last=False,  # last.ckpt is RunCheckpoints': every epoch, not only a better one
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )
    callbacks = [RNGState(), history, best, RunCheckpoints(folder, t.checkpoint_every_n_steps), *extra]
    callbacks += tracking_callbacks(config)  # the config as hyper-parameters, the learning rate
    if _shows_bar(config):  # its numbers are read back from the device: only every log_every_n_steps steps
        callbacks.append(TQDMProgressBar(refresh_rate=t.log_every_n_steps))
    if t.early_stopping_patience is not None and monitor is not None:
        callbacks.append(EarlyStopping(monitor=monitor, mode="max", patience=t.early_stopping_patience))
    return callbacks


def _trainer(config: Config, out: Path, callbacks: list[Any], validate: bool) -> Any:
    """The Lightning ``Trainer`` of the config's ``train`` section (a bad combination raises ``ValueError``)."""
    import lightning as L
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    from ral.engine.callbacks import AtomicCheckpointIO
    from ral.engine.loggers import make_loggers

    t = config.train
    try:
        return L.Trainer(
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
            benchmark=t.cudnn_benchmark and not t.deterministic,
            callbacks=callbacks,
            logger=make_loggers(config),
            enable_progress_bar=_shows_bar(config),
            enable_model_summary=t.progress_bar,
            log_every_n_steps=t.log_every_n_steps,
            num_sanity_val_steps=0,  # keeps the RNG stream identical between fresh and resumed runs
            limit_val_batches=None if validate else 0,
            use_distributed_sampler=False,  # TableDataModule builds seed + epoch samplers itself
            plugins=[AtomicCheckpointIO()],
        )
    except (MisconfigurationException, RuntimeError, ValueError) as exc:
        raise ValueError(f"config section 'train' (accelerator / devices / strategy / precision): {exc}") from None


def _module_and_data(config: Config, run: Any, trainer: Any) -> tuple[Any, Any]:
    """The ``ClassifierModule`` (channels-last resolved for the trainer's device) and the data module."""
    from ral.engine.datamodule import TableDataModule
    from ral.engine.module import ClassifierModule

    t, d = config.train, config.dataset
    cuda = trainer.strategy.root_device.type == "cuda"
    channels_last = (cuda and t.precision in MIXED_PRECISION) if t.channels_last is None else t.channels_last
    run.meta["channels_last"] = channels_last
    module = ClassifierModule(
        run.model, run.loss, task=run.meta["task"], config=config, meta=run.meta, channels_last=channels_last
    )
    data = TableDataModule(
        run.train_images,
        run.val_images,
        batch_size=t.batch_size,
        eval_batch_size=t.eval_batch_size or t.batch_size,
        num_workers=d.num_workers,
        seed=config.seed,
        persistent_workers=d.persistent_workers,
        pin_memory=d.pin_memory,
        prefetch_factor=d.prefetch_factor,
    )
    return module, data


def _write_run_files(config: Config, run: Any, *, overwrite: bool, resumed: bool) -> None:
    """Before fit, in the main process: clear a replaced run, keep the log of a resumed one, and
    write config.yaml, pretrained_load.json and skipped_images.csv (stale copies are removed)."""
    import pandas as pd

    from ral.engine.checkpoint import remove_stale_temporaries
    from ral.report import write_csv, write_json, write_text

    out = Path(config.output_dir)
    if overwrite:
        _remove_run(out)
    remove_stale_temporaries(checkpoint_dir(config))
    if resumed:
        _keep_previous_log(out)
    write_text(dump_yaml(config), out / "config.yaml")
    if run.pretrained is not None:
        from ral.models import load_summary

        write_json(run.pretrained, out / PRETRAINED_LOAD)
        print(f"ral train: pretrained weights: {load_summary(run.pretrained)}")
    else:
        (out / PRETRAINED_LOAD).unlink(missing_ok=True)
    skipped = out / SKIPPED_IMAGES
    if run.skipped:
        write_csv(pd.DataFrame(run.skipped), skipped)
        print(f"ral train: {len(run.skipped)} image(s) that cannot be read were skipped; listed in {skipped}")
    else:
        skipped.unlink(missing_ok=True)


def _result(config: Config, run: Any, rows: list[dict[str, float]], monitor: str | None) -> dict[str, Any]:
    """What :func:`train` returns and writes to result.json (see there)."""
    folder = checkpoint_dir(config)
    best, score = _summary(rows, monitor)
    return {
        "output_dir": str(Path(config.output_dir)),
        "best_checkpoint": str(folder / BEST),
        "last_checkpoint": str(folder / LAST),
        "monitor": monitor,
        "best_epoch": int(best["epoch"]) if best else None,
        "best_score": score,
        "val_metrics": {k[4:]: v for k, v in best.items() if k.startswith("val_")},
        "epochs_completed": len(rows),
        "stopped_early": bool(len(rows) < config.train.epochs),
        "train_seconds_per_epoch": _mean(rows, "train_seconds"),
        "train_cpu_seconds_per_epoch": _mean(rows, "train_cpu_seconds"),
        "epoch_seconds": _mean(rows, "epoch_seconds"),
        "history": rows,
        "task": run.meta["task"],
        "loss": config.loss.name,
        "backbone": config.model.backbone,
        "num_classes": run.meta["num_classes"],
        "num_train_images": run.meta["num_train_images"],
        "skipped_images": len(run.skipped),
    }


@releases_run_locks
@hides_known_notices  # Lightning's litlogger tip, a torch deprecation, "logs will be deleted" (ral.engine.loggers)
def train(
    config: Config | Mapping[str, Any],
    *,
    resume: bool = False,
    overwrite: bool = False,
    callbacks: Sequence[Any] = (),
) -> dict[str, Any]:
    """Train a model as described by ``config``.

    ``resume`` continues the run in ``output_dir`` from its newest checkpoint (``last.ckpt``, or
    ``mid-epoch.ckpt`` when that is newer), reproducing the uninterrupted run; ``overwrite``
    starts it anew (the earlier run's checkpoints, logs and results are removed, nothing else).
    Without either, an ``output_dir`` holding a run is refused.

    Before anything is written: the output folder is checked to accept files, the whole config
    is validated, the tables are read and checked, a checkpoint to resume from is compared with
    the config (task, classes, backbone and options, loss), the images are prepared and the loss
    and model are built (bad values raise ``ValueError`` / ``FileNotFoundError`` naming the key).
    ``callbacks``: further Lightning callbacks (the throughput benchmark times the steps with one).

    Returns:
        ``{"output_dir", "best_checkpoint", "last_checkpoint", "monitor", "best_epoch",
        "best_score", "val_metrics" (of the best epoch, without the ``val_`` prefix),
        "epochs_completed", "stopped_early", "train_seconds_per_epoch" (wall clock, training loop
        only), "train_cpu_seconds_per_epoch" (CPU time of this process, training loop only),
        "epoch_seconds" (wall clock, training + validation), "history" (one row per epoch), "task", "loss",
        "backbone", "num_classes", "num_train_images", "skipped_images"}``, also written to
        ``result.json``, plus ``"is_global_zero"`` (False in the other processes of a distributed run).

    Raises:
        ValueError: bad config, ``output_dir`` holds a run and neither ``resume`` nor
            ``overwrite`` is given (or both are), or the checkpoint does not match the config.
        OSError: ``output_dir`` cannot be written (the error names it), or another process
            trains into it (EBUSY, naming its pid; see :mod:`ral.engine.runlock`).
        TrainingStopped: SIGTERM / SIGINT; ``mid-epoch.ckpt`` was saved and one line printed
            (a ``SystemExit`` with status 128 + the signal, see :mod:`ral.engine.signals`).
    """
    import lightning as L

    from ral.engine.callbacks import EpochHistory
    from ral.engine.module import monitor_metric
    from ral.engine.signals import StopOnSignal, TrainingStopped, report_stop, stop_on_signals
    from ral.report import write_json
    from ral.report.files import check_writable

    die_with_launcher()  # a rank started by Lightning / torchrun is not left behind by a killed launcher
    if resume and overwrite:
        raise ValueError("give --resume (continue the run) or --overwrite (start it anew), not both")
    if not isinstance(config, Config):
        config = config_from_dict(dict(config))
    config = absolute_paths(validate_config(config))
    out = check_writable(config.output_dir, folder=True)
    lock_run_folder(out, "ral train")  # before anything is read or written; released when train ends
    ckpt_path, checkpoint = _resume_from(config, resume, overwrite)
    if checkpoint is not None:
        _check_epochs_left(config, ckpt_path, checkpoint)
    L.seed_everything(config.seed, workers=True, verbose=False)
    run = prepare_run(config, checkpoint, ckpt_path or "checkpoint")
    del checkpoint  # Lightning reads it again (memory-mapped here, so little was read)
    if resume:
        _warn_changed_config(config)

    monitor = monitor_metric(run.meta["task"]) if run.val is not None else None
    history = EpochHistory(verbose=not _shows_bar(config))
    stopper = StopOnSignal(checkpoint_dir(config))
    extra = [*callbacks, stopper]
    trainer = _trainer(config, out, _callbacks(config, monitor, history, extra), validate=run.val is not None)
    module, data = _module_and_data(config, run, trainer)
    if trainer.is_global_zero:  # before fit: the CSV logger opens its file lazily
        _write_run_files(config, run, overwrite=overwrite, resumed=ckpt_path is not None)
    try:
        with stop_on_signals(stopper):
            trainer.fit(module, datamodule=data, ckpt_path=ckpt_path, weights_only=True)
    except TrainingStopped as stopped:
        if trainer.is_global_zero:
            newest = newest_checkpoint(checkpoint_dir(config))
            report_stop(stopped, out, newest[0] if newest else None)
        raise

    result = _result(config, run, history.rows, monitor)
    if trainer.is_global_zero:
        write_json(result, out / "result.json")
    return result | {"is_global_zero": trainer.is_global_zero}
