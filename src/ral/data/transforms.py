"""Augmentation presets (uint8 images, in the loader) and the input normalisation (float, on the device).

The loader ships uint8 pixels (a quarter of float32's bytes); the model's device turns them into
normalised floats with :class:`InputNormalizer`, as the first step of the forward pass.

Presets (``dataset.augment``):

- ``none``: the image as read.
- ``light``: random shift of up to S/16 px (edge-padded) and brightness / contrast jitter of +-10%.
- ``cxr`` (MONAI transforms): random affine (rotation up to 10 degrees, scale +-15%, so a random
  resized crop when zooming in, shift up to 6% of the side, zero padding) in 90% of the images,
  then gamma in [0.8, 1.25] (30%), contrast +-20% around the mean (50%) and brightness +-0.1 (50%).

``hflip`` adds a horizontal flip with probability 0.5 to any preset (off by default: left and
right matter on chest radiographs). Every random draw of an image comes from one seed, which
:class:`~ral.data.ImageDataset` derives from ``(seed, epoch, index)`` (:func:`sample_seed`), so an
image is augmented the same way in any loader worker and after any resume.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor, nn

AUGMENTATIONS = ("none", "light", "cxr")
NORMALIZATIONS = ("unit", "imagenet")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 32-bit seed derived from ``(seed, epoch, index)`` alone (numpy's SeedSequence mixes them)."""
    return int(np.random.SeedSequence((int(seed), int(epoch), int(index))).generate_state(1, dtype=np.uint32)[0])


