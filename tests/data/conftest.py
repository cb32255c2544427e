"""Fixtures for the data tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from data_helpers import FIXTURES


@pytest.fixture
def fixture_copy(tmp_path: Path):
    """Copy a fixture CSV into a fresh folder (optionally renamed); returns its new path."""

    def copy(name: str, folder: str = "data", as_name: str | None = None) -> Path:
        dest = tmp_path / folder / (as_name or name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIXTURES / name, dest)
        return dest

    return copy
