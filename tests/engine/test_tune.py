"""``ral tune`` end to end on the tiny set: trials that train, resuming, workers sharing a study on SQLite and
on a PostgreSQL server started here, and a worker killed mid-trial (slow: every trial trains)."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from ral.cli import main
from ral.engine import train
from ral.engine.configfile import load_config

pytestmark = pytest.mark.slow


@pytest.fixture
def tune_config(tiny_data: dict[str, Path], tiny_config: Callable[..., dict[str, Any]], tmp_path: Path) -> Path:
    """The tiny one-epoch config as a YAML file, tuning two of RAL's options."""
    config = tiny_config(tiny_data, tmp_path / "unused", loss={"name": "ral", "params": {}})
    config["tune"] = {"space": {"gamma_neg": {"low": 1, "high": 6}}, "params": ["gamma_neg", "tau"]}
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _trials(url: str, name: str = "ral-tune-ral") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).get_trials()


def _counted(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    return [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]


def _worker(config: Path, out: Path, *args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "ral.cli", "tune", "--config", str(config), "--out", str(out), *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(*workers: subprocess.Popen) -> None:
    for worker in workers:
        output, _ = worker.communicate(timeout=600)
        assert worker.returncode == 0, output


def test_tune_trains_trials_writes_a_trainable_best_yaml_and_resumes(
    tune_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "tune"
    assert main(["tune", "--config", str(tune_config), "--trials", "3", "--out", str(out), "--pruner", "none"]) == 0
    url = f"sqlite:///{out / 'study.db'}"
    trials = _trials(url)
    assert len(_counted(trials)) == 3 and trials[0].user_attrs["starting_point"]
    assert trials[0].params == {"gamma_neg": 4.0, "tau": 0.05}  # the config's own values come first
    assert sorted(p.name for p in (out / "trials").iterdir()) == ["0000", "0001", "0002"]
    for name in ("best.yaml", "trials.csv", "summary.md", "history.png", "importances.png", "slice.png"):
        assert (out / name).is_file(), name
    assert "best: trial" in capsys.readouterr().out

    best = load_config(out / "best.yaml")
    top = max(_counted(trials), key=lambda t: t.value)
    assert best.loss.params == top.params and best.output_dir == str(out / "best")
    assert train(best)["best_score"] == pytest.approx(top.value)  # the same training as the best trial

    assert main(["tune", "--config", str(tune_config), "--trials", "5", "--out", str(out), "--pruner", "none"]) == 0
    assert len(_counted(_trials(url))) == 5  # the re-run added two


def test_two_workers_share_one_sqlite_study(tune_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "tune"
    _finish(*[_worker(tune_config, out, "--trials", "4", "--pruner", "none") for _ in range(2)])
    counted = _counted(_trials(f"sqlite:///{out / 'study.db'}"))
    assert len(counted) in (4, 5)  # the study total; at most one trial over (already running when it was reached)
    assert len({tuple(sorted(t.params.items())) for t in counted}) == len(counted)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server in a temporary folder (Debian's initdb / pg_ctl, as the `postgres` user when
    run as root), reached through its Unix socket there; stopped and removed afterwards."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.skip("PostgreSQL's initdb is not installed (apt-get install postgresql)")
    bin_dir = Path(found[-1]).parent
    base = Path(tempfile.mkdtemp(prefix="ral-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb and the server refuse to run as root
        shutil.chown(base, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = base / "data", "54329"
    run = lambda *args: subprocess.run([*as_user, *args], check=True, capture_output=True)  # noqa: E731
    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "ral")
        options = f"-k {base} -p {port} -c listen_addresses=''"
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start")
        yield f"postgresql://ral@/postgres?host={base}&port={port}"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], check=False)
        shutil.rmtree(base, ignore_errors=True)


def test_two_workers_started_together_share_one_postgres_study(
    tune_config: Path, tmp_path: Path, postgres_url: str
) -> None:
    flags = ("--trials", "4", "--pruner", "none", "--storage", postgres_url, "--study", "pg")
    _finish(*[_worker(tune_config, tmp_path / f"machine{i}", *flags) for i in range(2)])
    trials = _trials(postgres_url, "pg")
    counted = _counted(trials)
    assert len(counted) in (4, 5) and len(trials) == len(counted)
    assert len({tuple(sorted(t.params.items())) for t in counted}) == len(counted)
    assert (tmp_path / "machine0" / "best.yaml").is_file() and (tmp_path / "machine1" / "best.yaml").is_file()


def test_a_worker_killed_mid_trial_loses_nothing(tune_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "tune"
    url = f"sqlite:///{out / 'study.db'}"
    slow = ("train.epochs=20", "--pruner", "none", "--heartbeat", "1", "--trials", "3")
    killed = _worker(tune_config, out, *slow)
    deadline = time.monotonic() + 300
    while not (out / "trials" / "0000" / "config.yaml").exists():  # trial 0 is about to train
        assert killed.poll() is None and time.monotonic() < deadline, killed.communicate()[0]
        time.sleep(0.2)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert [t.state.name for t in _trials(url)] == ["RUNNING"]
    time.sleep(2.5)  # the heartbeat's grace period (2 x 1 s) passes

    assert main(["tune", "--config", str(tune_config), "--out", str(out), "train.epochs=1", *slow[1:]]) == 0
    trials = _trials(url)
    assert trials[0].state.name == "FAIL" and len(_counted(trials)) == 3
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == 0]
    assert len(retried) == 1 and retried[0].state.name == "COMPLETE" and retried[0].params == trials[0].params
