"""``ImageDataset``: a LabelTable as a torch Dataset of (uint8 image, target) pairs."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ral.data.cache import build_cache, cache_failures, decode_failures, decode_row
from ral.data.images import MAX_IMAGE_PIXELS, MIN_IMAGE_SIZE, is_colour, pixel_limit
from ral.data.table import LabelTable
from ral.data.transforms import build_augmentation, sample_seed

#: Images whose header :func:`read_channels` looks at.
COLOUR_PROBES = 8


def read_channels(table: LabelTable, channels: int) -> int:
    """The channels to read the images of ``table`` in for a model with ``channels`` inputs.

    1 for a one-channel model; for a three-channel model 3 (RGB) if one of up to
    :data:`COLOUR_PROBES` images spread over the table is in colour (only headers are read),
    else 1: a grayscale set (chest radiographs) is read, cached and shipped as one channel and
    repeated to three on the device (:class:`ral.data.transforms.InputNormalizer`).
    """
    if channels == 1 or len(table) == 0:
        return 1
    for row in sorted({int(i) for i in np.linspace(0, len(table) - 1, min(len(table), COLOUR_PROBES))}):
        try:
            if is_colour(table.image_path(row)):
                return 3
        except (OSError, ValueError):
            continue  # a missing or broken file is reported where the images are read
    return 1


class ImageDataset(Dataset):
    """Images of a LabelTable as uint8 tensors, resized to a square; normalised later, on the device.

    Item ``key`` is ``(image, target)``; ``key`` is an index, or ``(epoch, index)`` (what the
    training sampler of :mod:`ral.engine.datamodule` yields):

    - image: uint8 tensor (channels, image_size, image_size) of pixel values (see
      :class:`ral.data.transforms.InputNormalizer` for what the model is given).
    - target: multi-label -> float32 (C,) with 1 / 0 / NaN (uncertain, to be ignored by the
      loss); single-label -> int64 scalar class index.

    Args:
        table: the label table (N rows).
        image_size: side S of the square images.
        channels: 1 (grayscale; colour images are converted to luminance) or 3 (RGB); see
            :func:`read_channels` for what a three-channel model should be given.
        augment: a preset of :data:`ral.data.transforms.AUGMENTATIONS` ("none", "light", "cxr";
            ``True`` = "light", ``False`` = "none"). The draws come from a seed derived from
            ``(seed, epoch, index)``: the same item of the same epoch is always augmented the same
            way, in any worker process (an index alone is epoch 0).
        hflip: also flip horizontally with probability 0.5.
        cache_dir: if given, all images are decoded once, in the constructor, into a uint8
            ``.npy`` cache in this folder (see :mod:`ral.data.cache`) that every later epoch,
            process and run memory-maps. ``None`` decodes the file on every access.
        cache_workers: decoding processes of a cache build (default: the CPU count).
        cache_must_exist: refuse to build a cache that is missing or out of date.
        skip_bad: drop the rows whose image cannot be decoded (checked while the cache is built;
            without a cache every image is decoded once here), with one warning; they are listed
            in :attr:`skipped`. Without it, such an image raises when it is read.
        seed: the augmentation seed.
        max_image_pixels: an image of more pixels is not decoded but refused as a bad image
            (dropped with ``skip_bad``); None: no limit (see :func:`ral.data.images.pixel_limit`).

    Attributes:
        table: the rows kept (all of them unless ``skip_bad`` dropped some).
        skipped: ``{"row", "id", "path", "reason"}`` of each dropped row (``row``: of the given table).

    Raises:
        FileNotFoundError / ValueError: a missing or undecodable image (names file and row), bad
            arguments, or a missing cache with ``cache_must_exist``.
    """

    def __init__(
        self,
        table: LabelTable,
        *,
        image_size: int = 64,
        channels: int = 1,
        augment: str | bool = "none",
        hflip: bool = False,
        cache_dir: str | os.PathLike | None = None,
        cache_workers: int | None = None,
        cache_must_exist: bool = False,
        skip_bad: bool = False,
        seed: int = 0,
        max_image_pixels: int | None = MAX_IMAGE_PIXELS,
    ) -> None:
        if not isinstance(image_size, int) or image_size < MIN_IMAGE_SIZE:
            raise ValueError(f"image_size must be an int >= {MIN_IMAGE_SIZE}, got {image_size!r}")
        if channels not in (1, 3) or isinstance(channels, bool):
            raise ValueError(f"channels must be 1 or 3, got {channels!r}")
        self.image_size, self.channels = image_size, channels
        self.augmentation = build_augmentation(augment, image_size, hflip=hflip)
        self.seed = int(seed)
        self.max_image_pixels = max_image_pixels
        self.cache_file: Path | None = None
        with pixel_limit(max_image_pixels):
            failures = self._prepare(table, cache_dir, cache_workers, cache_must_exist, skip_bad)
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

    def _prepare(
        self,
        table: LabelTable,
        cache_dir: str | os.PathLike | None,
        workers: int | None,
        must_exist: bool,
        skip_bad: bool,
    ) -> dict[int, str]:
        """Build (or find) the cache, or (``skip_bad``) decode every image once; ``{row: reason}`` of failures."""
        if cache_dir is not None:
            self.cache_file = build_cache(
                table,
                self.image_size,
                cache_dir,
                channels=self.channels,
                skip_bad=skip_bad,
                workers=workers,
                must_exist=must_exist,
            )
            return cache_failures(self.cache_file)
        return decode_failures(table, self.image_size, self.channels) if skip_bad else {}

    def __len__(self) -> int:
        return len(self.table)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_pixels"] = None  # never pickle a memory map into DataLoader workers
        return state

    def pixels(self, index: int) -> np.ndarray:
        """uint8 (channels, S, S) pixels of item ``index`` (a copy), from the cache when there is one."""
        if self.cache_file is None:
            with pixel_limit(self.max_image_pixels):
                return decode_row(self.table, index, self.image_size, self.channels)
        if self._pixels is None:
            self._pixels = np.load(self.cache_file, mmap_mode="r")
        return np.array(self._pixels[self.rows[index]])

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        image = torch.from_numpy(self.pixels(index))
        if self.augmentation is not None:
            image = self.augmentation(image, sample_seed(self.seed, epoch, index))
        return image, self.targets[index]
