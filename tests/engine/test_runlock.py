"""One process per run folder: a second ``ral train`` / ``ral evaluate`` into a folder in use is refused
in one line naming the holder's pid, before any work; a lock of a killed process does not block; and
``--overwrite`` removes only what a run wrote."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from ral import cli
from ral.engine.runlock import lock_files, run_lock


def test_train_into_a_folder_in_use_is_refused_before_any_work(tiny_config, tiny_data, tmp_path, capsys):
    run = tmp_path / "runs" / "dup"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tiny_config(tiny_data, run)))
    with run_lock(run, "ral train"):
        assert cli.main(["train", "--config", str(path)]) == 2
        assert cli.main(["train", "--config", str(path), "--resume"]) == 2
    err = capsys.readouterr().err.splitlines()
    expected = f"ral train: error: {run}: is in use by pid {os.getpid()} (ral train); wait for it to finish"
    assert len(err) == 2 and all(line.startswith(expected) for line in err)
    assert not (tmp_path / "runs").exists()  # nothing written: no config.yaml, no lock files, no empty folder


def test_evaluate_into_a_folder_in_use_is_refused_before_reading_the_checkpoint(tmp_path, capsys):
    out = tmp_path / "eval"
    with run_lock(out, "ral evaluate"):
        code = cli.main(["evaluate", "--checkpoint", str(tmp_path / "none.ckpt"), "--out", str(out)])
    assert code == 2
    assert capsys.readouterr().err.strip().startswith(f"ral evaluate: error: {out}: is in use by pid {os.getpid()}")


@pytest.mark.slow
def test_the_lock_of_a_killed_process_does_not_block(tmp_path):
    folder = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from ral.engine.runlock import run_lock\n"
            f"with run_lock({str(folder)!r}, 'ral train'):\n    print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(OSError, match=rf"is in use by pid {holder.pid} \(ral train\)"), run_lock(folder, "ral train"):
        pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert lock_files(folder)[0].exists()  # left behind by the killed process, but not held by anyone
    with run_lock(folder, "ral train"):
        assert lock_files(folder)[1].read_text().split()[0] == str(os.getpid())
    assert not any(path.exists() for path in lock_files(folder))


@pytest.mark.slow
def test_two_trainings_into_one_fresh_folder_one_is_refused(tiny_config, tiny_data, tmp_path):
    commands = []
    for seed in (0, 1):
        config = tiny_config(tiny_data, tmp_path / "runs" / "dup", train={"epochs": 10_000})
        path = tmp_path / f"c{seed}.yaml"
        path.write_text(yaml.safe_dump({**config, "seed": seed}))
        commands.append([sys.executable, "-m", "ral.cli", "train", "--config", str(path)])
    first = subprocess.Popen(commands[0], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sidecar = lock_files(tmp_path / "runs" / "dup")[1]
    deadline = time.monotonic() + 120
    while not sidecar.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    second = subprocess.run(commands[1], capture_output=True, text=True)
    first.send_signal(signal.SIGTERM)  # still training: 10,000 epochs
    _, first_err = first.communicate(timeout=120)
    assert first.returncode in (128 + signal.SIGTERM, -signal.SIGTERM), first_err  # -15: before fit started
    assert second.returncode == 2
    assert second.stderr.strip() == (
        f"ral train: error: {tmp_path / 'runs' / 'dup'}: is in use by pid {first.pid} (ral train); "
        "wait for it to finish or choose another folder"
    )


def test_overwrite_removes_only_what_a_run_wrote(copied_run):
    from ral.engine.training import _remove_run

    (copied_run / "checkpoints" / "keep-epoch-1.ckpt").write_bytes(b"mine")
    (copied_run / "eval" / "test").mkdir(parents=True)
    (copied_run / "eval" / "test" / "metrics.json").write_text("{}")  # an evaluation of the replaced run
    (copied_run / "eval" / "notes.md").write_text("mine")
    _remove_run(copied_run)
    assert sorted(p.name for p in (copied_run / "checkpoints").iterdir()) == ["keep-epoch-1.ckpt"]
    assert sorted(p.name for p in (copied_run / "eval").iterdir()) == ["notes.md"]
    assert not (copied_run / "config.yaml").exists() and not (copied_run / "logs").exists()
