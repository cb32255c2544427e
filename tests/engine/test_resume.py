"""Checkpoints and resume: last = every finished epoch, mid-epoch checkpoints resumed bit for bit,
checkpoint / config mismatches refused before anything is written, --overwrite."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from ral import cli
from ral.engine import train
from ral.engine.module import ClassifierModule
from ral.engine.training import newest_checkpoint

STEPS_PER_EPOCH = 4  # 64 training images, batches of 16


def _checkpoint(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def _same_floats(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k] == b[k] or (np.isnan(a[k]) and np.isnan(b[k])) for k in a)


def _count_steps(monkeypatch, crash_at_step: int | None = None) -> list[tuple[int, int, float]]:
    """Record (epoch, batch index, learning rate) of every training step; raise at global step ``crash_at_step``."""
    original = ClassifierModule.training_step
    steps: list[tuple[int, int, float]] = []

    def step(self, batch, batch_idx):
        if self.global_step == crash_at_step:
            raise RuntimeError("simulated crash")
        steps.append((self.current_epoch, batch_idx, self.optimizers().param_groups[0]["lr"]))
        return original(self, batch, batch_idx)

    monkeypatch.setattr(ClassifierModule, "training_step", step)
    return steps


def test_last_checkpoint_is_every_finished_epoch_and_a_finished_run_can_be_extended(
    tiny_config, tiny_data, tmp_path, monkeypatch
):
    import ral.engine.module as module

    scores = iter([0.9, 0.5, 0.4])  # the first epoch stays the best one
    real = module.compute_metrics
    monkeypatch.setattr(module, "compute_metrics", lambda *a: {**real(*a), "mAP": next(scores)})
    config = tiny_config(tiny_data, tmp_path / "run", train={"epochs": 2, "checkpoint_every_n_steps": 0})
    first = train(config)
    folder = tmp_path / "run" / "checkpoints"
    assert _checkpoint(folder / "best.ckpt")["epoch"] == 0 and first["best_epoch"] == 1  # Lightning's is 0-based
    assert _checkpoint(folder / "last.ckpt")["epoch"] == 1  # the end of the last epoch, not of the best
    assert _checkpoint(folder / "last.ckpt")["global_step"] == 2 * STEPS_PER_EPOCH

    steps = _count_steps(monkeypatch)
    config["train"]["epochs"] = 3
    extended = train(config, resume=True)
    assert {epoch for epoch, _, _ in steps} == {2}  # only the new epoch was trained
    # the cosine is stretched over the new total (12 steps) from the current step
    assert [lr for _, _, lr in steps] == pytest.approx([0.005 * (1 + math.cos(math.pi * s / 12)) for s in range(8, 12)])
    assert extended["epochs_completed"] == 3 and [row["epoch"] for row in extended["history"]] == [1, 2, 3]
    assert all(_same_floats(a, b) for a, b in zip(extended["history"], first["history"]))
    assert _checkpoint(folder / "last.ckpt")["epoch"] == 2 and extended["best_epoch"] == 1
    config["train"]["epochs"] = 2  # fewer than the 3 finished: refused before anything is written
    with pytest.raises(ValueError, match=r"train\.epochs=2: .*last\.ckpt has already finished 3 epochs; set train"):
        train(config, resume=True)
    assert _checkpoint(folder / "last.ckpt")["epoch"] == 2


@pytest.mark.parametrize("accumulate", [1, 2])
def test_resume_from_a_mid_epoch_checkpoint_matches_an_uninterrupted_run(
    tiny_config, tiny_data, tmp_path, monkeypatch, accumulate
):
    steps_per_epoch = STEPS_PER_EPOCH // accumulate
    every = 3 if accumulate == 1 else 1
    mid = 6 if accumulate == 1 else 3  # the second epoch's mid-epoch checkpoint (a multiple of every)
    sections = {
        "train": {"epochs": 2, "checkpoint_every_n_steps": every, "accumulate_grad_batches": accumulate},
        "model": {"options": {"width": 4, "depth": 2, "dropout": 0.3}},
        "dataset": {"augment": True},
        "schedule": {"warmup_epochs": 0.5},
    }
    straight = train(tiny_config(tiny_data, tmp_path / "straight", **sections))
    assert not (tmp_path / "straight" / "checkpoints" / "mid-epoch.ckpt").exists()  # removed at the epoch's end

    config = tiny_config(tiny_data, tmp_path / "resumed", **sections)
    # the first batch after the second epoch's mid-epoch checkpoint (a step sees the steps done before it)
    _count_steps(monkeypatch, crash_at_step=mid)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(config)
    newest, checkpoint = newest_checkpoint(tmp_path / "resumed" / "checkpoints")
    assert newest.name == "mid-epoch.ckpt"
    assert checkpoint["global_step"] == mid
    assert checkpoint["global_step"] % steps_per_epoch != 0  # written inside the epoch

    monkeypatch.undo()
    steps = _count_steps(monkeypatch)
    resumed = train(config, resume=True)
    assert steps[0][:2] == (1, (mid - steps_per_epoch) * accumulate)  # continued inside the second epoch
    a = _checkpoint(tmp_path / "straight" / "checkpoints" / "last.ckpt")
    b = _checkpoint(tmp_path / "resumed" / "checkpoints" / "last.ckpt")
    assert a["global_step"] == b["global_step"] == 2 * steps_per_epoch
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    for key in a["optimizer_states"][0]["state"]:
        assert torch.equal(
            a["optimizer_states"][0]["state"][key]["exp_avg"], b["optimizer_states"][0]["state"][key]["exp_avg"]
        )
    assert a["lr_schedulers"] == b["lr_schedulers"]
    assert _same_floats(straight["val_metrics"], resumed["val_metrics"])
    for row_a, row_b in zip(straight["history"], resumed["history"], strict=True):
        assert _same_floats(
            {k: v for k, v in row_a.items() if k.startswith("val_")},
            {k: v for k, v in row_b.items() if k.startswith("val_")},
        )

    def epoch_losses(folder: Path) -> list[float]:
        logs = sorted((folder / "logs").glob("metrics*.csv"))
        frame = pd.concat([pd.read_csv(path) for path in logs])
        return frame.dropna(subset=["train_loss_epoch"]).sort_values("epoch")["train_loss_epoch"].tolist()

    assert epoch_losses(tmp_path / "straight") == epoch_losses(tmp_path / "resumed")  # the interrupted epoch too


def test_resume_refuses_a_checkpoint_of_another_model_before_writing_anything(tiny_config, tiny_data, tmp_path, capsys):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(tiny_config(tiny_data, tmp_path / "run")))
    assert cli.main(["train", "--config", str(path)]) == 0
    run = tmp_path / "run"
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in run.rglob("*") if p.is_file()}
    capsys.readouterr()
    changes = {
        "dataset.classes=[Alpha,Beta]": "classes differs (classes only in the checkpoint ['Gamma', 'Delta']",
        "model.options.width=8": "model.options differs",
        "model.backbone=resnet18": "model.backbone differs",
        "loss.name=asl": "loss.name differs ('bce' in the checkpoint, 'asl' now)",
    }
    for override, expected in changes.items():
        assert cli.main(["train", "--config", str(path), override, "--resume"]) == 2, override
        err = capsys.readouterr().err.strip()
        assert expected in err and "\n" not in err, err
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in run.rglob("*") if p.is_file()}
    assert after == before  # the run folder is untouched: config.yaml, checkpoints, logs


def test_a_checkpoint_whose_weights_do_not_fit_is_refused_in_one_line(tiny_config, tiny_data, copied_run):
    config = tiny_config(tiny_data, copied_run)
    last = copied_run / "checkpoints" / "last.ckpt"
    checkpoint = _checkpoint(last)
    name = next(k for k in checkpoint["state_dict"] if k.startswith("model."))
    checkpoint["state_dict"][name] = torch.zeros(3)
    torch.save(checkpoint, last)
    with pytest.raises(ValueError, match=rf"does not fit the model: weight '{name[6:]}' is \(3,\)"):
        train(config, resume=True)


def test_overwrite_starts_a_run_anew_and_keeps_other_files(tiny_config, tiny_data, copied_run, tmp_path, capsys):
    config = tiny_config(tiny_data, copied_run)
    run = copied_run
    (run / "eval" / "test").mkdir(parents=True)
    (run / "eval" / "test" / "metrics.json").write_text("{}")  # an evaluation of the replaced run
    (run / "notes.txt").write_text("mine")
    (run / "checkpoints" / "mid-epoch.ckpt").write_bytes(b"stale")
    with pytest.raises(ValueError, match="pass --resume to continue it, --overwrite to start it anew"):
        train(config)
    with pytest.raises(ValueError, match="not both"):
        train(config, resume=True, overwrite=True)
    again = train(config, overwrite=True)
    assert again["epochs_completed"] == 1 and not (run / "eval").exists()
    assert not (run / "logs" / "metrics-part1.csv").exists()  # a new run, not a continuation
    assert not (run / "checkpoints" / "mid-epoch.ckpt").exists()
    assert (run / "notes.txt").read_text() == "mine"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    assert cli.main(["train", "--config", str(path), "--resume", "--overwrite"]) == 2
    assert "give --resume or --overwrite, not both" in capsys.readouterr().err


def test_train_checks_its_output_folder_before_any_work(tiny_config, tiny_data, tmp_path, monkeypatch, capsys):
    import importlib

    train_module = importlib.import_module("ral.engine.training")

    def no_work(*args, **kwargs):
        raise AssertionError("the run was prepared although its folder cannot be written")

    monkeypatch.setattr(train_module, "prepare_run", no_work)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(tiny_config(tiny_data, blocker / "run")))
    assert cli.main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"ral train: error: {blocker}: is a file, so no folder can be made in it"
