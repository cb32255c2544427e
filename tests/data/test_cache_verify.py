"""Image caches are verified before use: a truncated, emptied or overwritten cache is rebuilt (or refused
with dataset.cache_must_exist), `ral data cache` says what it did, a full disk is one error naming the
cache folder, and a killed build leaves no worker behind."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

import ral.data.cache as cache_module
from ral import cli
from ral.data import load_table
from ral.data.cache import audit_caches, build_cache, cache_problem, info_path

N_IMAGES = 40  # 14 checksum blocks of 3 rows at 16 px: more than a sampled check reads


@pytest.fixture
def images(tmp_path, write_image):
    """A 40-row table of small PNGs (one class)."""
    lines = ["path,A"] + [f"img/{k:02d}.png,{k % 2}" for k in range(N_IMAGES)]
    for k in range(N_IMAGES):
        write_image(tmp_path / "img" / f"{k:02d}.png", seed=k)
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    return load_table(tmp_path / "t.csv")


def _build(table, cache_dir, **options) -> Path:
    return build_cache(table, 16, cache_dir, workers=1, **options)


def _overwrite(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as handle:  # as `dd conv=notrunc` does
        handle.seek(offset)
        handle.write(data)


def _damage(cache: Path, how: str) -> None:
    if how == "truncated":
        os.truncate(cache, 1000)
    elif how == "zero bytes":
        cache.write_bytes(b"")
    elif how == "header overwritten":
        _overwrite(cache, 0, b"XXXXXXXX")
    elif how == "shape in the header":
        _overwrite(cache, cache.read_bytes().index(b"(40,"), b"(41,")
    else:  # pixels of the first block (always checked)
        _overwrite(cache, json.loads(info_path(cache).read_text())["offset"] + 5, b"\xff\x00\xff")


@pytest.mark.parametrize("how", ["truncated", "zero bytes", "header overwritten", "shape in the header", "pixels"])
def test_a_damaged_cache_is_rebuilt_saying_why(images, tmp_path, capsys, how):
    cache = _build(images, tmp_path / "cache")
    pixels = np.load(cache).copy()
    _damage(cache, how)
    assert cache_problem(cache, images) is not None
    with audit_caches() as actions:
        assert _build(images, tmp_path / "cache") == cache
    assert actions[cache].startswith("rebuilt: ")
    assert f"ral: image cache {cache} cannot be used (" in capsys.readouterr().err
    assert np.array_equal(np.load(cache), pixels) and cache_problem(cache, images) is None
    with pytest.raises(
        FileNotFoundError, match=rf"image cache {cache} .* is out of date or damaged \(.*\) and dataset"
    ):
        _damage(cache, how)
        _build(images, tmp_path / "cache", must_exist=True)


def test_every_block_is_checked_with_verify(images, tmp_path):
    cache = _build(images, tmp_path / "cache")
    info = json.loads(info_path(cache).read_text())
    assert info["shape"] == [N_IMAGES, 1, 16, 16] and info["dtype"] == "|u1" and len(info["blocks"]) == 14
    middle = info["offset"] + 7 * info["block_rows"] * 16 * 16  # block 7, which the sample may skip
    _overwrite(cache, middle, b"\x01\x02")
    reason = cache_problem(cache, images, full=True)
    assert reason == "the pixels of rows 21-23 differ from those written (checksum)"
    with audit_caches(full=True) as actions:
        _build(images, tmp_path / "cache")
    assert actions == {cache: f"rebuilt: {reason}"}
    with audit_caches(full=True) as actions:
        _build(images, tmp_path / "cache")
    assert actions == {cache: "kept (every block checked)"}


def test_ral_data_cache_says_what_it_did(images, tmp_path, capsys):
    config = {
        "dataset": {
            "train": str(images.source),
            "image_size": 16,
            "cache_dir": str(tmp_path / "c"),
            "cache_workers": 1,
        },
        "model": {"backbone": "tiny"},
    }
    path = tmp_path / "cache.yaml"
    path.write_text(yaml.safe_dump(config))
    cache = _build(images, tmp_path / "c")  # as `ral data cache` builds it: same key
    size = cache.stat().st_size
    os.truncate(cache, 100)
    assert cli.main(["data", "cache", "--config", str(path), "--verify"]) == 0
    expected = f"image cache {cache}: rebuilt: the file has 100 bytes, expected {size} (truncated or overwritten)\n"
    assert capsys.readouterr().out == expected and cache.stat().st_size == size


@pytest.mark.parametrize("call", ["posix_fallocate", "pwrite"])
def test_a_full_disk_is_one_error_naming_the_cache_folder_and_leaves_nothing(images, tmp_path, monkeypatch, call):
    def full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(cache_module.os, call, full)
    with pytest.raises(OSError) as info:
        _build(images, tmp_path / "cache")
    assert info.value.filename == str(tmp_path / "cache") and "no space left for the image cache" in info.value.strerror
    assert "\n" not in str(info.value) and list((tmp_path / "cache").iterdir()) == []


def _slow_build(images, tmp_path, child_pids) -> tuple[subprocess.Popen, list[int]]:
    """``ral data cache`` of ``images`` with 2 workers, each image taking 0.5 s, in a process group of
    its own (Ctrl+C reaches a whole group), once both workers run: the process and the workers."""
    config = {"dataset": {"train": str(images.source), "image_size": 16, "cache_dir": str(tmp_path / "cache")}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({**config, "model": {"backbone": "tiny"}}))
    script = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"  # a background job starts with it ignored
        "import ral.data.cache as c\n"
        "from ral import cli\n"
        "real = c.decode_row\n"
        "c.decode_row = lambda *a: (time.sleep(0.5), real(*a))[1]\n"
        f"sys.exit(cli.main(['data', 'cache', '--config', {str(tmp_path / 'c.yaml')!r}, 'dataset.cache_workers=2']))\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while len(workers := child_pids(parent.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(workers) == 2, parent.stderr.read() if parent.poll() is not None else "no workers"
    return parent, workers


def _gone(pids: list[int]) -> bool:
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not any(Path(f"/proc/{pid}").exists() for pid in pids)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and PR_SET_PDEATHSIG are Linux's")
def test_killing_a_cache_build_leaves_no_worker_behind(images, tmp_path, child_pids):
    parent, workers = _slow_build(images, tmp_path, child_pids)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert _gone(workers), "orphan workers"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_ctrl_c_stops_a_cache_build_in_one_line_and_leaves_nothing(images, tmp_path, child_pids):
    parent, workers = _slow_build(images, tmp_path, child_pids)
    os.killpg(parent.pid, signal.SIGINT)  # as a terminal's Ctrl+C: to the command and its workers
    _, err = parent.communicate(timeout=60)
    assert parent.returncode == 130 and err.splitlines()[-1] == "ral data cache: interrupted", err
    assert "Traceback" not in err and _gone(workers) and list((tmp_path / "cache").iterdir()) == []


@pytest.mark.slow
def test_a_full_tmpfs_is_one_error_naming_the_cache_folder(images, tmp_path):
    mount = tmp_path / "full"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        for workers in (1, 2):
            with pytest.raises(OSError) as info:
                build_cache(images, 64, mount / "cache", workers=workers)
            assert info.value.filename == str(mount / "cache") and info.value.errno == errno.ENOSPC
            assert list((mount / "cache").iterdir()) == []
    finally:
        subprocess.run(["umount", str(mount)], check=False)
