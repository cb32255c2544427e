"""``ral tune``: search a loss's hyper-parameters with Optuna, each trial a real ``ral train``.

One call is one worker: it opens (or creates) the study in the storage, runs trials until the
study holds ``trials`` finished ones (by any worker), then writes the study's outputs into ``out``.
Re-running the same command resumes the study; more workers (processes, machines) on the same
``--storage`` share it. Output folder::

    <out>/study.db            the default storage (SQLite)
    <out>/trials/NNNN/        trial NNNN's ral train run (config.yaml, checkpoints, logs, result.json)
    <out>/best.yaml           the config of the best trial (`ral train --config best.yaml` trains it)
    <out>/trials.csv          one row per trial (state, value, parameters, validation metrics)
    <out>/summary.md          the best trial, the gain over the starting point, importances, top trials
    <out>/history.png, importances.png, slice.png, contour.png   Optuna's matplotlib plots
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ral.engine.config import Config
from ral.tune.space import grid, sample, search_space, starting_point, stored_params, trial_config
from ral.tune.study import (
    check_storage,
    finished,
    make_pruner,
    make_sampler,
    open_storage,
    open_study,
    shown_url,
    stop_at,
)

if TYPE_CHECKING:
    import optuna

Sampler = Literal["tpe", "random", "grid"]
Pruner = Literal["median", "hyperband", "none"]


def _check_config(config: Config) -> str:
    """The validation metric the study maximises (``val_mAP`` / ``val_balanced_accuracy``).

    Raises:
        ValueError: no validation table, or a run over several devices or nodes.
    """
    if config.dataset.val is None:
        raise ValueError("dataset.val must be given: ral tune maximises the validation metric (never the test's)")
    t = config.train
    if t.devices not in (1, [0]) or t.num_nodes != 1:
        raise ValueError(
            f"train.devices must be 1 (ral tune trains each trial in its own process; start more workers "
            f"instead), got devices={t.devices!r}, num_nodes={t.num_nodes}"
        )
    from ral.engine.module import monitor_metric  # Lightning: only once the input is known to be good
    from ral.losses import loss_task

    return monitor_metric(loss_task(config.loss.name))


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna's per-trial log lines off (ral tune prints its own) and its experimental warnings hidden;
    restored afterwards."""
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            yield
        finally:
            optuna.logging.set_verbosity(verbosity)


def _objective(config: Config, space: dict[str, Any], out: Path, monitor: str, prune: bool) -> Any:
    """The study's objective: train the trial's config into ``out/trials/NNNN``; its best validation
    score (``train``'s ``best_score``)."""
    from ral.bench.experiment import _quiet_lightning
    from ral.engine import train
    from ral.engine.training import holds_run

    def objective(trial: optuna.Trial) -> float:
        values = sample(trial, space)
        folder = out / "trials" / f"{trial.number:04d}"
        if holds_run(folder):  # another study's trial (a study is numbered from 0): never overwritten
            raise ValueError(f"{folder} holds a run of another study; give ral tune another --out")
        trial.set_user_attr("output_dir", str(folder))
        callbacks = []
        if prune:
            # optuna-integration's callback imports `lightning.pytorch`, the package ral trains with
            from optuna_integration import PyTorchLightningPruningCallback

            callbacks.append(PyTorchLightningPruningCallback(trial, monitor=monitor))
        with _quiet_lightning():
            result = train(trial_config(config, values, str(folder)), callbacks=callbacks)
        for key, value in result["val_metrics"].items():
            if isinstance(value, float) and math.isfinite(value):
                trial.set_user_attr(f"val_{key}", value)
        trial.set_user_attr("best_epoch", result["best_epoch"])
        trial.set_user_attr("seconds_per_epoch", result["train_seconds_per_epoch"])
        return float(result["best_score"])

    return objective


