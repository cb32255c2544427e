"""Atomic checkpoint writes, weights-only reads, restorable RNG state."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from ral.engine import checkpoint as ckpt
from ral.engine.callbacks import collect_rng_state, restore_rng_state


class Payload:
    """A pickled object that a weights-only load must refuse."""


def test_crash_during_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    ckpt.save_atomic({"epoch": 1, "w": torch.ones(3)}, path)
    real_save = torch.save

    def dies_halfway(obj, handle):
        real_save(obj, handle)
        handle.truncate(10)  # a partial write ...
        raise KeyboardInterrupt("killed during save")  # ... then the process is interrupted

    monkeypatch.setattr(ckpt.torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_atomic({"epoch": 2, "w": torch.zeros(3)}, path)
    monkeypatch.setattr(ckpt.torch, "save", real_save)
    loaded = ckpt.load_checkpoint(path)
    assert loaded["epoch"] == 1 and torch.equal(loaded["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # no temp file left


def test_stale_temporaries_from_a_kill_are_removed(tmp_path):
    (tmp_path / ".last.ckpt.abc123.tmp").write_bytes(b"partial")
    ckpt.save_atomic({"x": 1}, tmp_path / "last.ckpt")
    ckpt.remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_load_refuses_pickled_objects_and_garbage(tmp_path):
    torch.save({"state_dict": {}, "evil": Payload()}, tmp_path / "evil.ckpt")
    with pytest.raises(ValueError, match="weights-only"):
        ckpt.load_checkpoint(tmp_path / "evil.ckpt")
    (tmp_path / "garbage.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        ckpt.load_checkpoint(tmp_path / "garbage.ckpt")
    with pytest.raises(FileNotFoundError):
        ckpt.load_checkpoint(tmp_path / "missing.ckpt")
    torch.save({"state_dict": {}}, tmp_path / "foreign.ckpt")
    with pytest.raises(ValueError, match="not a checkpoint written by `ral train`"):
        ckpt.checkpoint_metadata(ckpt.load_checkpoint(tmp_path / "foreign.ckpt"))


def test_rng_state_round_trips_through_a_weights_only_file(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    ckpt.save_atomic({"rng": collect_rng_state()}, tmp_path / "rng.ckpt")
    expected = (random.random(), np.random.rand(), torch.rand(2))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    restore_rng_state(ckpt.load_checkpoint(tmp_path / "rng.ckpt")["rng"])
    again = (random.random(), np.random.rand(), torch.rand(2))
    assert again[0] == expected[0] and again[1] == expected[1] and torch.equal(again[2], expected[2])
