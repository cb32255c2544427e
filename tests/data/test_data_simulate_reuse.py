"""``ensure_simulated``: a folder is reused only for the same settings and generator code, an
earlier simulation is removed before a new one, and folders the simulator did not write are
never deleted from."""

from __future__ import annotations

import functools
import json

import pytest

from ral.data import simulate
from ral.data.simulate import code_hash, ensure_simulated, simulate_dataset, simulation_key

SMALL = {"n_train": 200, "n_val": 200, "n_test": 200, "size": 16}  # the smallest set: fast


@pytest.fixture
def count_simulations(monkeypatch):
    """Counts the calls of ``simulate_dataset`` (which still runs)."""
    calls = []
    real = simulate.simulate_dataset

    @functools.wraps(real)  # keeps the signature that the settings are bound against
    def counted(out_dir, **kwargs):
        calls.append(kwargs)
        return real(out_dir, **kwargs)

    monkeypatch.setattr(simulate, "simulate_dataset", counted)
    return calls


def _info(folder):
    return json.loads((folder / "dataset.json").read_text(encoding="utf-8"))


def test_dataset_json_records_the_key_and_the_code_hash(tmp_path):
    out = simulate_dataset(tmp_path / "a", seed=2, **SMALL)
    info = _info(out)
    assert info["code_hash"] == code_hash() and len(info["code_hash"]) == 64
    assert info["key"] == simulation_key(seed=2, **SMALL)
    assert info["key"] != simulation_key(seed=3, **SMALL)
    assert info["key"] != simulation_key(seed=2, **{**SMALL, "n_test": 201})
    assert info["key"] != simulation_key(seed=2, missing_rate=0.2, **SMALL)
    # split sizes given explicitly or left at the defaults give the same key
    assert simulation_key(n_train=24_000, n_val=4_000) == simulation_key()


def test_same_settings_and_code_are_reused(tmp_path, count_simulations):
    out = ensure_simulated(tmp_path / "d", seed=1, **SMALL)
    before = (out / "train.csv").stat().st_mtime_ns
    lines = []
    assert ensure_simulated(out, seed=1, log=lines.append, **SMALL) == out
    assert len(count_simulations) == 1 and (out / "train.csv").stat().st_mtime_ns == before
    assert "reused" in lines[0]


def test_other_settings_replace_the_earlier_simulation_without_stale_images(tmp_path, count_simulations):
    out = ensure_simulated(tmp_path / "d", seed=1, **{**SMALL, "n_test": 260})
    old_images = set((out / "files").rglob("*.png"))
    assert len(old_images) == SMALL["n_train"] + SMALL["n_val"] + 260
    (out / "cache").mkdir()
    (out / "cache" / "keep.npy").write_bytes(b"not the simulator's")
    ensure_simulated(out, seed=1, **SMALL)
    assert len(count_simulations) == 2
    images = set((out / "files").rglob("*.png"))
    assert len(images) == SMALL["n_train"] + SMALL["n_val"] + SMALL["n_test"]  # no stale image left
    assert _info(out)["key"] == simulation_key(seed=1, **SMALL)
    assert (out / "cache" / "keep.npy").read_bytes() == b"not the simulator's"


def test_changed_generator_code_regenerates(tmp_path, monkeypatch, count_simulations):
    out = ensure_simulated(tmp_path / "d", **SMALL)
    monkeypatch.setattr(simulate, "code_hash", lambda: "0" * 64)
    ensure_simulated(out, **SMALL)
    assert len(count_simulations) == 2 and _info(out)["code_hash"] == "0" * 64


def test_an_interrupted_simulation_is_cleaned_up(tmp_path, monkeypatch):
    def dies(out, *args):
        record = args[-1]
        record(["files/p99/p99999999/s1/half.png"])  # listed in the manifest before it is written
        written.parent.mkdir(parents=True)
        written.write_bytes(b"half an image")
        raise KeyboardInterrupt("killed while rendering")

    out = tmp_path / "d"
    written = out / "files" / "p99" / "p99999999" / "s1" / "half.png"
    own = out / "images" / "train" / "999999.png"
    own.parent.mkdir(parents=True)
    own.write_bytes(b"a file of the user's, not the simulator's")
    monkeypatch.setattr(simulate, "_simulate_cxr", dies)
    with pytest.raises(KeyboardInterrupt):
        simulate_dataset(out, overwrite=True, **SMALL)  # a non-empty folder: only with overwrite
    assert _info(out) == {"generator": "ral.data.simulate", "key": None, "complete": False}
    monkeypatch.undo()
    ensure_simulated(out, **SMALL)
    assert not written.exists() and not (out / "files" / "p99").exists()  # and the folders it made
    assert own.read_bytes() == b"a file of the user's, not the simulator's"
    assert _info(out)["key"] == simulation_key(**SMALL)


def test_folders_the_simulator_did_not_write_are_never_deleted_from(tmp_path, count_simulations):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "dataset.json").write_text('{"name": "my own data"}')
    (foreign / "images").mkdir()
    (foreign / "images" / "mine.png").write_bytes(b"precious")
    with pytest.raises(ValueError, match=r"dataset.json was not written by ral.data.simulate"):
        ensure_simulated(foreign, **SMALL)
    assert (foreign / "images" / "mine.png").read_bytes() == b"precious"
    assert count_simulations == []

    unmarked = tmp_path / "unmarked"
    unmarked.mkdir()
    (unmarked / "notes.txt").write_text("kept")
    ensure_simulated(unmarked, **SMALL)
    assert (unmarked / "notes.txt").read_text() == "kept" and (unmarked / "train.csv").is_file()


def test_bad_settings_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="n_val must be an int >= 200"):
        ensure_simulated(tmp_path / "d", n_val=10)
    with pytest.raises(ValueError, match="unexpected keyword argument 'n_trian'"):
        ensure_simulated(tmp_path / "d", n_trian=300)
    assert not (tmp_path / "d").exists()
