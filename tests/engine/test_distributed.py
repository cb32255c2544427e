"""Multi-process runs as a user starts them: torchrun with 2 CPU processes (gloo), SIGKILL + --resume."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

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


@pytest.mark.slow  # two spawned processes: 7 s, the largest share of the default suite
def test_two_process_ddp_gives_the_single_process_val_metrics_and_builds_one_cache(tiny_config, tiny_data, tmp_path):
    """DDP validation gathers every process's predictions (the odd val set is padded by the
    sampler) and must report exactly what one process computes on the saved model. The two
    processes start with a fresh cache_dir: one of them builds each cache (the other waits), and
    nothing but the caches and their info files is left there."""
    out = tmp_path / "ddp"
    cache = tmp_path / "cache"
    config = tiny_config(
        tiny_data, out, train={"devices": 2, "strategy": "ddp", "batch_size": 8}, dataset={"cache_dir": str(cache)}
    )
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
    builds = [line for line in done.stderr.splitlines() if "building the image cache" in line]
    assert len(builds) == 2 and len({line.split()[5] for line in builds}) == 2, builds  # train and val, once each
    files = sorted(path.name for path in cache.iterdir())
    assert len(files) == 4 and all(name.endswith((".npy", ".json")) for name in files), files  # no .tmp, no .lock

    model, meta = load_trained_model(out / "checkpoints" / "last.ckpt")
    val = load_eval_table(tiny_data["val"], meta)
    probs = predict_probabilities(model, val, task="multilabel", image_size=meta["image_size"])
    single = compute_metrics("multilabel", val.labels, probs, meta["groups"])
    for name, value in single.items():
        reported = result["val_metrics"][name]
        assert (np.isnan(value) and reported is None) or reported == pytest.approx(value, abs=1e-6), name


#: Runs ``ral train`` in a process that SIGKILLs itself at the start of global step ``kill_at``.
KILLED_AT_STEP = """
import os, signal, sys
from ral.engine.module import ClassifierModule
original = ClassifierModule.training_step
def training_step(self, batch, batch_idx):
    if self.global_step == int(os.environ["RAL_TEST_KILL_AT"]):
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, batch, batch_idx)
ClassifierModule.training_step = training_step
from ral.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_a_straight_run(tiny_config, write_split, tmp_path_factory, tmp_path):
    """A real SIGKILL inside the second epoch, after its mid-epoch checkpoint; the resumed run (with
    two loader workers, the killed one had none) ends with the straight run's weights and metrics."""
    root = tmp_path_factory.mktemp("kill-data")
    data = {"train": write_split(root, "train", 200, 10), "val": write_split(root, "val", 51, 11)}
    steps_per_epoch, every, kill_at = 12, 5, 17  # 200 images / batch 16; checkpoints at steps 5, 10, 15
    sections = {
        "train": {"epochs": 2, "batch_size": 16, "checkpoint_every_n_steps": every},
        "dataset": {"augment": True},
        "model": {"options": {"width": 8, "depth": 2, "dropout": 0.2}},
    }
    cli = [sys.executable, "-m", "ral.cli", "train", "--config"]
    straight = _write_config(tiny_config(data, tmp_path / "straight", **sections), tmp_path / "straight.yaml")
    subprocess.run([*cli, str(straight)], env=ENV, check=True, capture_output=True, timeout=600)

    killed = _write_config(tiny_config(data, tmp_path / "killed", **sections), tmp_path / "killed.yaml")
    env = {**ENV, "RAL_TEST_KILL_AT": str(kill_at)}
    done = subprocess.run(
        [sys.executable, "-c", KILLED_AT_STEP, "train", "--config", str(killed)],
        env=env,
        capture_output=True,
        timeout=600,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    assert not (tmp_path / "killed" / "result.json").exists()
    folder = tmp_path / "killed" / "checkpoints"
    newest = max(
        (torch.load(p, weights_only=True, mmap=True)["global_step"], p.name)
        for p in folder.glob("*.ckpt")
        if p.name != "best.ckpt"
    )
    assert newest == (15, "mid-epoch.ckpt") and newest[0] % steps_per_epoch != 0  # written inside the epoch
    resume = [*cli, str(killed), "--resume", "dataset.num_workers=2"]  # must not change a single batch
    subprocess.run(resume, env=ENV, check=True, capture_output=True, timeout=600)
    assert yaml.safe_load((tmp_path / "killed" / "config.yaml").read_text())["dataset"]["num_workers"] == 2

    a = torch.load(tmp_path / "straight" / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(folder / "last.ckpt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 1 and a["global_step"] == b["global_step"] == 2 * steps_per_epoch
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    ra = json.loads((tmp_path / "straight" / "result.json").read_text())
    rb = json.loads((tmp_path / "killed" / "result.json").read_text())
    assert ra["val_metrics"] == rb["val_metrics"]
    assert [r["val_mAP"] for r in ra["history"]] == [r["val_mAP"] for r in rb["history"]]
