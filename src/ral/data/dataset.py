"""``ImageDataset``: a LabelTable as a torch Dataset of (image, target) pairs."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ral.data.cache import build_cache, cache_failures, decode_failures, decode_row
from ral.data.images import MIN_IMAGE_SIZE
from ral.data.table import LabelTable

# uint8 pixels p are given to the model as (p / 255 - MEAN) / STD, i.e. in [-1, 1].
PIXEL_MEAN = 0.5
PIXEL_STD = 0.5


class ImageDataset(Dataset):
    """Images of a LabelTable, grayscale, resized to a square and normalised.

    Item ``key`` is ``(image, target)``; ``key`` is an index, or ``(epoch, index)`` (what the
    training sampler of :mod:`ral.engine.datamodule` yields):

    - image: float32 tensor (1, image_size, image_size), ``(pixel / 255 - 0.5) / 0.5``.
    - target: multi-label -> float32 (C,) with 1 / 0 / NaN (uncertain, to be ignored by the
      loss); single-label -> int64 scalar class index.

    Args:
        table: the label table (N rows).
        image_size: side S of the square images.
        augment: random shift (up to S/16 px, edge-padded) and brightness/contrast jitter
            (+-10%); no flips (left/right anatomy matters on chest radiographs). The draws come
            from a generator seeded with ``(seed, epoch, index)``: the same item of the same epoch
            is always augmented the same way, in any worker process (an index alone is epoch 0).
        cache_dir: if given, all images are decoded once, in the constructor, into a uint8
            ``.npy`` cache in this folder (see :mod:`ral.data.cache`) that every later epoch
            and run memory-maps. ``None`` decodes the file on every access.
        skip_bad: drop the rows whose image cannot be decoded (checked while the cache is built;
            without a cache every image is decoded once here), with one warning; they are listed
            in :attr:`skipped`. Without it, such an image raises when it is read.
        seed: the augmentation seed.

    Attributes:
        table: the rows kept (all of them unless ``skip_bad`` dropped some).
        skipped: ``{"row", "id", "path", "reason"}`` of each dropped row (``row``: of the given table).

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
        skip_bad: bool = False,
        seed: int = 0,
    ) -> None:
        if not isinstance(image_size, int) or image_size < MIN_IMAGE_SIZE:
            raise ValueError(f"image_size must be an int >= {MIN_IMAGE_SIZE}, got {image_size!r}")
        self.image_size = image_size
        self.augment = augment
        self.seed = int(seed)
        self.cache_file: Path | None = None
        failures: dict[int, str] = {}
        if cache_dir is not None:
            self.cache_file = build_cache(table, image_size, cache_dir, skip_bad=skip_bad)
            failures = cache_failures(self.cache_file)
        elif skip_bad:
            failures = decode_failures(table, image_size)
        if failures and not skip_bad:  # a cache built with skip_bad, read without it
            raise ValueError(failures[min(failures)])
        self.skipped = [
            {"row": row, "id": table.ids[row], "path": str(table.image_path(row)), "reason": reason}
            for row, reason in sorted(failures.items())
        ]
        keep = np.ones(len(table), dtype=bool)
        keep[list(failures)] = False
        self.rows = np.flatnonzero(keep)  # item -> row of the given table (and of the cache)
        if failures:
            warnings.warn(
                f"{table.source or table.root}: skipped {len(failures)} of {len(table)} image(s) that cannot be "
                f"read; first: {self.skipped[0]['reason']}",
                stacklevel=2,
            )
            table = table.subset(self.rows)
        self.table = table
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
        return np.asarray(self._pixels[self.rows[index]])

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        image = torch.from_numpy(self.pixels(index).astype(np.float32) / 255.0)[None]
        if self.augment:
            image = _augment(image, sample_generator(self.seed, epoch, index))
        image = (image - PIXEL_MEAN) / PIXEL_STD
        return image, self.targets[index]


def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A torch generator seeded from ``(seed, epoch, index)`` alone (numpy's SeedSequence mixes them)."""
    state = np.random.SeedSequence((int(seed), int(epoch), int(index))).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def _augment(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random shift + brightness/contrast jitter of a (1, S, S) image in [0, 1], drawn from ``generator``."""
    size = image.shape[-1]
    pad = max(1, size // 16)
    padded = torch.nn.functional.pad(image[None], (pad, pad, pad, pad), mode="replicate")[0]
    dy, dx = torch.randint(0, 2 * pad + 1, (2,), generator=generator).tolist()
    image = padded[:, dy : dy + size, dx : dx + size]
    contrast = 1.0 + (torch.rand((), generator=generator) - 0.5) * 0.2
    brightness = (torch.rand((), generator=generator) - 0.5) * 0.2
    mean = image.mean()
    return ((image - mean) * contrast + mean + brightness).clamp(0.0, 1.0)
