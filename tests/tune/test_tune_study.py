"""Workers sharing one study: the study total (MaxTrialsCallback) and the study-creation race."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import optuna
import pytest

from ral.tune.study import finished, open_storage, open_study, shown_url, stop_at


def _study(path: Path) -> tuple[optuna.Study, bool]:
    url = f"sqlite:///{path}"
    return open_study("s", open_storage(url, heartbeat=60), url, sampler=None, pruner=None)


def test_trials_is_the_study_total_of_complete_and_pruned_trials(tmp_path: Path) -> None:
    study, created = _study(tmp_path / "study.db")
    assert created

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        if trial.number == 1:
            raise optuna.TrialPruned()
        if trial.number == 2:
            return float("nan")  # a failed trial: not counted
        return x

    study.optimize(objective, callbacks=[stop_at(3)])
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "PRUNED", "FAIL", "COMPLETE"] and finished(study) == 3
    again, created = _study(tmp_path / "study.db")  # a second worker (or a re-run) resumes it
    assert not created
    again.optimize(objective, callbacks=[stop_at(4)])
    assert finished(again) == 4


def test_simultaneous_workers_create_one_study(tmp_path: Path) -> None:
    start = threading.Barrier(4)

    def worker(_: int) -> bool:
        start.wait()  # all four open the storage and the study at the same moment
        return _study(tmp_path / "race.db")[1]

    with ThreadPoolExecutor(4) as pool:
        assert sorted(pool.map(worker, range(4))) == [False, False, False, True]


def test_storage_errors_are_one_line_without_the_password(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="journal file") as info:
        open_storage(str(tmp_path / "study.txt"), heartbeat=60)
    assert "\n" not in str(info.value)
    assert shown_url("postgresql://ral:secret@db.example/tune") == "postgresql://ral:***@db.example/tune"


def test_a_journal_file_holds_a_study_without_heartbeats(tmp_path: Path) -> None:
    url = str(tmp_path / "study.log")
    with pytest.warns(UserWarning, match="no heartbeats"):
        storage = open_storage(url, heartbeat=60)
    study, created = open_study("j", storage, url, sampler=None, pruner=None)
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), callbacks=[stop_at(2)])
    assert created and finished(study) == 2
