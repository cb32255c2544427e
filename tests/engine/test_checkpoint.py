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


def _read_error(path) -> str:
    with pytest.raises(ValueError) as caught:
        ckpt.load_checkpoint(path)
    message = str(caught.value)
    assert "\n" not in message and "weights_only" not in message and str(path) in message
    return message


def test_read_errors_are_one_line_and_never_suggest_unsafe_loading(tmp_path):
    torch.save({"state_dict": {}, "evil": Payload()}, tmp_path / "evil.ckpt")
    message = _read_error(tmp_path / "evil.ckpt")
    assert "holds pickled objects that are not weights; refused (it could run code)" in message
    assert "Payload" in message
    (tmp_path / "empty.ckpt").write_bytes(b"")
    assert "empty or truncated checkpoint" in _read_error(tmp_path / "empty.ckpt")
    ckpt.save_atomic({"w": torch.ones(1000)}, tmp_path / "full.ckpt")
    data = (tmp_path / "full.ckpt").read_bytes()
    (tmp_path / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    assert "empty or truncated checkpoint" in _read_error(tmp_path / "truncated.ckpt")
    (tmp_path / "garbage.ckpt").write_bytes(b"not a checkpoint")
    assert "not a PyTorch checkpoint file" in _read_error(tmp_path / "garbage.ckpt")
    with pytest.raises(FileNotFoundError):
        ckpt.load_checkpoint(tmp_path / "missing.ckpt")
    torch.save({"state_dict": {}}, tmp_path / "foreign.ckpt")
    with pytest.raises(ValueError, match="not a checkpoint written by `ral train`"):
        ckpt.checkpoint_metadata(ckpt.load_checkpoint(tmp_path / "foreign.ckpt"))


def test_cli_reports_a_truncated_checkpoint_in_one_line(tmp_path, capsys):
    from ral.cli import main

    (tmp_path / "best.ckpt").write_bytes(b"")
    assert (
        main(["predict", "--checkpoint", str(tmp_path / "best.ckpt"), "x.png", "--out", str(tmp_path / "p.csv")]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "empty or truncated checkpoint" in err


def test_disk_full_during_a_checkpoint_save_is_an_os_error_naming_the_file(tmp_path, monkeypatch):
    import errno

    class FullDisk:
        def __init__(self, handle):
            self.handle = handle

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.handle, name)

    real_save = torch.save
    monkeypatch.setattr(ckpt.torch, "save", lambda obj, handle: real_save(obj, FullDisk(handle)))
    with pytest.raises(OSError) as caught:
        ckpt.save_atomic({"w": torch.ones(1000)}, tmp_path / "last.ckpt")
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(tmp_path / "last.ckpt")
    assert list(tmp_path.iterdir()) == []  # no temporary file left


def test_rng_state_round_trips_through_a_weights_only_file(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    ckpt.save_atomic({"rng": collect_rng_state()}, tmp_path / "rng.ckpt")
    expected = (random.random(), np.random.rand(), torch.rand(2))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    restore_rng_state(ckpt.load_checkpoint(tmp_path / "rng.ckpt")["rng"])
    again = (random.random(), np.random.rand(), torch.rand(2))
    assert again[0] == expected[0] and again[1] == expected[1] and torch.equal(again[2], expected[2])
