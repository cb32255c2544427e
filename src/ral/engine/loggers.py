"""Experiment tracking of ``ral train`` (``train.logger``): Lightning's loggers, the learning rate,
the config as hyper-parameters, and the third-party notices a run hides.

What each logger writes (every one gets the same values: the flattened config as
hyper-parameters, ``train_loss`` per logged step, ``lr/decay`` and ``lr/no_decay`` (Lightning's
``LearningRateMonitor``: the rate of the weights and of the norms / biases), and per epoch
``val_mAP`` ... ``val_tail_mAP``, ``val_AP/<class>`` (``val_recall/<class>`` for single-label
tables), the epoch timings and ``train_loss_epoch``)::

    csv          <output_dir>/logs/metrics.csv, logs/hparams.yaml        always written
    tensorboard  <output_dir>/tensorboard/ (events, hparams.yaml)        tensorboard --logdir <output_dir>
    mlflow       <output_dir>/mlflow/mlflow.db (SQLite store), artifacts in <output_dir>/mlflow/artifacts;
                 experiment "ral", run named after the output folder      mlflow ui --backend-store-uri
                 (MLFLOW_TRACKING_URI, when set, names another store)       sqlite:///<output_dir>/mlflow/mlflow.db
    wandb        <output_dir>/wandb/ offline (WANDB_MODE=online logs to   wandb sync <output_dir>/wandb/offline-run-*
                 the W&B server), project "ral"

Each ``ral train`` (a ``--resume`` too) is one MLflow / W&B run; the resumed part of a run is a
second run with the same name, as the CSV log keeps the earlier part in ``logs/metrics-part1.csv``.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import lightning as L

from ral.engine.config import Config

#: Import names that make each logger available, and how to install them.
_NEEDS: dict[str, tuple[tuple[str, ...], str]] = {
    "tensorboard": (("tensorboard", "tensorboardX"), "pip install 'ral[tensorboard]'"),
    "mlflow": (("mlflow",), "pip install 'ral[mlflow]'"),
    "wandb": (("wandb",), "pip install wandb"),
}
#: The folder of each logger in the output folder (``ral train --overwrite`` removes them, except the
#: MLflow store: it keeps every run, as an MLflow store is meant to).
FOLDERS = {"csv": "logs", "tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}
MLFLOW_EXPERIMENT = "ral"
OUTPUT_DIR_TAG = "ral.output_dir"  # MLflow tag of a run: the training's output folder


def mlflow_uri(output_dir: str | os.PathLike) -> str:
    """The MLflow store of a run: ``MLFLOW_TRACKING_URI`` when set, else ``<output_dir>/mlflow/mlflow.db``
    (MLflow 3 refuses its file store, "maintenance mode"; SQLite is its local store)."""
    folder = Path(output_dir).resolve() / FOLDERS["mlflow"]
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{folder / 'mlflow.db'}"


def check_tracker(name: str) -> str:
    """``name`` if its package is installed, else ``ValueError`` saying how to install it."""
    modules, install = _NEEDS.get(name, ((), ""))
    if modules and not any(importlib.util.find_spec(module) for module in modules):
        raise ValueError(f"the {name} logger needs the {modules[0]} package: {install}")
    return name


def flat_config(config: Config) -> dict[str, Any]:
    """The config as one level of dotted keys (``optimizer.lr``, ``loss.params.gamma_neg``) with
    scalar values (lists and empty mappings as their YAML text): the hyper-parameters every
    logger records."""
    from ral.engine.config import yaml_text

    def flatten(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
        if isinstance(value, Mapping) and value:
            for key, item in value.items():
                yield from flatten(item, f"{prefix}.{key}" if prefix else str(key))
        elif isinstance(value, (Mapping, list, tuple)):
            yield prefix, yaml_text(value)
        else:
            yield prefix, value

    return dict(flatten(config.to_dict(), ""))


def make_loggers(config: Config) -> list[Any]:
    """The Lightning loggers of ``config.train.logger`` (CSV always first), writing into ``output_dir``."""
    from lightning.pytorch.loggers import CSVLogger

    out = Path(config.output_dir)
    loggers: list[Any] = [CSVLogger(save_dir=str(out), name=FOLDERS["csv"], version="")]
    for name in dict.fromkeys(config.train.logger):
        if name == "tensorboard":
            from lightning.pytorch.loggers import TensorBoardLogger

            # no hp_metric: it would log a -1 at step 0 beside the real metrics
            loggers.append(
                TensorBoardLogger(save_dir=str(out), name=FOLDERS[name], version="", default_hp_metric=False)
            )
        elif name == "mlflow":
            from lightning.pytorch.loggers import MLFlowLogger
            from lightning.pytorch.utilities.rank_zero import rank_zero_only

            # rank 0 logs alone: the other processes of a distributed run would only open (and race
            # to create) the SQLite store
            if getattr(rank_zero_only, "rank", 0) != 0:
                continue
            # MLflow 3 refuses its file store ("maintenance mode"); SQLite is its local store
            folder = (out / FOLDERS[name]).resolve()
            folder.mkdir(parents=True, exist_ok=True)  # the client opens (creates) the database right away
            loggers.append(
                MLFlowLogger(
                    experiment_name=MLFLOW_EXPERIMENT,
                    run_name=out.name,
                    tracking_uri=mlflow_uri(out),
                    tags={OUTPUT_DIR_TAG: str(out.resolve())},
                    artifact_location=(folder / "artifacts").as_uri(),
                )
            )
        elif name == "wandb":
            from lightning.pytorch.loggers import WandbLogger

            online = os.environ.get("WANDB_MODE") == "online"
            loggers.append(WandbLogger(name=out.name, save_dir=str(out), project="ral", offline=not online))
    return loggers


def tracking_callbacks(config: Config) -> list[Any]:
    """Callbacks every run's loggers need: the config as hyper-parameters (logged when fitting
    starts, after ``--overwrite`` cleared the folder) and Lightning's ``LearningRateMonitor``."""
    from lightning.pytorch.callbacks import LearningRateMonitor

    return [LogConfig(config), LearningRateMonitor(logging_interval="step")]


