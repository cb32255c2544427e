"""``ImageDataset``: a LabelTable as a torch Dataset of (image, target) pairs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ral.data.cache import build_cache, decode_row
from ral.data.images import MIN_IMAGE_SIZE
from ral.data.table import LabelTable

# uint8 pixels p are given to the model as (p / 255 - MEAN) / STD, i.e. in [-1, 1].
PIXEL_MEAN = 0.5
PIXEL_STD = 0.5


class ImageDataset(Dataset):
    """Images of a LabelTable, grayscale, resized to a square and normalised.

    Item ``i`` is ``(image, target)``:

    - image: float32 tensor (1, image_size, image_size), ``(pixel / 255 - 0.5) / 0.5``.
    - target: multi-label -> float32 (C,) with 1 / 0 / NaN (uncertain, to be ignored by the
      loss); single-label -> int64 scalar class index.

    Args:
        table: the label table (N rows).
        image_size: side S of the square images.
        augment: random shift (up to S/16 px, edge-padded) and brightness/contrast jitter
            (+-10%); no flips (left/right anatomy matters on chest radiographs).
        cache_dir: if given, all images are decoded once, in the constructor, into a uint8
            ``.npy`` cache in this folder (see :mod:`ral.data.cache`) that every later epoch
            and run memory-maps. ``None`` decodes the file on every access.

    Raises:
        FileNotFoundError / ValueError: a missing or undecodable image (names file and row).
    """

    def __init__(
        self,
        table: LabelTable,
        *,
        image_size: int = 64,
        augment: bool = False,
        cache_dir: str | os.PathLike | None = None,
    ) -> None:
        if not isinstance(image_size, int) or image_size < MIN_IMAGE_SIZE:
            raise ValueError(f"image_size must be an int >= {MIN_IMAGE_SIZE}, got {image_size!r}")
        self.table = table
        self.image_size = image_size
        self.augment = augment
        self.cache_file: Path | None = None
        if cache_dir is not None:
            self.cache_file = build_cache(table, image_size, cache_dir)
        self._pixels: np.ndarray | None = None  # opened lazily, once per worker process
        if table.task == "single":
            self.targets = torch.from_numpy(table.targets_single())
        else:
            self.targets = torch.from_numpy(table.labels.astype(np.float32))

    def __len__(self) -> int:
        return len(self.table)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_pixels"] = None  # never pickle a memory map into DataLoader workers
        return state

    def pixels(self, index: int) -> np.ndarray:
        """uint8 (S, S) pixels of item ``index``, from the cache when there is one."""
        if self.cache_file is None:
            return decode_row(self.table, index, self.image_size)
        if self._pixels is None:
            self._pixels = np.load(self.cache_file, mmap_mode="r")
        return np.asarray(self._pixels[index])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = torch.from_numpy(self.pixels(index).astype(np.float32) / 255.0)[None]
        if self.augment:
            image = _augment(image)
        image = (image - PIXEL_MEAN) / PIXEL_STD
        return image, self.targets[index]


def _augment(image: torch.Tensor) -> torch.Tensor:
    """Random shift + brightness/contrast jitter of a (1, S, S) image in [0, 1] (torch RNG)."""
    size = image.shape[-1]
    pad = max(1, size // 16)
    padded = torch.nn.functional.pad(image[None], (pad, pad, pad, pad), mode="replicate")[0]
    dy, dx = torch.randint(0, 2 * pad + 1, (2,)).tolist()
    image = padded[:, dy : dy + size, dx : dx + size]
    contrast = 1.0 + (torch.rand(()) - 0.5) * 0.2
    brightness = (torch.rand(()) - 0.5) * 0.2
    mean = image.mean()
    return ((image - mean) * contrast + mean + brightness).clamp(0.0, 1.0)
