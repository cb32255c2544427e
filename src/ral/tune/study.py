"""Where a study lives and how workers share it: Optuna storages, heartbeats, the study total.

* Storage: a SQLAlchemy URL (``sqlite:///...``, ``postgresql://...``, ``mysql://...``) is an
  :class:`optuna.storages.RDBStorage` with heartbeats: a trial whose worker stopped beating (killed,
  machine lost) is marked failed by the next worker that starts a trial, and
  :class:`~optuna.storages.RetryHeartbeatStaleTrialCallback` queues it again with the same
  parameters. A file path ending in ``.log`` / ``.jsonl`` is Optuna's journal file
  (:class:`~optuna.storages.JournalStorage`; for shared file systems without a database server: it
  has no heartbeats, so a killed worker's trial stays ``RUNNING`` and is not retried).
* Workers started together: creating the tables and the study is retried when another worker won
  the race (the database's unique constraints reject the second insert), then the study is loaded.
* ``--trials N`` is the study's total of finished trials (``COMPLETE`` and ``PRUNED``), counted by
  :class:`optuna.study.MaxTrialsCallback` after each trial: every worker stops once the study holds
  N, so W workers overshoot by at most W - 1 trials that were already running. Failed trials do not
  count (a killed worker's trial is retried instead).
"""

from __future__ import annotations

import random
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import optuna

T = TypeVar("T")

#: Trial states counted towards ``--trials``.
COUNTED = ("COMPLETE", "PRUNED")
#: How often a killed worker's trial is queued again (then it stays failed).
MAX_RETRY = 3
#: The file names that select Optuna's journal storage.
JOURNAL_SUFFIXES = (".log", ".jsonl")


def shown_url(url: str) -> str:
    """``url`` with its password hidden (for messages and summaries)."""
    if "://" not in url:
        return url
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a SQLAlchemy URL: show only its scheme
        return url.split("://")[0] + "://..."


def _races(action: Callable[[], T], what: str, url: str, tries: int = 6) -> T:
    """``action()``, tried again after a short random pause when another worker's concurrent insert
    of the same tables or study makes it fail (a database error), up to ``tries`` times."""
    from sqlalchemy.exc import SQLAlchemyError

    for attempt in range(tries):
        try:
            return action()
        except SQLAlchemyError as exc:
            if attempt == tries - 1:
                reason = " ".join(str(exc).split())[:300]
                raise ValueError(f"--storage {shown_url(url)}: {what} failed: {reason}") from None
            time.sleep(random.uniform(0.2, 1.0) * (attempt + 1))
    raise AssertionError("unreachable")


def check_storage(url: str | None) -> None:
    """Refuse a ``--storage`` that is neither a URL nor a journal file name (before anything runs)."""
    if url is not None and "://" not in url and not url.endswith(JOURNAL_SUFFIXES):
        raise ValueError(
            f"--storage must be a database URL (sqlite:///FILE, postgresql://..., mysql://...) or a journal "
            f"file ending in {' or '.join(JOURNAL_SUFFIXES)}, got {url!r}"
        )


def open_storage(url: str, *, heartbeat: int) -> optuna.storages.BaseStorage:
    """The storage at ``url``: an RDB storage with heartbeats every ``heartbeat`` seconds (grace
    period twice that) and retries of killed workers' trials, or a journal file.

    Raises:
        ValueError: the URL cannot be opened (naming it, password hidden).
    """
    import optuna
    from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
    from optuna.storages.journal import JournalFileBackend

    check_storage(url)
    if "://" not in url:
        warnings.warn(
            f"--storage {url}: a journal file has no heartbeats; the trial of a killed worker stays RUNNING and "
            "is not retried (a database URL retries it)",
            stacklevel=2,
        )
        return JournalStorage(JournalFileBackend(url))
    # SQLite: concurrent workers wait for the file lock instead of failing at once
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}

    def create() -> RDBStorage:
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 4 / 5
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(
                url,
                engine_kwargs=engine,
                heartbeat_interval=heartbeat,
                grace_period=2 * heartbeat,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY),
            )

    try:
        return _races(create, "opening the storage", url)
    except (ImportError, optuna.exceptions.StorageInternalError) as exc:
        raise ValueError(f"--storage {shown_url(url)}: {exc}") from None


def open_study(
    name: str, storage: optuna.storages.BaseStorage, url: str, *, sampler: Any, pruner: Any
) -> tuple[optuna.Study, bool]:
    """Create study ``name`` (maximising) or load it when it exists; returns it and whether this call
    created it. Simultaneous workers: the one whose insert wins creates it, the others load it."""
    import optuna

    def create_or_load() -> tuple[optuna.Study, bool]:
        try:
            study = optuna.create_study(
                storage=storage, study_name=name, sampler=sampler, pruner=pruner, direction="maximize"
            )
            return study, True
        except optuna.exceptions.DuplicatedStudyError:
            return optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner), False

    study, created = _races(create_or_load, f"creating study {name!r}", url)
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise ValueError(f"--study {name!r} in {shown_url(url)} minimises; ral tune maximises, use another --study")
    return study, created


def finished(study: optuna.Study) -> int:
    """Trials that count towards ``--trials`` (complete or pruned)."""
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=tuple(TrialState[state] for state in COUNTED)))


def stop_at(trials: int) -> Callable[[optuna.Study, Any], None]:
    """Optuna's callback that stops this worker once the study holds ``trials`` counted trials."""
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    return MaxTrialsCallback(trials, states=tuple(TrialState[state] for state in COUNTED))


def make_sampler(kind: str, *, seed: int | None, grid: dict[str, list[Any]] | None = None) -> Any:
    """Optuna's sampler for ``--sampler`` (``tpe``, ``random``, ``grid`` over ``grid``)."""
    import optuna

    if kind == "grid":
        return optuna.samplers.GridSampler(grid or {}, seed=seed)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(kind: str, *, epochs: int) -> Any:
    """Optuna's pruner for ``--pruner``: ``median`` (after 4 finished trials, from the second
    epoch), ``hyperband`` (1 to ``epochs`` epochs) or ``none``."""
    import optuna

    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1)
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1))
    return optuna.pruners.NopPruner()
