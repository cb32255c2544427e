"""ImageDataset and the preprocessing cache."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from data_helpers import write_tiny_image

import ral.data.cache as cache_module
from ral.data import ImageDataset, cache_path, load_table


@pytest.fixture
def table(tmp_path):
    rows = ["path,subject_id,A,B"]
    for k in range(5):
        write_tiny_image(tmp_path / "img" / f"{k}.png", seed=k, size=(20, 14))
        rows.append(f"img/{k}.png,p{k // 2},{k % 2},{'' if k == 3 else 1}")
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    return load_table(tmp_path / "t.csv")


def test_items_are_normalised_grayscale_and_targets_keep_nan(table):
    ds = ImageDataset(table, image_size=16)
    image, target = ds[3]
    assert image.shape == (1, 16, 16) and image.dtype == torch.float32
    assert float(image.min()) >= -1.0 and float(image.max()) <= 1.0
    assert target.dtype == torch.float32 and target[0] == 1 and torch.isnan(target[1])
    assert len(ds) == 5


def test_pixels_match_a_direct_resize(table):
    from PIL import Image

    with Image.open(table.image_path(0)) as img:
        expected = np.asarray(img.convert("L").resize((16, 16), Image.Resampling.BILINEAR, reducing_gap=2.0))
    image, _ = ImageDataset(table, image_size=16)[0]
    assert np.array_equal(np.rint((image[0].numpy() * 0.5 + 0.5) * 255).astype(np.uint8), expected)


def test_cache_is_built_once_and_reused_without_decoding(table, tmp_path, monkeypatch):
    first = ImageDataset(table, image_size=16, cache_dir=tmp_path / "cache")
    assert first.cache_file is not None and first.cache_file.is_file()
    reference = [first[i][0] for i in range(len(first))]

    def no_decoding(*args, **kwargs):
        raise AssertionError("an image was decoded although the cache exists")

    monkeypatch.setattr(cache_module, "read_image", no_decoding)
    second = ImageDataset(table, image_size=16, cache_dir=tmp_path / "cache")
    assert second.cache_file == first.cache_file
    for i in range(len(second)):
        assert torch.equal(second[i][0], reference[i])
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1


def test_an_interrupted_cache_build_leaves_nothing_behind(table, tmp_path, monkeypatch):
    real = cache_module.read_image

    def fails_on_the_third(path, size):
        if path.name == "2.png":
            raise ValueError(f"cannot decode {path}")
        return real(path, size)

    monkeypatch.setattr(cache_module, "read_image", fails_on_the_third)
    with pytest.raises(ValueError, match=r"cannot decode .*2.png \[row 2"):
        ImageDataset(table, image_size=16, cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_cache_key_follows_image_changes_and_size(table, tmp_path):
    before = cache_path(table, 16, tmp_path)
    assert cache_path(table, 32, tmp_path) != before
    path = table.image_path(2)
    write_tiny_image(path, seed=99, size=(20, 14))
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    assert cache_path(table, 16, tmp_path) != before


def test_dataset_pickles_without_its_memory_map(table, tmp_path):
    ds = ImageDataset(table, image_size=16, cache_dir=tmp_path / "cache")
    ds[0]  # opens the memory map
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._pixels is None and torch.equal(clone[1][0], ds[1][0])
    loader = torch.utils.data.DataLoader(ds, batch_size=2)
    images, targets = next(iter(loader))
    assert images.shape == (2, 1, 16, 16) and targets.shape == (2, 2)


def test_augment_changes_pixels_but_not_shape_or_range(table):
    plain = ImageDataset(table, image_size=32)[0][0]
    torch.manual_seed(0)
    aug = ImageDataset(table, image_size=32, augment=True)
    images = [aug[0][0] for _ in range(4)]
    assert all(im.shape == (1, 32, 32) for im in images)
    assert any(not torch.equal(im, plain) for im in images)
    assert all(float(im.min()) >= -1.0 and float(im.max()) <= 1.0 for im in images)


def test_single_label_targets_are_class_indices(tmp_path):
    for k, cls in enumerate(["cat", "dog", "dog"]):
        write_tiny_image(tmp_path / "tree" / cls / f"{k}.png", seed=k)
    ds = ImageDataset(load_table(tmp_path / "tree"), image_size=16)
    assert [int(ds[i][1]) for i in range(3)] == [0, 1, 1] and ds[0][1].dtype == torch.int64


def test_image_size_is_validated(table):
    with pytest.raises(ValueError, match="image_size must be an int >= 16, got 4"):
        ImageDataset(table, image_size=4)
