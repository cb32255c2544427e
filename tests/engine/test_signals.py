"""SIGTERM / SIGINT during ``ral train``: a mid-epoch checkpoint, one line with the resume command,
exit status 128 + the signal, and ``--resume`` continuing bit for bit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

from ral.engine import train
from ral.engine.signals import TrainingStopped

STOP_STEP = 2  # inside the only epoch of the tiny run (4 steps)


class _SignalAt(L.Callback):
    """Send ``signum`` to this process at the end of global step ``step`` (as a scheduler would)."""

    def __init__(self, signum: int, step: int) -> None:
        self.signum, self.step = signum, step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            signal.raise_signal(self.signum)


def _weights(path: Path) -> dict:
    return torch.load(path, weights_only=True)["state_dict"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)])
def test_a_signal_saves_a_mid_epoch_checkpoint_and_resume_matches_an_uninterrupted_run(
    tiny_config, tiny_data, trained_run, tmp_path, capsys, signum
):
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingStopped) as info:  # the same config as trained_run, stopped by a signal
        train(tiny_config(tiny_data, tmp_path / "stopped"), callbacks=[_SignalAt(signum, STOP_STEP)])
    assert info.value.code == 128 + signum and signal.getsignal(signal.SIGINT) is before
    folder = tmp_path / "stopped" / "checkpoints"
    assert torch.load(folder / "mid-epoch.ckpt", weights_only=True)["global_step"] == STOP_STEP
    err = capsys.readouterr().err
    name = signal.Signals(signum).name
    config = tmp_path / "stopped" / "config.yaml"
    line = f"ral train: stopped by {name}; saved {folder / 'mid-epoch.ckpt'}; continue with: "
    line += f"ral train --config {config} --resume"
    assert line in err.splitlines()
    assert not (tmp_path / "stopped" / "result.json").exists() and not (folder / "last.ckpt").exists()

    resumed = train(yaml.safe_load(config.read_text()), resume=True)
    assert resumed["epochs_completed"] == 1
    a, b = _weights(Path(trained_run["last_checkpoint"])), _weights(folder / "last.ckpt")
    assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


class _SignalAtBatch(L.Callback):
    """Send SIGTERM once, at the end of batch ``index`` counted over the epochs (4 batches each)."""

    def __init__(self, index: int) -> None:
        self.index, self.sent = index, False

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self.sent and trainer.current_epoch * 4 + batch_idx == self.index:
            self.sent = True
            signal.raise_signal(signal.SIGTERM)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("accumulate", "index", "saved_step"),
    [(2, 4, 3), (1, 3, None)],  # inside an accumulated gradient: at the next step; an epoch's last batch: none
)
def test_a_signal_waits_for_the_optimiser_step_and_skips_the_last_batch(
    tiny_config, tiny_data, tmp_path, accumulate, index, saved_step
):
    sections = {"train": {"epochs": 2, "checkpoint_every_n_steps": 0, "accumulate_grad_batches": accumulate}}
    straight = train(tiny_config(tiny_data, tmp_path / "straight", **sections))
    config = tiny_config(tiny_data, tmp_path / "stopped", **sections)
    with pytest.raises(TrainingStopped) as info:
        train(config, callbacks=[_SignalAtBatch(index)])
    mid = tmp_path / "stopped" / "checkpoints" / "mid-epoch.ckpt"
    assert info.value.checkpoint == (mid if saved_step else None)
    if saved_step:
        assert torch.load(mid, weights_only=True)["global_step"] == saved_step
    resumed = train(config, resume=True)
    assert [row["val_mAP"] for row in resumed["history"]] == [row["val_mAP"] for row in straight["history"]]
    a = _weights(tmp_path / "straight" / "checkpoints" / "last.ckpt")
    b = _weights(tmp_path / "stopped" / "checkpoints" / "last.ckpt")
    assert all(torch.equal(a[key], b[key]) for key in a)


@pytest.mark.slow
def test_sigterm_to_the_ral_command_exits_143_with_one_line(tiny_config, tiny_data, tmp_path):
    config = tiny_config(tiny_data, tmp_path / "run", train={"epochs": 1000, "checkpoint_every_n_steps": 0})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    process = subprocess.Popen(
        [sys.executable, "-m", "ral.cli", "train", "--config", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)  # training has started once an epoch is saved
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert f"continue with: ral train --config {tmp_path / 'run' / 'config.yaml'} --resume" in err
    assert "Traceback" not in err
    # tiny epochs are short: the signal may land several epochs after the first last.ckpt
    saved = [torch.load(p, weights_only=True) for p in last.parent.glob("*.ckpt") if p.name != "best.ckpt"]
    finished = max(c["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"] for c in saved)
    resumed = subprocess.run(
        [sys.executable, "-m", "ral.cli", "train", "--config", str(tmp_path / "run" / "config.yaml"), "--resume"]
        + [f"train.epochs={finished + 1}"],
        capture_output=True,
        text=True,
        env={**os.environ},
    )
    assert resumed.returncode == 0, resumed.stderr


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and PR_SET_PDEATHSIG are Linux's")
def test_sigkill_of_a_two_process_training_leaves_no_process_behind(tiny_config, tiny_data, tmp_path, child_pids):
    config = tiny_config(tiny_data, tmp_path / "run", train={"epochs": 10_000, "devices": 2, "strategy": "ddp"})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    parent = subprocess.Popen([sys.executable, "-m", "ral.cli", "train", "--config", str(path)], stderr=subprocess.PIPE)
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 180
    while not last.exists() and parent.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)  # both processes train once an epoch is saved
    ranks = child_pids(parent.pid)
    assert ranks, parent.stderr.read() if parent.poll() is not None else "no second process"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in ranks) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in ranks if Path(f"/proc/{pid}").exists()], "orphan processes"
