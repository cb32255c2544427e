"""Augmentation presets on uint8 images and the input normalisation on the device."""

from __future__ import annotations

import pytest
import torch

from ral.data.transforms import (
    AUGMENTATIONS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    Augmentation,
    InputNormalizer,
    build_augmentation,
    channel_stats,
    normalization,
    sample_seed,
)


def _image(channels: int = 1, size: int = 32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    base = torch.linspace(0, 255, size).expand(size, size)
    noise = torch.randint(-20, 20, (channels, size, size), generator=generator)
    return (base + noise).clamp(0, 255).to(torch.uint8)


@pytest.mark.parametrize("preset", AUGMENTATIONS)
def test_presets_map_uint8_images_to_uint8_images_drawn_from_the_seed(preset):
    augmentation = Augmentation(preset, 32)
    image = _image()
    out = augmentation(image, 7)
    assert out.dtype == torch.uint8 and out.shape == image.shape
    assert torch.equal(augmentation(image, 7), out)  # the seed decides every draw
    if preset == "none":
        assert torch.equal(out, image)
    else:
        assert any(not torch.equal(augmentation(image, seed), out) for seed in range(8, 12))


def test_cxr_preset_keeps_the_channels_alike_and_the_global_monai_setting():
    from monai.data import get_track_meta

    image = _image(3)
    image[1:] = image[0]  # a gray image read as RGB
    out = Augmentation("cxr", 32)(image, 3)
    assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])
    assert get_track_meta()  # MONAI's metadata tracking is off only during the call


def test_hflip_flips_half_of_the_images():
    image = _image()
    augmentation = Augmentation("none", 32, hflip=True)
    flipped = [torch.equal(augmentation(image, seed), image.flip(-1)) for seed in range(40)]
    kept = [torch.equal(augmentation(image, seed), image) for seed in range(40)]
    assert all(a != b for a, b in zip(flipped, kept)) and 10 < sum(flipped) < 30


def test_build_augmentation_reads_the_old_booleans_and_skips_what_changes_nothing():
    assert build_augmentation(False, 32) is None and build_augmentation("none", 32) is None
    assert build_augmentation(True, 32).preset == "light"
    assert build_augmentation("none", 32, hflip=True) is not None
    with pytest.raises(ValueError, match="augmentation must be one of .* got 'heavy'"):
        build_augmentation("heavy", 32)


def test_sample_seed_depends_on_each_part():
    seeds = {sample_seed(s, e, i) for s in range(2) for e in range(2) for i in range(2)}
    assert len(seeds) == 8 and all(0 <= s < 2**32 for s in seeds)
    assert sample_seed(1, 2, 3) == sample_seed(1, 2, 3)


def test_normalizer_computes_pixel_over_255_minus_mean_over_std_and_repeats_gray():
    mean, std = normalization("imagenet", 3)
    assert mean == list(IMAGENET_MEAN) and std == list(IMAGENET_STD)
    normalize = InputNormalizer(mean, std)
    pixels = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    expected = (pixels.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(normalize(pixels), expected)
    gray = pixels[:, :1]
    torch.testing.assert_close(normalize(gray), normalize(gray.expand(-1, 3, -1, -1)))
    unit = InputNormalizer(*normalization("unit", 1))
    torch.testing.assert_close(
        unit(torch.tensor([0, 255], dtype=torch.uint8).view(1, 1, 1, 2)), torch.tensor([-1.0, 1.0]).view(1, 1, 1, 2)
    )
    with pytest.raises(
        ValueError, match=r"images must have shape \(N, 3 or 1, H, W\) for this model, got \(2, 2, 8, 8\)"
    ):
        normalize(pixels[:, :2])
    assert InputNormalizer(mean, std, channels_last=True)(pixels).is_contiguous(memory_format=torch.channels_last)


def test_channel_statistics_fit_the_model_channels():
    assert channel_stats(IMAGENET_MEAN, IMAGENET_STD, 1) == ([sum(IMAGENET_MEAN) / 3], [sum(IMAGENET_STD) / 3])
    assert channel_stats([0.5], [0.25], 3) == ([0.5] * 3, [0.25] * 3)
    with pytest.raises(ValueError, match="statistics of 2 channels do not fit 3 channels"):
        channel_stats([0.1, 0.2], [0.3, 0.4], 3)
    with pytest.raises(ValueError, match="normalize must be one of"):
        normalization("cifar", 3)