def _progress(study: optuna.Study, trials: int, metric: str, space: dict[str, Any]) -> tuple[Any, Any]:
    """A bar of the study's finished trials, by every worker (:func:`ral.progress.progress`: off when
    stderr is no terminal or with --quiet) and the callback that moves it and prints one line per trial."""
    from ral.progress import progress
    from ral.tune.report import shown

    bar = progress(total=trials, initial=min(finished(study), trials), unit="trial", desc="ral tune")

    def report(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        bar.n = min(finished(study), trials)
        bar.refresh()
        value = f"{metric} {trial.value:.4f}" if trial.value is not None else ""
        if trial.state.name != "COMPLETE":
            epochs = f" after epoch {len(trial.intermediate_values)}" if trial.intermediate_values else ""
            value = f"{trial.state.name.lower()}{epochs} {value}".rstrip()
        params = ", ".join(f"{name} {shown(v)}" for name, v in stored_params(trial.params, space).items())
        bar.write(f"trial {trial.number}: {value}  ({params})")

    return bar, report


def tune(
    config: Config,
    *,
    trials: int,
    out: str = "runs/tune",
    study: str | None = None,
    storage: str | None = None,
    sampler: Sampler = "tpe",
    pruner: Pruner = "median",
    sampler_seed: int | None = None,
    grid_points: int = 3,
    heartbeat: int = 60,
) -> dict[str, Any]:
    """Tune the loss's hyper-parameters of ``config`` (its ``tune.space``) on the validation metric.

    Args:
        config: the training config; each trial trains it with sampled loss options into
            ``out/trials/NNNN``. Its ``output_dir`` is not used.
        trials: the study's total of finished (complete or pruned) trials, over every worker;
            re-running with a larger number adds trials.
        out: output folder: trials, best.yaml, trials.csv, summary.md, plots (and the default storage).
        study: study name in the storage (default: ral-tune-<loss>).
        storage: database URL shared by workers (sqlite:///FILE, postgresql://USER@HOST/DB,
            mysql://...) or a journal file (*.log); default: sqlite:///<out>/study.db.
        sampler: tpe (default), random, or grid (grid_points values per range).
        pruner: stop poor trials after an epoch: median, hyperband or none.
        sampler_seed: the sampler's seed (default: random, so that workers draw different points).
        grid_points: values per range of the grid sampler.
        heartbeat: seconds between a running trial's heartbeats; a trial silent for twice that is
            marked failed and queued again by the next worker.

    Returns:
        ``{"study", "storage", "finished", "best"}``, where "best" holds the best trial's
        ``number``, ``value`` and ``params`` (None before any complete trial), plus the written files.

    Raises:
        ValueError: a bad config, search space or storage (one line naming it).
    """
    from ral.tune.report import write_outputs

    try:
        import optuna_integration  # noqa: F401 (Optuna and its Lightning pruning callback: the `tune` extra)
    except ImportError as exc:
        raise ValueError(f"ral tune needs Optuna: pip install 'ral[tune]' ({exc})") from None

    if trials < 1 or grid_points < 1 or heartbeat < 1:
        raise ValueError(
            f"--trials, --grid-points and --heartbeat must be >= 1, got {trials}, {grid_points}, {heartbeat}"
        )
    space = search_space(config)
    check_storage(storage)
    monitor = _check_config(config)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    url = storage or f"sqlite:///{(folder / 'study.db').resolve()}"
    name = study or f"ral-tune-{config.loss.name}"
    with _quiet_optuna():
        store = open_storage(url, heartbeat=heartbeat)
        chosen = make_sampler(sampler, seed=sampler_seed, grid=grid(space, grid_points))
        the_study, created = open_study(
            name, store, url, sampler=chosen, pruner=make_pruner(pruner, epochs=config.train.epochs)
        )
        if created:
            the_study.set_user_attr("loss", config.loss.name)
            the_study.set_user_attr("metric", monitor)
            point = starting_point(config, space)
            if sampler != "grid" and len(point) == len(space):  # the config's own values first: the summary's
                the_study.enqueue_trial(point, user_attrs={"starting_point": True})  # starting point
        elif the_study.user_attrs.get("loss", config.loss.name) != config.loss.name:
            raise ValueError(
                f"study {name!r} in {shown_url(url)} tunes loss {the_study.user_attrs['loss']!r}, not "
                f"{config.loss.name!r}; give another --study"
            )
        if finished(the_study) < trials:
            bar, report = _progress(the_study, trials, monitor, space)
            with bar:
                the_study.optimize(
                    _objective(config, space, folder, monitor, prune=pruner != "none"),
                    callbacks=[stop_at(trials), report],
                    gc_after_trial=True,
                )
        files = write_outputs(the_study, config, space, folder, url=url, metric=monitor, trials=trials)
    best = files.pop("best")
    return {"study": name, "storage": shown_url(url), "finished": finished(the_study), "best": best, **files}
