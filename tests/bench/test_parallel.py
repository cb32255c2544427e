"""`--shard I/N`: shards split the runs, share one folder from several processes, and the last writes the summary."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from filelock import FileLock

from ral.bench.parallel import Shard
from ral.bench.runner import Job, RunBusy, RunStore, run_jobs


def test_shards_cover_every_run_once():
    assert Shard.parse(None) == Shard(1, 1) and Shard.parse(" 2 / 3 ") == Shard(2, 3)
    items = list(range(10))
    parts = [Shard(i, 3).select(items) for i in (1, 2, 3)]
    assert parts[0] == [0, 3, 6, 9] and sorted(sum(parts, [])) == items
    for bad in ("0/2", "3/2", "1-2", "a/b", "1/0"):
        with pytest.raises(ValueError, match="--shard"):
            Shard.parse(bad)


def _slow_work(folder: Path) -> dict:
    (folder / "started").write_text(str(os.getpid()))
    time.sleep(0.3)
    return {"mAP": 0.5, "pid": os.getpid()}


def _jobs(n: int) -> list[Job]:
    return [Job(f"run{i}", {"i": i}, _slow_work, f"run {i}", "mAP") for i in range(n)]


def test_a_run_held_by_another_lock_is_skipped_not_wiped(tmp_path):
    store = RunStore(tmp_path, {"benchmark": "toy"})
    (tmp_path / "runs" / "run0").mkdir(parents=True)
    (tmp_path / "runs" / "run0" / "partial").write_text("in progress elsewhere")
    with FileLock(tmp_path / "locks" / "run0.lock"):  # as another process computing run0 holds it
        with pytest.raises(RunBusy):
            store.run("run0", {"i": 0}, _slow_work)
        lines = []
        done = run_jobs(store, [Job("run0", {"i": 0}, _slow_work, "run 0", "mAP")], log=lines.append)
        assert done == [None] and "being computed by another process" in lines[0]
        assert (tmp_path / "runs" / "run0" / "partial").exists()  # untouched
    result, computed = store.run("run0", {"i": 0}, lambda folder: {"mAP": 0.5})  # released: computed now
    assert computed and result["mAP"] == 0.5 and not (tmp_path / "runs" / "run0" / "partial").exists()


def _shard_process(root: str, index: int, count: int, queue) -> None:
    store = RunStore(root, {"benchmark": "toy"})
    done = run_jobs(store, _jobs(6), Shard(index, count), log=lambda line: None)
    queue.put((index, [r is not None for r in done]))


@pytest.mark.slow
def test_two_processes_share_one_store(tmp_path):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=_shard_process, args=(str(tmp_path), i, 2, queue)) for i in (1, 2)]
    for process in processes:
        process.start()
    outcomes = dict(queue.get(timeout=60) for _ in processes)
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    results = RunStore(tmp_path, {"benchmark": "toy"}).results()
    assert [r["run_id"] for r in results] == [f"run{i}" for i in range(6)]
    by_run = {r["run_id"]: r["pid"] for r in results}
    assert len({by_run["run0"], by_run["run2"], by_run["run4"]}) == 1  # shard 1 took runs 0, 2, 4
    assert by_run["run0"] != by_run["run1"]
    assert json.loads((tmp_path / "bench.json").read_text()) == {"benchmark": "toy"}
    assert any(all(flags) for flags in outcomes.values())  # the later shard saw every run finished
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.slow
def test_two_cli_shards_write_one_loss_benchmark(tmp_path):
    out = tmp_path / "bench"
    ral = [sys.executable, "-c", "import sys; from ral.cli import main; sys.exit(main())"]  # the `ral` command
    command = [*ral, "bench", "losses", "--simulate", "--quick", "--image-size", "16"]
    command += ["--losses", "bce,ral", "--seeds", "2", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    shards = [
        subprocess.Popen([*command, "--shard", f"{i}/2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        for i in (1, 2)
    ]
    logs = [shard.communicate(timeout=300)[0].decode() for shard in shards]
    assert [shard.returncode for shard in shards] == [0, 0], logs
    assert len(list((out / "runs").glob("*/result.json"))) == 4
    results = pd.read_csv(out / "results.csv")  # written by the shard that finished last
    assert sorted(zip(results["loss"], results["seed"])) == [("bce", 0), ("bce", 1), ("ral", 0), ("ral", 1)]
    recorded = (out / "command.txt").read_text()
    assert recorded.strip().endswith(str(out)) and "--shard" not in recorded
    assert any("# Loss comparison" in log for log in logs)  # the summary of every run, by one shard at least
    assert not list(out.rglob("*.tmp"))
