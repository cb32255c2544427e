"""Progress bars (ral.progress): on a terminal only, off with --quiet, with rate and ETA."""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from ral.progress import bars_shown, is_quiet, printing, progress, quiet

# "2000/2000 [00:00<00:00, 5004.31image/s]": count / total, elapsed < remaining (ETA), rate
BAR = re.compile(r"(\d+)/(\d+) \[\d\d:\d\d<(\d\d:\d\d|\?), ([\d.]+|\?)image/s\]")


class Terminal(io.StringIO):
    """A stderr that says it is a terminal (tqdm draws only on one)."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Callable[[], Terminal]:
    """``terminal()`` replaces sys.stderr by a captured terminal and returns it (called in the test
    itself: pytest's own capture sets sys.stderr again when the test starts)."""

    def install() -> Terminal:
        stream = Terminal()
        monkeypatch.setattr(sys, "stderr", stream)
        return stream

    return install


def test_bar_shows_on_a_terminal_only(terminal: Callable[[], Terminal]) -> None:
    screen = terminal()
    assert list(progress(range(3), desc="count", unit="image")) == [0, 1, 2]
    assert "count: 100%" in screen.getvalue() and "3/3" in screen.getvalue()
    not_a_terminal = io.StringIO()
    list(progress(range(3), desc="count", file=not_a_terminal))
    assert not_a_terminal.getvalue() == ""  # CI logs, pipes and files get no bar at all


def test_quiet_switches_bars_off_inside_its_block_only(terminal: Callable[[], Terminal]) -> None:
    screen = terminal()
    with quiet():
        assert is_quiet()
        with quiet(False):  # an inner block without --quiet keeps the outer state
            assert is_quiet()
            list(progress(range(3), desc="hidden"))
        assert not bars_shown(Terminal())  # the rule Lightning's training bar follows too
    assert not is_quiet() and bars_shown(Terminal()) and not bars_shown(io.StringIO())
    assert "hidden" not in screen.getvalue()
    list(progress(range(3), desc="shown"))
    assert "shown" in screen.getvalue()


def test_printing_clears_the_bar_before_a_line(
    terminal: Callable[[], Terminal], capsys: pytest.CaptureFixture[str]
) -> None:
    screen = terminal()
    with progress(total=2, desc="runs", unit="run") as bar:
        bar.update()
        before = len(screen.getvalue())
        with printing():
            print("run 1 of 2 done")
        assert "\r" in screen.getvalue()[before:]  # cleared, then redrawn
    assert capsys.readouterr().out == "run 1 of 2 done\n"


@pytest.fixture
def one_image_table(tmp_path: Path) -> Callable[[int], object]:
    """``table(n)``: a LabelTable of ``n`` rows that all read one 16x16 PNG."""
    from ral.data.table import LabelTable

    Image.fromarray(np.full((16, 16), 128, np.uint8)).save(tmp_path / "a.png")

    def table(n: int) -> LabelTable:
        ids = [str(i) for i in range(n)]
        labels = np.zeros((n, 1), np.float32)
        return LabelTable(
            ids=ids, paths=["a.png"] * n, subject_ids=ids, class_names=["A"], labels=labels, root=tmp_path
        )

    return table


def test_cache_build_of_2000_images_shows_rate_and_eta(
    terminal: Callable[[], Terminal], one_image_table: Callable[[int], object], tmp_path: Path
) -> None:
    from ral.data.cache import build_cache

    screen = terminal()
    cache = build_cache(one_image_table(2000), 16, tmp_path / "cache", workers=1)
    assert np.load(cache, mmap_mode="r").shape == (2000, 1, 16, 16)
    text = screen.getvalue()
    assert "image cache" in text
    bars = BAR.findall(text)
    assert bars and bars[-1][:2] == ("2000", "2000")
    assert bars[-1][2] != "?" and float(bars[-1][3]) > 0  # a remaining time and a rate once images are done


def test_quiet_flag_of_a_command_hides_its_bars(
    terminal: Callable[[], Terminal], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ral.cli import main

    screen = terminal()
    for i in range(12):
        Image.fromarray(np.full((16, 16), 10 * i, np.uint8)).save(tmp_path / f"{i}.png")
    rows = "".join(f"{i}.png,p{i},{i % 2}\n" for i in range(12))
    (tmp_path / "train.csv").write_text("path,subject_id,A\n" + rows, encoding="utf-8")
    dataset = {"train": str(tmp_path / "train.csv"), "image_size": 16, "cache_workers": 1}
    config = {"output_dir": str(tmp_path / "run"), "dataset": {**dataset, "cache_dir": str(tmp_path / "cache")}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    assert main(["data", "cache", "--config", str(path), "--quiet"]) == 0
    assert ".npy" in capsys.readouterr().out  # the command ran (and printed its cache)
    assert not BAR.search(screen.getvalue())
    config["dataset"]["cache_dir"] = str(tmp_path / "other")
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    assert main(["data", "cache", "--config", str(path)]) == 0
    assert BAR.search(screen.getvalue())