def _light(image: Tensor, generator: torch.Generator) -> Tensor:
    """Random shift + brightness/contrast jitter of a (C, S, S) image in [0, 1], drawn from ``generator``."""
    size = image.shape[-1]
    pad = max(1, size // 16)
    padded = torch.nn.functional.pad(image[None], (pad, pad, pad, pad), mode="replicate")[0]
    dy, dx = torch.randint(0, 2 * pad + 1, (2,), generator=generator).tolist()
    image = padded[:, dy : dy + size, dx : dx + size]
    contrast = 1.0 + (torch.rand((), generator=generator) - 0.5) * 0.2
    brightness = (torch.rand((), generator=generator) - 0.5) * 0.2
    mean = image.mean()
    return (image - mean) * contrast + mean + brightness


def _cxr(image_size: int):  # -> monai.transforms.Compose
    from monai.transforms import (
        Compose,
        RandAdjustContrast,
        RandAffine,
        RandScaleIntensityFixedMean,
        RandShiftIntensity,
    )

    shift = 0.06 * image_size
    return Compose(
        [
            RandAffine(
                prob=0.9,
                rotate_range=math.radians(10),
                scale_range=(0.15, 0.15),
                translate_range=(shift, shift),
                padding_mode="zeros",
                mode="bilinear",
            ),
            RandAdjustContrast(prob=0.3, gamma=(0.8, 1.25)),  # before the shifts: gamma needs values >= 0
            RandScaleIntensityFixedMean(prob=0.5, factors=0.2),
            RandShiftIntensity(prob=0.5, offsets=0.1),
        ]
    )


@contextlib.contextmanager
def _plain_tensors() -> Iterator[None]:
    """MONAI without its metadata tracking (half the cost per image); the setting is restored after."""
    from monai.data import get_track_meta, set_track_meta

    before = get_track_meta()
    set_track_meta(False)
    try:
        yield
    finally:
        set_track_meta(before)


class Augmentation:
    """A preset of :data:`AUGMENTATIONS` (+ optional horizontal flip) for uint8 (C, S, S) images.

    Args:
        preset: "none", "light" or "cxr" (see the module docstring).
        image_size: S. hflip: flip horizontally with probability 0.5.

    Call: ``augmentation(image uint8 (C, S, S), seed) -> uint8 (C, S, S)``; the same seed gives
    the same image.
    """

    def __init__(self, preset: str, image_size: int, *, hflip: bool = False) -> None:
        if preset not in AUGMENTATIONS:
            raise ValueError(f"augmentation must be one of {AUGMENTATIONS}, got {preset!r}")
        self.preset, self.image_size, self.hflip = preset, image_size, bool(hflip)
        self._monai = _cxr(image_size) if preset == "cxr" else None

    def __repr__(self) -> str:
        return f"Augmentation({self.preset!r}, image_size={self.image_size}, hflip={self.hflip})"

    def __call__(self, image: Tensor, seed: int) -> Tensor:
        x = image.float() / 255.0
        generator = torch.Generator().manual_seed(int(seed))
        if self.preset == "light":
            x = _light(x, generator)
        elif self._monai is not None:
            self._monai.set_random_state(seed=int(seed))
            with _plain_tensors():
                x = torch.as_tensor(self._monai(x))
        if self.hflip and float(torch.rand((), generator=generator)) < 0.5:
            x = x.flip(-1)
        return (x.clamp(0.0, 1.0) * 255.0).round_().to(torch.uint8)


def build_augmentation(preset: str | bool, image_size: int, *, hflip: bool = False) -> Augmentation | None:
    """The augmentation of ``preset`` (``True`` = "light", ``False`` = "none"); None when it changes nothing."""
    if isinstance(preset, bool):
        preset = "light" if preset else "none"
    augmentation = Augmentation(preset, image_size, hflip=hflip)
    return None if preset == "none" and not hflip else augmentation


def channel_stats(mean: Sequence[float], std: Sequence[float], channels: int) -> tuple[list[float], list[float]]:
    """Per-channel ``(mean, std)`` for ``channels`` channels from statistics of 1 or ``channels`` channels
    (three-channel statistics for one channel: their averages, a gray image being R = G = B).

    Raises:
        ValueError: the statistics cannot be fitted to ``channels``.
    """
    mean, std = [float(v) for v in mean], [float(v) for v in std]
    if len(mean) != len(std) or not mean:
        raise ValueError(f"mean and std need the same number of values, got {mean} and {std}")
    if len(mean) == channels:
        return mean, std
    if channels == 1:
        return [sum(mean) / len(mean)], [sum(std) / len(std)]
    if len(mean) == 1:
        return mean * channels, std * channels
    raise ValueError(f"statistics of {len(mean)} channels do not fit {channels} channels")


def normalization(name: str, channels: int) -> tuple[list[float], list[float]]:
    """Per-channel ``(mean, std)`` of normalisation ``name`` for ``channels`` input channels.

    "unit": 0.5 / 0.5, i.e. pixels in [-1, 1]. "imagenet": ImageNet's RGB statistics (see
    :func:`channel_stats` for one channel).

    Raises:
        ValueError: unknown name, or channels not 1 or 3.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    if name == "unit":
        return channel_stats([0.5], [0.5], channels)
    if name == "imagenet":
        return channel_stats(IMAGENET_MEAN, IMAGENET_STD, channels)
    raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {name!r}")


class InputNormalizer(nn.Module):
    """uint8 pixels (N, c, H, W) -> float32 ``(pixel / 255 - mean) / std`` (N, C, H, W), on their device.

    ``c`` is C, or 1 for a grayscale image given to a C-channel model (the channel is repeated).
    Any dtype is accepted and read as pixel values in [0, 255].

    Args:
        mean, std: per-channel statistics (C values each, in [0, 1] pixel units).
        channels_last: return the batch in the channels-last memory format.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], *, channels_last: bool = False) -> None:
        super().__init__()
        if len(mean) != len(std) or not mean or any(s <= 0 for s in std):
            raise ValueError(f"mean and std need one value per channel (std > 0), got {list(mean)} and {list(std)}")
        self.mean, self.std = [float(m) for m in mean], [float(s) for s in std]
        self.channels = len(self.mean)
        self.channels_last = channels_last
        scale = torch.tensor([1.0 / (255.0 * s) for s in self.std]).view(1, -1, 1, 1)
        offset = torch.tensor([-m / s for m, s in zip(self.mean, self.std)]).view(1, -1, 1, 1)
        self.register_buffer("scale", scale, persistent=False)
        self.register_buffer("offset", offset, persistent=False)

    def extra_repr(self) -> str:
        return f"mean={self.mean}, std={self.std}, channels_last={self.channels_last}"

    def forward(self, pixels: Tensor) -> Tensor:
        """(N, c, H, W) pixels -> (N, C, H, W) float32."""
        if pixels.ndim != 4 or pixels.shape[1] not in (1, self.channels):
            raise ValueError(
                f"images must have shape (N, {self.channels} or 1, H, W) for this model, got {tuple(pixels.shape)}"
            )
        x = pixels.to(self.scale.dtype)
        if x.shape[1] != self.channels:
            x = x.expand(-1, self.channels, -1, -1)
        out = torch.addcmul(self.offset, x, self.scale)
        return out.contiguous(memory_format=torch.channels_last) if self.channels_last else out
