"""Plain helpers for the data tests (imported by the test modules)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ral.data import LabelTable, load_table

FIXTURES = Path(__file__).parent / "fixtures"


def write_tiny_image(path: Path, seed: int = 0, size: tuple[int, int] = (12, 10)) -> None:
    """A small random grayscale image (PNG or JPEG by extension)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size=size[::-1], dtype=np.uint8)
    Image.fromarray(pixels, mode="L").save(path)


def assert_bad(path: Path, match: str, *, error: type[Exception] = ValueError, **options) -> None:
    """``load_table(path, check_images="none", **options)`` raises ``error`` with a message matching ``match``."""
    with pytest.raises(error, match=match):
        load_table(path, check_images="none", **options)


def assert_skipped(path: Path, match: str, **options) -> LabelTable:
    """``load_table`` with ``skip_bad=True`` warns (a warning matches ``match``); returns the table."""
    with pytest.warns(UserWarning, match=match):
        return load_table(path, check_images="none", skip_bad=True, **options)
