"""One benchmark run = one ``ral.engine.train`` + ``ral.engine.evaluate`` at a fixed budget.

The loss comparison and the sensitivity grid both call :func:`train_and_evaluate`; what
differs between their runs is only the loss (name + parameters) and the seed, so every run
of a benchmark uses the same data, backbone, optimiser, schedule and number of epochs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from filelock import FileLock

from ral.data.errors import TableError
from ral.data.images import MIN_IMAGE_SIZE
from ral.data.options import TableTask
from ral.data.simulate import SimulatedSet
from ral.data.table import LabelTable, Task
from ral.engine.config import Config
from ral.engine.configfile import config_from_dict
from ral.metrics import metric_names
from ral.metrics.names import TASKS


@dataclass(frozen=True)
class Budget:
    """Compute budget of every run of a benchmark (the same for every loss and seed).

    Attributes:
        name: label written into the results.
        n_train, n_val, n_test: simulated images per split (``--simulate`` only).
        image_size: side of the (square, grayscale) network input.
        epochs, batch_size, lr: training schedule (AdamW, cosine decay, no warm-up).
        backbone: ``ral.models`` backbone name.
        seeds: default number of seeds of ``ral bench losses``.
    """

    name: str
    n_train: int
    n_val: int
    n_test: int
    image_size: int
    epochs: int
    batch_size: int
    lr: float = 3e-3
    backbone: str = "tiny"
    seeds: int = 3


#: Named budgets. "quick": a smoke test (``--quick`` of each bench in about a minute on 2 cores);
#: "default": the loss comparison (5 seeds); "grid": one sensitivity grid point (5 seeds per point);
#: "long": the demo-sized set. (What the full evidence of docs/results.md costs at these budgets:
#: benchmarks/evidence_plan.py.)
BUDGETS: dict[str, Budget] = {
    "quick": Budget("quick", n_train=300, n_val=300, n_test=400, image_size=32, epochs=1, batch_size=64, seeds=1),
    "grid": Budget("grid", n_train=4000, n_val=1000, n_test=3000, image_size=48, epochs=6, batch_size=64, seeds=5),
    "default": Budget(
        "default", n_train=6000, n_val=1000, n_test=3000, image_size=48, epochs=10, batch_size=64, seeds=5
    ),
    "long": Budget("long", n_train=24000, n_val=4000, n_test=8000, image_size=64, epochs=20, batch_size=64, seeds=3),
}


def get_budget(name: str) -> Budget:
    """The budget called ``name``; ``ValueError`` listing the names otherwise."""
    if name not in BUDGETS:
        raise ValueError(f"budget must be one of {sorted(BUDGETS)}, got {name!r}")
    return BUDGETS[name]


def budget_with(budget: Budget, **overrides: Any) -> Budget:
    """``budget`` with the non-None ``overrides`` applied; the name records them
    (``default+epochs=10``).

    Raises:
        ValueError: an integer override below 1 (below ``MIN_IMAGE_SIZE`` for ``image_size``).
    """
    changes = {key: value for key, value in overrides.items() if value is not None}
    for key, value in changes.items():
        if key == "backbone":
            continue
        low = MIN_IMAGE_SIZE if key == "image_size" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"--{key.replace('_', '-')} must be an integer >= {low}, got {value!r}")
    if not changes:
        return budget
    name = budget.name + "".join(f"+{key}={value}" for key, value in sorted(changes.items()))
    return replace(budget, name=name, **changes)


@dataclass(frozen=True)
class LossSpec:
    """A loss as benchmarked: row label, registry name and constructor parameters."""

    label: str
    loss: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "loss": self.loss, "params": dict(self.params)}


@dataclass(frozen=True)
class BenchData:
    """The three tables every run of a benchmark trains, selects and evaluates on.

    Attributes:
        task: the tables' task, "multilabel" or "single" (what the engine trains).
        simulated: which simulated set the tables are (``ral.data.simulate.TASKS``: "multilabel",
            "single", "fundus"), None for a user's tables.
        missing_rate: the simulator's share of training positives hidden (simulated multi-label
            sets), else None.
        read_as: the ``dataset.task`` the tables are read with: "auto" (the tables decide), or
            "single" for one-hot tables that are single-label (``--task single``).
    """

    train: str
    val: str
    test: str
    task: Task
    root: str | None = None
    format: str | None = None
    description: str = ""
    simulated: str | None = None
    missing_rate: float | None = None
    read_as: TableTask = "auto"

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"BenchData.task must be one of {TASKS}, got {self.task!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _task_of(path: str | os.PathLike, *, format: str | None, root: str | None, read_as: TableTask = "auto") -> str:
    from ral.data import load_table

    return load_table(path, format=format, root=root, task=read_as, check_images="none").task


#: Task of the engine for each simulated set (the APTOS-like "fundus" grades are single-label).
SIMULATED_TASK: dict[SimulatedSet, Task] = {"multilabel": "multilabel", "single": "single", "fundus": "single"}


def simulated_data(
    out_dir: str | os.PathLike,
    budget: Budget,
    *,
    task: SimulatedSet = "multilabel",
    seed: int = 0,
    missing_rate: float | None = None,
) -> BenchData:
    """Simulate the embedded dataset at the budget's sizes into ``out_dir``, or reuse it when the
    folder holds the same simulation (same settings and generator code:
    :func:`ral.data.simulate.ensure_simulated`).

    Args:
        task: the simulated set, one of ``ral.data.simulate.TASKS`` ("fundus" trains as single-label).
        missing_rate: multi-label only: the simulator's share of training positives hidden
            (None: the simulator's default).

    The description names the simulation key, so a benchmark folder whose runs were made on
    another simulation is refused by :class:`~ral.bench.runner.RunStore` instead of mixed in.

    Raises:
        ValueError: unknown task, or a missing rate for a single-label set.
    """
    from ral.data.simulate import ensure_simulated, simulation_key

    if task not in SIMULATED_TASK:
        raise ValueError(f"--task must be one of {sorted(SIMULATED_TASK)}, got {task!r}")
    if missing_rate is not None and task != "multilabel":
        raise ValueError(f"--missing-rate applies to the multilabel simulated set only, got task {task!r}")
    folder = Path(out_dir)
    size = budget.image_size  # simulated at the training resolution: no resizing at load time
    settings = dict(seed=seed, size=size, n_train=budget.n_train, n_val=budget.n_val, n_test=budget.n_test, task=task)
    if missing_rate is not None:
        settings["missing_rate"] = float(missing_rate)
    ensure_simulated(folder, **settings)
    missing = f", {missing_rate:g} of training positives hidden" if missing_rate is not None else ""
    return BenchData(
        train=str((folder / "train.csv").resolve()),
        val=str((folder / "val.csv").resolve()),
        test=str((folder / "test.csv").resolve()),
        task=SIMULATED_TASK[task],
        description=(
            f"simulated {task} set (ral.data.simulate, seed {seed}, key "
            f"{simulation_key(**settings)[:12]}): {budget.n_train} train / {budget.n_val} val / "
            f"{budget.n_test} test images, {size} px{missing}"
        ),
        simulated=task,
        missing_rate=None if missing_rate is None else float(missing_rate),
    )


def user_data(
    data: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    val_data: str | os.PathLike | None = None,
    test_data: str | os.PathLike | None = None,
    format: str | None = None,
    root: str | os.PathLike | None = None,
    split_seed: int = 0,
    read_as: TableTask = "auto",
) -> BenchData:
    """Benchmark data from a user's table(s).

    With ``val_data`` and ``test_data`` the three tables are used as given. With only ``data``
    (a CSV in any format of ``ral.data``), its LabelTable is split by patient 80 / 10 / 10
    (``ral.data.patient_split``, seed ``split_seed``) and each split is written to ``out_dir``
    in the generic layout (:func:`write_generic_table`: one row per image, paths relative to
    the table's image root, study ids and views kept), whatever the source's layout (VinDr-CXR's
    one row per finding, MIMIC-CXR-JPG's labels per study joined to its metadata file).
    ``read_as="single"`` reads one-hot tables as single-label (``dataset.task: single``).

    Raises:
        FileNotFoundError: a table is missing.
        ValueError: only one of ``val_data`` / ``test_data`` given, or a folder table to split.
    """
    from ral.data import load_table
    from ral.data.split import patient_split

    for name, value in (("data", data), ("val_data", val_data), ("test_data", test_data)):
        if value is not None and not Path(value).exists():
            raise FileNotFoundError(f"{name}: label table not found: {value}")
    if (val_data is None) != (test_data is None):
        raise ValueError(
            f"give both --val-data and --test-data or neither, got val_data={val_data!r}, test_data={test_data!r}"
        )
    root_str = str(Path(root).resolve()) if root is not None else None
    if val_data is not None:
        paths = [str(Path(p).resolve()) for p in (data, val_data, test_data)]
        return BenchData(
            *paths,
            task=_task_of(paths[0], format=format, root=root_str, read_as=read_as),
            root=root_str,
            format=format,
            read_as=read_as,
            description=f"user tables {data}, {val_data}, {test_data}",
        )
    if Path(data).is_dir():
        raise ValueError(
            f"data: {data} is a folder table; split it yourself and pass --val-data and "
            "--test-data (only a CSV table is split automatically)"
        )
    table = load_table(data, format=format, root=root, task=read_as)
    out = Path(out_dir)
    written = {
        split: str(write_generic_table(part, out / f"{split}.csv").resolve())
        for split, part in patient_split(table, (0.8, 0.1, 0.1), seed=split_seed).items()
    }
    return BenchData(
        written["train"],
        written["val"],
        written["test"],
        task=table.task,
        root=str(Path(table.root).resolve()),
        format="generic",
        description=f"user table {data} ({table.format}) split by patient 80/10/10 (seed {split_seed})",
    )


def write_generic_table(table: LabelTable, path: str | os.PathLike) -> Path:
    """Write ``table`` as a generic CSV that ``ral.data.load_table(path, root=table.root)`` reads back.

    Columns: ``path`` (as in the table: relative to its root, or absolute), ``subject_id``,
    ``study_id`` / ``view`` when the table has them, then one 0 / 1 column per class with NaN
    (uncertain) as an empty cell (multi-label), or a ``label`` column of class names (single-label).

    Raises:
        ValueError: a class name that is also a column name of the generic layout.
    """
    from ral.data.readers.plain import GENERIC_META
    from ral.report import write_csv

    clashing = [name for name in table.class_names if name in (*GENERIC_META, "label")]
    if clashing:
        raise ValueError(f"{table.source}: class name(s) {clashing} clash with the generic layout's columns")
    columns: dict[str, Any] = {"path": table.paths, "subject_id": table.subject_ids}
    if table.study_ids is not None:
        columns["study_id"] = table.study_ids
    if table.views is not None:
        columns["view"] = table.views
    frame = pd.DataFrame(columns)
    if table.task == "single":
        frame["label"] = [table.class_names[k] for k in table.targets_single()]
    else:
        labels = pd.DataFrame(table.labels, columns=table.class_names).astype("Int64")
        frame = pd.concat([frame, labels], axis=1)
    return write_csv(frame, path)


def prepare_data(
    out_dir: str | os.PathLike,
    budget: Budget,
    *,
    data: str | os.PathLike | None = None,
    simulate: bool = False,
    task: SimulatedSet | None = None,
    val_data: str | os.PathLike | None = None,
    test_data: str | os.PathLike | None = None,
    format: str | None = None,
    root: str | os.PathLike | None = None,
    missing_rate: float | None = None,
) -> BenchData:
    """The benchmark's tables: simulated into ``<out_dir>/data`` or the user's (split if needed).

    With ``simulate``, ``task`` names the simulated set ("multilabel", "single" or "fundus", the
    APTOS-like grades: single-label); with ``data`` it is checked against the table's task. The
    data is prepared under a lock (``<out_dir>/locks/data.lock``), so shards starting together
    simulate or split it once. ``missing_rate`` (simulated multi-label set only) goes to the
    simulator; that set lives in ``<out_dir>/data/missing-<rate>``.

    Raises:
        ValueError: neither or both of ``data`` / ``simulate``; ``task`` contradicting the data.
    """
    if (data is None) == (not simulate):
        raise ValueError("give exactly one of --data TABLE or --simulate")
    if task is not None and task not in SIMULATED_TASK:
        raise ValueError(f"--task must be one of {sorted(SIMULATED_TASK)}, got {task!r}")
    if not simulate and task == "fundus":
        raise ValueError(
            "--task fundus names the simulated APTOS-like set: use it with --simulate (a table of yours is 'single')"
        )
    if not simulate and missing_rate is not None:
        raise ValueError("--missing-rate applies to the simulated set (--simulate) only")
    folder = Path(out_dir) / "data"
    if missing_rate is not None:
        folder = folder / f"missing-{missing_rate:g}"
    with FileLock(Path(out_dir) / "locks" / "data.lock"):
        if simulate:
            return simulated_data(folder, budget, task=task or "multilabel", missing_rate=missing_rate)
        read_as = "single" if task == "single" else "auto"  # a one-hot table is single-label only when asked
        try:
            tables = user_data(
                data, folder, val_data=val_data, test_data=test_data, format=format, root=root, read_as=read_as
            )
        except TableError as exc:
            if read_as != "single":
                raise
            raise TableError(f"--task 'single' but {data} cannot be read as a single-label table: {exc}") from None
    if task is not None and task != tables.task:
        raise ValueError(f"--task {task!r} but {data} is a {tables.task} table")
    return tables


def known_settings(benchmark: str, budget: Budget, data_args: dict[str, Any]) -> dict[str, Any]:
    """The settings of a benchmark known before its data is prepared (see
    :func:`ral.bench.runner.open_bench_folder`): its name, the budget, the simulated set (``fundus``
    is a single-label task: the set's name, not the task, tells the sets apart)."""
    settings: dict[str, Any] = {"benchmark": benchmark, "budget": budget.__dict__}
    if data_args.get("simulate"):
        settings["data"] = {"simulated": data_args.get("task") or "multilabel"}
    return settings


def engine_config(
    data: BenchData, spec: LossSpec, seed: int, budget: Budget, run_dir: Path, *, cache_dir: str | None = None
) -> Config:
    """The ``ral.engine.train`` config of one run (nothing but loss and seed varies).

    Raises:
        ValueError: a loss name or budget value the config rejects (naming the key).
    """
    return config_from_dict(
        {
            "seed": int(seed),
            "output_dir": str(run_dir / "train"),
            "dataset": {
                "train": data.train,
                "val": data.val,
                "test": data.test,
                "format": data.format,
                "root": data.root,
                "task": data.read_as,
                "image_size": budget.image_size,
                "cache_dir": cache_dir,
            },
            "model": {"backbone": budget.backbone},
            "loss": {"name": spec.loss, "params": dict(spec.params)},
            "optimizer": {"name": "adamw", "lr": budget.lr, "weight_decay": 1e-4},
            "schedule": {"name": "cosine", "warmup_epochs": 0},
            "train": {
                "epochs": budget.epochs,
                "batch_size": budget.batch_size,
                "progress_bar": False,
                "deterministic": False,
                "log_every_n_steps": 50,
            },
        }
    )


@contextlib.contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Hide Lightning's per-run banners and its small-epoch logging warning (dozens of runs)."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(log_every_n_steps|LeafSpec|litlogger).*")
        for logger in loggers:
            logger.setLevel(logging.WARNING)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)


def train_and_evaluate(
    data: BenchData,
    spec: LossSpec,
    seed: int,
    budget: Budget,
    run_dir: str | os.PathLike,
    *,
    cache_dir: str | None = None,
) -> dict[str, Any]:
    """Train with ``ral.engine.train``, evaluate the best-on-val checkpoint on the test table.

    Returns:
        The test metrics (``ral.metrics.metric_names(task)``), ``val_score`` (the
        selection metric of the best epoch), ``best_epoch``, ``epochs``,
        ``seconds_per_epoch`` (training loop), ``epoch_seconds`` (training + validation),
        ``run_seconds`` (wall time of the whole run, evaluation included), ``load_average`` (the
        system's 1-minute load when the run ended: how shared the machine was), and ``per_class``:
        ``{"class": [...], "count": [...], "group": [...], "score": [...]}`` with the per-class
        test AP (multi-label) or recall = per-class accuracy (single-label).
    """
    from ral.engine import evaluate, train

    run_dir = Path(run_dir)
    start = time.perf_counter()
    with _quiet_lightning():
        fit = train(engine_config(data, spec, seed, budget, run_dir, cache_dir=cache_dir))
        report = evaluate(
            fit["best_checkpoint"],
            data.test,
            val_data=data.val,
            out_dir=run_dir / "eval",
            format=data.format,
            root=data.root,
            n_boot=0,
            device="cpu",
        )
    per_class = pd.read_csv(run_dir / "eval" / "per_class.csv")
    metrics = metric_names(fit["task"])
    score_column = "AP" if fit["task"] == "multilabel" else "recall"
    row: dict[str, Any] = {name: float(report[name]) for name in metrics}
    row.update(
        {
            "val_score": float(fit["best_score"]),
            "best_epoch": fit["best_epoch"],
            "epochs": int(fit["epochs_completed"]),
            "seconds_per_epoch": float(fit["train_seconds_per_epoch"]),
            "epoch_seconds": float(fit["epoch_seconds"]),
            "run_seconds": time.perf_counter() - start,
            "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "per_class": {
                "class": per_class["class"].astype(str).tolist(),
                "count": per_class["count"].astype(int).tolist(),
                "group": per_class["group"].astype(str).tolist(),
                "score": [float(v) if np.isfinite(v) else None for v in per_class[score_column]],
            },
        }
    )
    # keep best.ckpt (re-evaluation); last.ckpt only serves a resume, which a finished run never needs
    (run_dir / "train" / "checkpoints" / "last.ckpt").unlink(missing_ok=True)
    return row
