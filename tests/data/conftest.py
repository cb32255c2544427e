"""Fixtures for the data tests: the fixture tables, tiny images, and the checks of a bad table."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ral.data import LabelTable, TableError, load_table

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def fixtures_dir() -> Path:
    """The folder of the fixture tables (tests/data/fixtures; read-only: copy before editing)."""
    return FIXTURES


@pytest.fixture
def fixture_copy(tmp_path: Path):
    """Copy a fixture CSV into a fresh folder (optionally renamed); returns its new path."""

    def copy(name: str, folder: str = "data", as_name: str | None = None) -> Path:
        dest = tmp_path / folder / (as_name or name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIXTURES / name, dest)
        return dest

    return copy


@pytest.fixture
def write_image():
    """``write_image(path, seed=0, size=(12, 10))``: a small random grayscale image (PNG or JPEG by extension)."""

    def write(path: Path, seed: int = 0, size: tuple[int, int] = (12, 10)) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = np.random.default_rng(seed).integers(0, 256, size=size[::-1], dtype=np.uint8)
        Image.fromarray(pixels, mode="L").save(path)

    return write


@pytest.fixture
def assert_bad():
    """``assert_bad(path, match, error=TableError, **options)``: ``load_table(path, check_images="none",
    **options)`` raises ``error`` with a message matching ``match``; returns the error."""

    def check(path: Path, match: str, *, error: type[Exception] = TableError, **options) -> Exception:
        with pytest.raises(error, match=match) as caught:
            load_table(path, check_images="none", **options)
        return caught.value

    return check


@pytest.fixture
def assert_skipped():
    """``assert_skipped(path, match, **options)``: ``load_table`` with ``skip_bad=True`` warns (a warning
    matches ``match``); returns the table."""

    def check(path: Path, match: str, **options) -> LabelTable:
        with pytest.warns(UserWarning, match=match):
            return load_table(path, check_images="none", skip_bad=True, **options)

    return check