class LogConfig(L.Callback):
    """Log :func:`flat_config` to every logger of the trainer when fitting starts (Lightning itself
    logs the module's ``hparams``, which ``ClassifierModule`` leaves empty: the config is stored
    in checkpoints under ``"ral"``), and end a W&B run with its training (Lightning leaves it open
    until the process exits: a second training in the same process would log into it)."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        params = flat_config(self.config)
        for logger in trainer.loggers:
            logger.log_hyperparams(params)

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        from lightning.pytorch.loggers import WandbLogger

        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger) and trainer.is_global_zero:
                logger.experiment.finish()


# The notices a ``ral train`` hides: (logger, compiled pattern) for log records, (category,
# pattern, module) for warnings. Each is harmless for a ral run and said once per run otherwise.
_HIDDEN_LOGS = (
    # Lightning advertises its cloud logger at every Trainer
    ("lightning.pytorch.utilities.rank_zero", re.compile(r"💡 Tip: For seamless cloud logging")),
    # the experiment "ral" of a new MLflow store is created, not missing
    ("lightning.pytorch.loggers.mlflow", re.compile(r"Experiment with name \S+ not found\. Creating it\.")),
    ("mlflow.store.db.utils", re.compile(r"(Creating initial MLflow database tables|Updating database tables)")),
    ("alembic.runtime.migration", re.compile(r"(Context impl SQLiteImpl|Will assume non-transactional DDL)")),
)
_HIDDEN_WARNINGS = (
    # torch deprecated LeafSpec; Lightning's combined loader still builds one (not ral's code)
    (FutureWarning, r"`isinstance\(treespec, LeafSpec\)` is deprecated", r"lightning\.pytorch\.utilities\._pytree"),
    # ral keeps the earlier part of a resumed run's log itself (logs/metrics-part1.csv), and
    # manages its checkpoint folder (resume / overwrite): nothing there is deleted by surprise
    (UserWarning, r"Experiment logs directory .* exists and is not empty", r"lightning\.fabric\.loggers\.csv_logs"),
    (
        UserWarning,
        r"Checkpoint directory .* exists and is not empty",
        r"lightning\.pytorch\.callbacks\.model_checkpoint",
    ),
    # SQLAlchemy 2.1 deprecates a loader strategy MLflow's store still uses
    (Warning, r"The ``noload`` loader strategy is deprecated", r"mlflow\.store\.tracking\.sqlalchemy_store"),
)


class _DropMessages(logging.Filter):
    def __init__(self, pattern: re.Pattern[str]) -> None:
        super().__init__()
        self.pattern = pattern

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.pattern.match(record.getMessage())


@contextmanager
def known_notices_hidden() -> Iterator[None]:
    """Inside this block the harmless third-party notices listed above are not shown; every other
    warning and log record is (filters on their exact messages, removed when the block ends)."""
    filters = [(logging.getLogger(name), _DropMessages(pattern)) for name, pattern in _HIDDEN_LOGS]
    for logger, drop in filters:
        logger.addFilter(drop)
    try:
        with warnings.catch_warnings():
            for category, message, module in _HIDDEN_WARNINGS:
                warnings.filterwarnings("ignore", message=message, category=category, module=module)
            yield
    finally:
        for logger, drop in filters:
            logger.removeFilter(drop)


F = TypeVar("F", bound=Callable[..., Any])


def hides_known_notices(func: F) -> F:
    """Run ``func`` inside :func:`known_notices_hidden`."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with known_notices_hidden():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def log_evaluation(checkpoint: str | os.PathLike, config: Config, name: str, metrics: Mapping[str, Any]) -> list[str]:
    """Add an evaluation's headline metrics to the trackers of the run that wrote ``checkpoint``
    (``<run>/checkpoints/*.ckpt``): ``<name>_mAP`` ... (``test_mAP`` for the default folder of the
    test table), at the checkpoint's step, in a new events file of ``<run>/tensorboard`` and in the
    newest MLflow run of that folder. The CSV log has ``metrics.json`` beside it instead; an offline
    W&B run is not reopened.

    Args:
        config: the run's config (its ``train.logger``). name: prefix of the metric names.
        metrics: the evaluation's ``metrics.json`` (``task`` and the headline metrics).

    Returns:
        The trackers written to.
    """
    from ral.engine.checkpoint import load_checkpoint
    from ral.metrics import metric_names

    checkpoint = Path(checkpoint)
    run, trackers = checkpoint.parent.parent, set(config.train.logger) & {"tensorboard", "mlflow"}
    if checkpoint.parent.name != "checkpoints" or not trackers:
        return []
    values = {f"{name}_{key}": float(metrics[key]) for key in metric_names(metrics["task"]) if key in metrics}
    step = int(load_checkpoint(checkpoint, mmap=True).get("global_step", 0))
    written = []
    if "tensorboard" in trackers and (run / FOLDERS["tensorboard"]).is_dir():
        from lightning.pytorch.loggers import TensorBoardLogger

        board = TensorBoardLogger(save_dir=str(run), name=FOLDERS["tensorboard"], version="", default_hp_metric=False)
        board.log_metrics(values, step)
        board.finalize("success")
        written.append("tensorboard")
    local_store = (run / FOLDERS["mlflow"] / "mlflow.db").is_file()
    if "mlflow" in trackers and (local_store or os.environ.get("MLFLOW_TRACKING_URI")):
        with known_notices_hidden():
            written += _log_mlflow(mlflow_uri(run), str(Path(config.output_dir).resolve()), values, step)
    return written


def _log_mlflow(uri: str, output_dir: str, values: Mapping[str, float], step: int) -> list[str]:
    """Log ``values`` to the newest MLflow run tagged with ``output_dir`` (none: nothing)."""
    import time

    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(MLFLOW_EXPERIMENT)
    if experiment is None:
        return []
    quoted = output_dir.replace("'", "\\'")
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`{OUTPUT_DIR_TAG}` = '{quoted}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        return []
    now = int(time.time() * 1000)
    metrics = [Metric(key, value, now, step) for key, value in values.items()]
    client.log_batch(runs[0].info.run_id, metrics=metrics)
    return ["mlflow"]
