"""Multi-process runs as a user starts them: torchrun with 2 CPU processes (gloo), SIGKILL + --resume."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import tiny_config, write_generic_split

from ral.engine.inference import load_eval_table, load_trained_model, predict_probabilities
from ral.engine.module import compute_metrics

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_config(config: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def test_two_process_ddp_gives_the_single_process_val_metrics(tiny_data, tmp_path):
    """DDP validation gathers every process's predictions (the odd val set is padded by the
    sampler) and must report exactly what one process computes on the saved model."""
    out = tmp_path / "ddp"
    config = tiny_config(tiny_data, out, train={"devices": 2, "strategy": "ddp", "batch_size": 8})
    path = _write_config(config, tmp_path / "ddp.yaml")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={_free_port()}",
        "-m",
        "ral.cli",
        "train",
        "--config",
        str(path),
    ]
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())

    model, meta = load_trained_model(out / "checkpoints" / "last.ckpt")
    val = load_eval_table(tiny_data["val"], meta)
    probs = predict_probabilities(model, val, task="multilabel", image_size=meta["image_size"])
    single = compute_metrics("multilabel", val.labels, probs, meta["groups"])
    for name, value in single.items():
        reported = result["val_metrics"][name]
        assert (np.isnan(value) and reported is None) or reported == pytest.approx(value, abs=1e-6), name


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_a_straight_run(tmp_path_factory, tmp_path):
    root = tmp_path_factory.mktemp("kill-data")
    data = {"train": write_generic_split(root, "train", 1500, 10), "val": write_generic_split(root, "val", 101, 11)}
    sections = {
        "train": {"epochs": 3, "batch_size": 16},
        "dataset": {"augment": True},
        "model": {"options": {"width": 8, "depth": 2, "dropout": 0.2}},
    }
    cli = [sys.executable, "-m", "ral.cli", "train", "--config"]

    straight = _write_config(tiny_config(data, tmp_path / "straight", **sections), tmp_path / "straight.yaml")
    subprocess.run([*cli, str(straight)], env=ENV, check=True, capture_output=True, timeout=600)

    killed = _write_config(tiny_config(data, tmp_path / "killed", **sections), tmp_path / "killed.yaml")
    process = subprocess.Popen([*cli, str(killed)], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = tmp_path / "killed" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # into the second epoch
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "killed" / "result.json").exists(), "the run finished before it could be killed"
    subprocess.run([*cli, str(killed), "--resume"], env=ENV, check=True, capture_output=True, timeout=600)

    a = torch.load(tmp_path / "straight" / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(last, weights_only=True)
    assert a["epoch"] == b["epoch"] == 2
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    ra = json.loads((tmp_path / "straight" / "result.json").read_text())
    rb = json.loads((tmp_path / "killed" / "result.json").read_text())
    assert ra["val_metrics"] == rb["val_metrics"]
