"""Every command that writes: existing outputs refused unless --overwrite, outputs checked before any
work, OS errors in one line naming the path and the reason (exit status 2)."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pandas as pd
import pytest

import ral.report.files as files
from ral.bench.runner import open_bench_folder
from ral.cli import main
from ral.report.files import check_output, check_writable

SIM = ["--n-train", "200", "--n-val", "200", "--n-test", "200", "--size", "16"]


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "t.csv"
    path.write_text("path,subject_id,A,B\na.png,p,1,0\nb.png,q,0,1\n")
    return path


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    return err


def _commands(tmp_path: Path, table: Path, out: Path) -> dict[str, list[str]]:
    """Each writing command with ``out`` as its output; inputs that do not exist (the output check comes first)."""
    ckpt = str(tmp_path / "missing.ckpt")
    return {
        "predict": ["predict", "--checkpoint", ckpt, "x.png", "--out", str(out)],
        "evaluate": ["evaluate", "--checkpoint", ckpt, "--out", str(out)],
        "simulate": ["data", "simulate", "--out", str(out), *SIM],
        "preview": ["data", "simulate", "--preview", str(out)],
        "stats": ["data", "stats", str(tmp_path / "missing.csv"), "--out", str(out)],
        "bench losses": ["bench", "losses", "--data", str(tmp_path / "missing.csv"), "--out", str(out)],
        "bench sensitivity": ["bench", "sensitivity", "--data", str(tmp_path / "missing.csv"), "--out", str(out)],
        "bench speed": ["bench", "speed", "--shapes", "4x3", "--out", str(out)],
        "bench step": ["bench", "step", "--out", str(out)],
    }


FILE_OUTPUTS = {"predict", "preview"}
COMMANDS = [
    "predict",
    "evaluate",
    "simulate",
    "preview",
    "stats",
    "bench losses",
    "bench sensitivity",
    "bench speed",
    "bench step",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_an_existing_output_is_refused_before_any_work(tmp_path, table, capsys, command):
    out = tmp_path / ("out.csv" if command in FILE_OUTPUTS else "out")
    if command in FILE_OUTPUTS:
        out.write_text("earlier")
    else:
        out.mkdir()
        (out / "earlier.txt").write_text("earlier")
    assert main(_commands(tmp_path, table, out)[command]) == 2
    err = _one_line_error(capsys)
    assert str(out) in err, err
    if command.startswith("bench losses") or command.startswith("bench sensitivity"):
        assert "not a ral benchmark" in err  # a foreign folder: never deleted, --overwrite or not
    else:
        assert "pass --overwrite to replace it" in err
    assert (out.read_text() if command in FILE_OUTPUTS else (out / "earlier.txt").read_text()) == "earlier"


@pytest.mark.parametrize("command", COMMANDS)
def test_an_output_that_cannot_be_created_is_one_line_before_any_work(tmp_path, table, capsys, command):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = blocker / ("out.csv" if command in FILE_OUTPUTS else "out")
    assert main([*_commands(tmp_path, table, out)[command], "--overwrite"]) == 2
    assert _one_line_error(capsys).endswith(f"error: {blocker}: is a file, so no folder can be made in it")


def test_a_folder_where_a_file_is_expected_and_the_reverse(tmp_path, table, capsys):
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    assert main(_commands(tmp_path, table, folder)["predict"] + ["--overwrite"]) == 2
    assert _one_line_error(capsys).endswith(f"error: {folder}: is a folder, expected a file name")
    a_file = tmp_path / "stats-out"
    a_file.write_text("x")
    assert main(["data", "stats", str(table), "--out", str(a_file), "--overwrite"]) == 2
    assert _one_line_error(capsys).endswith(f"error: {a_file}: exists and is not a folder")


def test_permission_denied_is_one_line_naming_the_folder(tmp_path, table, capsys, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(Path(kwargs["dir"]) / ".ral-write-check.x.tmp"))

    monkeypatch.setattr(files.tempfile, "mkstemp", denied)
    assert main(["data", "stats", str(table), "--out", str(tmp_path / "new" / "stats")]) == 2
    err = _one_line_error(capsys)
    assert err.endswith(f"error: {tmp_path}: cannot create files here (Permission denied)"), err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_a_read_only_folder_is_refused_up_front(tmp_path, table, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert main(["data", "stats", str(table), "--out", str(locked / "stats")]) == 2
        assert "Permission denied" in _one_line_error(capsys)
    finally:
        locked.chmod(0o700)


def test_a_full_disk_while_writing_is_one_line_naming_the_file(tmp_path, table, capsys, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    assert main(["data", "stats", str(table), "--out", str(tmp_path / "stats")]) == 2
    err = _one_line_error(capsys)
    assert err.endswith(f"error: {tmp_path / 'stats' / 'stats.json'}: No space left on device"), err
    assert not [p for p in (tmp_path / "stats").iterdir() if p.name.endswith(".tmp")]  # nothing half-written


def test_stats_overwrite_replaces_its_files(tmp_path, table, capsys):
    out = tmp_path / "stats"
    assert main(["data", "stats", str(table), "--out", str(out)]) == 0
    assert main(["data", "stats", str(table), "--out", str(out)]) == 2
    assert main(["data", "stats", str(table), "--out", str(out), "--overwrite"]) == 0
    assert json.loads((out / "stats.json").read_text())["images"] == 2


def test_simulate_overwrite_replaces_an_earlier_simulation_without_stale_images(tmp_path, capsys):
    out = tmp_path / "sim"

    def images() -> int:
        return len(list(out.rglob("*.png")))

    def rows() -> int:
        return sum(len(pd.read_csv(out / f"{split}.csv")) for split in ("train", "val", "test"))

    assert main(["data", "simulate", "--out", str(out), *SIM, "--n-train", "400"]) == 0
    before = images()
    assert main(["data", "simulate", "--out", str(out), *SIM]) == 2
    assert "holds a simulation; pass --overwrite" in _one_line_error(capsys)
    assert main(["data", "simulate", "--out", str(out), *SIM, "--overwrite"]) == 0
    assert images() == rows() < before  # no stale image of the larger simulation is left

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "dataset.json").write_text('{"name": "my data"}')
    assert main(["data", "simulate", "--out", str(foreign), *SIM, "--overwrite"]) == 2
    assert "was not written by ral.data.simulate" in _one_line_error(capsys)


def test_a_benchmark_folder_is_resumed_refused_with_other_settings_or_discarded(tmp_path):
    budget = {"name": "quick", "epochs": 1}
    folder = tmp_path / "bench"
    assert open_bench_folder(folder, settings={"benchmark": "losses", "budget": budget}) == folder
    folder.mkdir()
    (folder / "bench.json").write_text(
        json.dumps({"benchmark": "losses", "budget": budget, "data": {"task": "single"}})
    )
    (folder / "runs").mkdir()
    wanted = {"benchmark": "losses", "budget": budget, "data": {"task": "single"}}
    assert open_bench_folder(folder, settings=wanted) == folder  # same settings: resumed
    assert (folder / "runs").is_dir()
    with pytest.raises(
        ValueError, match=r"other settings \(differs in \['budget.epochs'\]\); use another --out, or --overwrite"
    ):
        open_bench_folder(folder, settings={**wanted, "budget": {**budget, "epochs": 2}})
    with pytest.raises(ValueError, match=r"differs in \['data.task'\]"):
        open_bench_folder(folder, settings={**wanted, "data": {"task": "multilabel"}})
    open_bench_folder(folder, settings={**wanted, "budget": {**budget, "epochs": 2}}, overwrite=True)
    assert not folder.exists()  # discarded

    interrupted = tmp_path / "interrupted"  # killed while simulating: no bench.json yet
    (interrupted / "data").mkdir(parents=True)
    assert open_bench_folder(interrupted, settings=wanted) == interrupted
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(FileExistsError, match="not a ral benchmark"):
        open_bench_folder(foreign, settings=wanted, overwrite=True)
    assert (foreign / "thesis.tex").read_text() == "precious"


def test_the_write_check_helpers(tmp_path):
    assert check_writable(tmp_path / "new" / "deeper" / "file.csv") == tmp_path / "new" / "deeper" / "file.csv"
    assert not (tmp_path / "new").exists()  # checked, not created
    assert not [p for p in tmp_path.iterdir()]  # the probe file is gone
    (tmp_path / "f.csv").write_text("x")
    with pytest.raises(FileExistsError, match=r"f\.csv: the file exists; pass --overwrite"):
        check_output(tmp_path / "f.csv")
    assert check_output(tmp_path / "f.csv", overwrite=True) == tmp_path / "f.csv"
    (tmp_path / "empty").mkdir()
    assert check_output(tmp_path / "empty", folder=True) == tmp_path / "empty"
    with pytest.raises(IsADirectoryError):
        check_output(tmp_path / "empty")
    with pytest.raises(NotADirectoryError):
        check_output(tmp_path / "f.csv", folder=True, overwrite=True)
