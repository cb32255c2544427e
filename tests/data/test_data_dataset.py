"""ImageDataset and the preprocessing cache."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import ral.data.cache as cache_module
from ral.data import ImageDataset, cache_path, load_table


@pytest.fixture
def table(tmp_path, write_image):
    rows = ["path,subject_id,A,B"]
    for k in range(5):
        write_image(tmp_path / "img" / f"{k}.png", seed=k, size=(20, 14))
        rows.append(f"img/{k}.png,p{k // 2},{k % 2},{'' if k == 3 else 1}")
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    return load_table(tmp_path / "t.csv")


def test_items_are_uint8_grayscale_and_targets_keep_nan(table):
    ds = ImageDataset(table, image_size=16)
    image, target = ds[3]
    assert image.shape == (1, 16, 16) and image.dtype == torch.uint8  # normalised on the device
    assert target.dtype == torch.float32 and target[0] == 1 and torch.isnan(target[1])
    assert len(ds) == 5


def test_pixels_match_a_direct_resize(table):
    from PIL import Image

    with Image.open(table.image_path(0)) as img:
        expected = np.asarray(img.convert("L").resize((16, 16), Image.Resampling.BILINEAR, reducing_gap=2.0))
    image, _ = ImageDataset(table, image_size=16)[0]
    assert np.array_equal(image[0].numpy(), expected)


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

    def fails_on_the_third(path, size, **kwargs):
        if path.name == "2.png":
            raise ValueError(f"cannot decode {path}")
        return real(path, size, **kwargs)

    monkeypatch.setattr(cache_module, "read_image", fails_on_the_third)
    with pytest.raises(ValueError, match=r"cannot decode .*2.png \[row 2"):
        ImageDataset(table, image_size=16, cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_cache_key_follows_paths_size_and_channels_without_touching_files(table, tmp_path, monkeypatch):
    before = cache_path(table, 16, tmp_path)
    assert cache_path(table, 32, tmp_path) != before and cache_path(table, 16, tmp_path, channels=3) != before
    assert cache_path(table.subset(np.arange(4)), 16, tmp_path) != before

    def no_stat(*args, **kwargs):
        raise AssertionError("the cache key looked at a file")

    monkeypatch.setattr(os, "stat", no_stat)
    monkeypatch.setattr(Path, "stat", no_stat)
    assert cache_path(table, 16, tmp_path) == before


def test_a_cache_whose_probed_images_changed_is_rebuilt(table, tmp_path, write_image):
    first = ImageDataset(table, image_size=16, cache_dir=tmp_path / "cache")
    assert cache_module.is_current(first.cache_file, table)
    path = table.image_path(2)
    write_image(path, seed=99, size=(20, 14))
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    assert not cache_module.is_current(first.cache_file, table)  # 5 rows: every image is probed
    rebuilt = ImageDataset(table, image_size=16, cache_dir=tmp_path / "cache")
    assert rebuilt.cache_file == first.cache_file and cache_module.is_current(rebuilt.cache_file, table)
    assert torch.equal(rebuilt[2][0], ImageDataset(table, image_size=16)[2][0])  # the new pixels
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(
        [first.cache_file.name, cache_module.info_path(first.cache_file).name]
    )  # no lock file, no temporary file


def test_probes_are_spread_over_a_large_table():
    rows = cache_module._probe_rows(10_000)
    assert len(rows) == cache_module.PROBES and rows[0] == 0 and rows[-1] == 9_999
    assert cache_module._probe_rows(3) == [0, 1, 2] and cache_module._probe_rows(0) == []


def test_cache_must_exist_refuses_to_build(table, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"does not exist and dataset.cache_must_exist is set; build it first"):
        ImageDataset(table, image_size=16, cache_dir=tmp_path / "cache", cache_must_exist=True)
    assert not (tmp_path / "cache").exists()
    built = ImageDataset(table, image_size=16, cache_dir=tmp_path / "cache")
    again = ImageDataset(table, image_size=16, cache_dir=tmp_path / "cache", cache_must_exist=True)
    assert again.cache_file == built.cache_file
    os.utime(table.image_path(0), ns=(2_000_000_000, 2_000_000_000))
    with pytest.raises(FileNotFoundError, match="is out of date"):
        ImageDataset(table, image_size=16, cache_dir=tmp_path / "cache", cache_must_exist=True)


def test_a_pool_of_workers_builds_the_same_cache(table, tmp_path):
    one = ImageDataset(table, image_size=16, cache_dir=tmp_path / "one", cache_workers=1)
    pool = ImageDataset(table, image_size=16, cache_dir=tmp_path / "pool", cache_workers=3)
    assert np.array_equal(np.load(one.cache_file), np.load(pool.cache_file))
    assert np.load(pool.cache_file).shape == (5, 1, 16, 16)


def test_processes_starting_together_build_one_cache(table, tmp_path, monkeypatch):
    """Threads stand in for DDP ranks: the file lock works between threads as between processes."""
    import threading
    import time

    real, decoded = cache_module.read_image, []

    def slow(path, size, **kwargs):
        decoded.append(path.name)
        time.sleep(0.02)
        return real(path, size, **kwargs)

    monkeypatch.setattr(cache_module, "read_image", slow)
    results, errors = [], []

    def rank() -> None:
        try:
            results.append(ImageDataset(table, image_size=16, cache_dir=tmp_path / "cache", cache_workers=1).cache_file)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=rank) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(set(results)) == 1 and len(results) == 3
    assert sorted(decoded) == sorted(f"{k}.png" for k in range(5))  # each image decoded once, by one rank
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(
        [results[0].name, cache_module.info_path(results[0]).name]
    )


def test_a_killed_build_leaves_a_temporary_file_the_next_build_removes(table, tmp_path):
    target = cache_path(table, 16, tmp_path / "cache")
    target.parent.mkdir()
    stale = target.parent / f".{target.name}.abc123.tmp"
    stale.write_bytes(b"half a cache")
    ImageDataset(table, image_size=16, cache_dir=tmp_path / "cache")
    assert not stale.exists() and target.is_file()


def test_three_channel_images_are_read_in_colour_and_gray_ones_repeated(tmp_path, write_image):
    from PIL import Image

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(rgb, mode="RGB").save(tmp_path / "c.png")
    write_image(tmp_path / "g.png", seed=1)
    (tmp_path / "t.csv").write_text("path,subject_id,A\nc.png,p,1\ng.png,q,0\n")
    colour = load_table(tmp_path / "t.csv")
    ds = ImageDataset(colour, image_size=16, channels=3, cache_dir=tmp_path / "cache")
    image = ds[0][0]
    assert image.shape == (3, 16, 16) and np.array_equal(image.permute(1, 2, 0).numpy(), rgb)
    gray = ds[1][0]
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    assert np.load(ds.cache_file).shape == (2, 3, 16, 16)
    assert torch.equal(ImageDataset(colour, image_size=16, channels=3)[0][0], image)  # without the cache too

    from ral.data.dataset import read_channels

    assert read_channels(colour, 3) == 3 and read_channels(colour, 1) == 1
    (tmp_path / "g.csv").write_text("path,subject_id,A\ng.png,q,0\n")
    assert read_channels(load_table(tmp_path / "g.csv"), 3) == 1  # gray: one channel, repeated on the device


def test_dataset_pickles_without_its_memory_map(table, tmp_path):
    ds = ImageDataset(table, image_size=16, cache_dir=tmp_path / "cache")
    ds[0]  # opens the memory map
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._pixels is None and torch.equal(clone[1][0], ds[1][0])
    loader = torch.utils.data.DataLoader(ds, batch_size=2)
    images, targets = next(iter(loader))
    assert images.shape == (2, 1, 16, 16) and targets.shape == (2, 2)


@pytest.mark.parametrize("preset", [True, "light", "cxr"])
def test_augment_changes_pixels_but_not_shape_or_type(table, preset):
    plain = ImageDataset(table, image_size=32)[0][0]
    torch.manual_seed(0)
    aug = ImageDataset(table, image_size=32, augment=preset)
    images = [aug[(epoch, 0)][0] for epoch in range(4)]
    assert all(im.shape == (1, 32, 32) and im.dtype == torch.uint8 for im in images)
    assert any(not torch.equal(im, plain) for im in images)
    assert torch.equal(aug[(2, 0)][0], images[2])  # the same item of the same epoch: the same draws


def test_single_label_targets_are_class_indices(tmp_path, write_image):
    for k, cls in enumerate(["cat", "dog", "dog"]):
        write_image(tmp_path / "tree" / cls / f"{k}.png", seed=k)
    ds = ImageDataset(load_table(tmp_path / "tree"), image_size=16)
    assert [int(ds[i][1]) for i in range(3)] == [0, 1, 1] and ds[0][1].dtype == torch.int64


def test_image_size_is_validated(table):
    with pytest.raises(ValueError, match="image_size must be an int >= 16, got 4"):
        ImageDataset(table, image_size=4)
