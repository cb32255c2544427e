"""Plain helpers for the data tests (imported by the test modules)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

FIXTURES = Path(__file__).parent / "fixtures"


def write_tiny_image(path: Path, seed: int = 0, size: tuple[int, int] = (12, 10)) -> None:
    """A small random grayscale image (PNG or JPEG by extension)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size=size[::-1], dtype=np.uint8)
    Image.fromarray(pixels, mode="L").save(path)
