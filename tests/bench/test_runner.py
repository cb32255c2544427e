"""The run store: finished runs are never repeated, interrupted ones are, settings are pinned."""

from __future__ import annotations

import json

import pytest

from ral.bench.runner import RunStore


def test_finished_run_is_not_repeated(tmp_path):
    calls = []

    def work(folder):
        calls.append(folder.name)
        (folder / "artifact.txt").write_text("x")
        return {"mAP": 0.5}

    store = RunStore(tmp_path, {"budget": "quick"})
    first, computed = store.run("bce__seed0", {"loss": "bce", "seed": 0}, work)
    assert computed and first["mAP"] == 0.5 and calls == ["bce__seed0"]

    again = RunStore(tmp_path, {"budget": "quick"})  # a new process resuming the benchmark
    second, computed = again.run("bce__seed0", {"loss": "bce", "seed": 0}, work)
    assert not computed and second == first and calls == ["bce__seed0"]


def test_interrupted_run_is_restarted_from_a_clean_folder(tmp_path):
    store = RunStore(tmp_path, {"budget": "quick"})

    def crash(folder):
        (folder / "partial.ckpt").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.run("ral__seed1", {"loss": "ral"}, crash)
    folder = store.run_dir("ral__seed1")
    assert not (folder / "result.json").exists() and store.results() == []

    seen = []

    def work(folder):
        seen.append(sorted(p.name for p in folder.iterdir()))
        return {"mAP": 0.25}

    result, computed = store.run("ral__seed1", {"loss": "ral"}, work)
    assert computed and seen == [[]] and result["mAP"] == 0.25
    assert [r["run_id"] for r in store.results()] == ["ral__seed1"]


def test_changed_spec_reruns_and_changed_settings_are_refused(tmp_path):
    store = RunStore(tmp_path, {"budget": "quick", "image_size": (32, 32)})
    store.run("ral__seed0", {"loss": "ral", "params": {"lam": 1.5}}, lambda f: {"mAP": 0.1})
    result, computed = store.run("ral__seed0", {"loss": "ral", "params": {"lam": 2.0}}, lambda f: {"mAP": 0.2})
    assert computed and result["mAP"] == 0.2
    # tuples and lists are the same setting once stored as JSON
    RunStore(tmp_path, {"budget": "quick", "image_size": [32, 32]})
    with pytest.raises(ValueError, match="budget"):
        RunStore(tmp_path, {"budget": "default", "image_size": [32, 32]})
    assert json.loads((tmp_path / "bench.json").read_text())["budget"] == "quick"


def test_bad_run_id_is_rejected(tmp_path):
    store = RunStore(tmp_path, {})
    with pytest.raises(ValueError, match="run_id"):
        store.run_dir("../escape")
