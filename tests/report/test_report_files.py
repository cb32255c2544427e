"""The atomic writer (atomic_path / atomic_write), the JSON / CSV writers and the Markdown table."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ral.report.files as files
from ral.report import atomic_path, atomic_write, markdown_table, stale_temporaries, write_csv, write_json


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_json_round_trip_with_nan_numpy_and_paths(tmp_path):
    obj = {
        "mAP": np.float32(0.5),
        "tail_mAP": float("nan"),
        "inf": np.inf,
        "n": np.int64(3),
        "flag": np.bool_(True),
        "per_class": {"AP": np.array([0.25, np.nan]), "n_pos": np.array([1, 0])},
        "ci": (0.1, 0.9),
        "out": tmp_path / "x",
    }
    path = write_json(obj, tmp_path / "sub" / "metrics.json")
    loaded = json.loads(path.read_text())
    assert loaded == {
        "mAP": 0.5,
        "tail_mAP": None,
        "inf": None,
        "n": 3,
        "flag": True,
        "per_class": {"AP": [0.25, None], "n_pos": [1, 0]},
        "ci": [0.1, 0.9],
        "out": str(tmp_path / "x"),
    }
    assert "NaN" not in path.read_text()


def test_failed_serialisation_leaves_the_old_file_intact(tmp_path):
    path = write_json({"mAP": 0.4}, tmp_path / "metrics.json")
    before = path.read_bytes()
    with pytest.raises(TypeError, match=r"obj\['bad'\] of type object"):
        write_json({"mAP": 0.5, "bad": object()}, path)
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_failure_while_writing_leaves_the_old_file_intact(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("old\n")

    def write_half_then_fail(handle):
        handle.write(b"new, partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, write_half_then_fail)
    assert path.read_text() == "old\n"
    assert _leftovers(tmp_path) == []


def test_atomic_path_yields_a_temporary_in_the_folder_and_moves_it_into_place(tmp_path):
    target = tmp_path / "sub" / "cache.npy"
    with atomic_path(target) as temp:
        assert temp.parent == target.parent and temp.is_file() and not target.exists()
        assert stale_temporaries(target.parent) == [temp]  # the naming scheme .<name>.<random>.tmp
        array = np.lib.format.open_memmap(temp, mode="w+", dtype=np.uint8, shape=(3,))
        array[:] = [1, 2, 3]
        array.flush()
        del array
    assert np.load(target).tolist() == [1, 2, 3]
    assert stale_temporaries(target.parent) == []
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_atomic_path_removes_the_temporary_on_error_and_keeps_the_mode(tmp_path):
    target = tmp_path / "run.sh"
    target.write_text("old\n")
    os.chmod(target, 0o755)
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as temp:
        temp.write_text("partial")
        raise KeyboardInterrupt
    assert target.read_text() == "old\n" and stale_temporaries(tmp_path) == []
    write_json({"a": 1}, target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o755


def test_the_file_and_its_folder_are_fsynced(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def record(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real(fd)

    monkeypatch.setattr(files.os, "fsync", record)
    write_csv(pd.DataFrame({"a": [1]}), tmp_path / "t.csv")
    assert synced == [False, True]  # the file's data first, then the rename in the folder


def test_stale_temporaries_lists_only_the_writers_temporaries(tmp_path):
    (tmp_path / ".last.ckpt.abc123.tmp").write_bytes(b"partial")
    (tmp_path / "notes.tmp").write_text("a user's file")
    (tmp_path / ".hidden").write_text("x")
    assert [p.name for p in stale_temporaries(tmp_path)] == [".last.ckpt.abc123.tmp"]
    assert stale_temporaries(tmp_path / "missing") == []


def test_csv_round_trip_keeps_values_and_writes_nan_as_empty(tmp_path):
    df = pd.DataFrame({"class": ["a", "b"], "AP": [0.125, np.nan], "count": [10, 2]})
    path = write_csv(df, tmp_path / "per_class.csv")
    assert path.read_text().splitlines() == ["class,AP,count", "a,0.125,10", "b,,2"]
    pd.testing.assert_frame_equal(pd.read_csv(path), df)


def test_markdown_table_by_hand():
    df = pd.DataFrame({"loss": ["bce", "a|b"], "mAP": [0.12345, np.nan], "n": [3, 4]})
    assert markdown_table(df, ".3f") == (
        "| loss | mAP | n |\n| --- | ---: | ---: |\n| bce | 0.123 | 3 |\n| a\\|b | n/a | 4 |\n"
    )


def test_markdown_table_shows_a_named_index_and_flattens_multiindex_columns():
    results = pd.DataFrame({"loss": ["ral", "ral", "bce"], "mAP": [0.2, 0.4, 0.1]})
    summary = results.groupby("loss")[["mAP"]].agg(["mean", "std"])
    assert markdown_table(summary, ".2f").splitlines() == [
        "| loss | mAP mean | mAP std |",
        "| --- | ---: | ---: |",
        "| bce | 0.10 | n/a |",
        "| ral | 0.30 | 0.14 |",
    ]


def test_importing_report_loads_no_matplotlib_backend():
    code = "import sys, ral.report, ral.metrics; print('matplotlib.pyplot' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
