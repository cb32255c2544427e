"""Hostile files (issue 19): decompression bombs, repeated column names, leaks between MIMIC splits,
a --groups file that is no object, and what ``simulate --overwrite`` may delete."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ral.cli import main
from ral.data import ImageDataset, TableError, load_table
from ral.data.dataset import read_channels
from ral.data.groups import frequency_groups
from ral.data.images import open_image, pixel_limit, read_image
from ral.data.simulate import GENERATOR, MANIFEST, check_simulation_folder

MIMIC = Path(__file__).parent / "fixtures" / "mimic"


@pytest.fixture
def bomb_table(tmp_path, write_image):
    """A generic table of three 12 x 10 images and one 40 x 40 "bomb" (row 2), read with a 500-pixel limit."""
    for name in ("a", "b", "d"):
        write_image(tmp_path / f"{name}.png")
    write_image(tmp_path / "bomb.png", size=(40, 40))
    (tmp_path / "t.csv").write_text("path,A,B\na.png,1,0\nb.png,0,1\nbomb.png,1,0\nd.png,0,1\n")
    return load_table(tmp_path / "t.csv", check_images="none")


@pytest.mark.parametrize("size", [(30, 20), (40, 40)])  # over the limit; over twice it (where PIL itself fails)
def test_an_image_over_the_pixel_limit_is_refused_naming_file_and_size(tmp_path, write_image, size):
    write_image(tmp_path / "big.png", size=size)
    pixels = size[0] * size[1]
    with pixel_limit(500), pytest.raises(ValueError, match=rf"big\.png is {size[0]} x {size[1]} = {pixels:,} pixels"):
        read_image(tmp_path / "big.png", 16)
    with pixel_limit(500), pytest.raises(ValueError, match=r"more than the limit of 500 \(dataset\.max_image_pixels"):
        open_image(tmp_path / "big.png")
    assert read_image(tmp_path / "big.png", 16).shape == (16, 16)  # the default limit is back


def test_a_bomb_is_a_bad_row_with_and_without_a_cache(tmp_path, bomb_table):
    with pytest.raises(ValueError, match=r"bomb\.png is 40 x 40 = 1,600 pixels.*row 2"):
        ImageDataset(bomb_table, image_size=16, max_image_pixels=500, cache_dir=tmp_path / "cache", cache_workers=1)
    for cache in (None, tmp_path / "cache"):
        with pytest.warns(UserWarning, match=r"skipped 1 of 4 image\(s\).*bomb\.png is 40 x 40"):
            images = ImageDataset(
                bomb_table, image_size=16, max_image_pixels=500, skip_bad=True, cache_dir=cache, cache_workers=1
            )
        assert list(images.table.ids) == ["a.png", "b.png", "d.png"] and len(images) == 3
    without_check = ImageDataset(bomb_table, image_size=16, max_image_pixels=500)  # decoded when read
    with pytest.raises(ValueError, match=r"bomb\.png is 40 x 40"):
        without_check[2]
    assert without_check[1][0].shape == (1, 16, 16)


def test_the_colour_probe_skips_a_bomb(bomb_table):
    with pixel_limit(500):
        assert read_channels(bomb_table, 3) == 1


@pytest.mark.parametrize(
    "header, names",
    [("path,A,A", "['A']"), ("path,A ,A", "['A']"), ("path ,path,A", "['path']"), ("path,A,B,A,B", "['A', 'B']")],
)
def test_a_header_naming_a_column_twice_is_refused(tmp_path, assert_bad, header, names):
    table = tmp_path / "t.csv"
    table.write_text(header + "\n" + ",".join(["x.png"] + ["1"] * (header.count(","))) + "\n")
    error = assert_bad(table, r"t\.csv: column name\(s\) " + re.escape(names) + " appear")
    assert error.column == names.split("'")[1] and "\n" not in str(error)


def test_an_image_in_two_parts_of_the_mimic_split_file_is_reported(tmp_path, assert_bad):
    for item in MIMIC.iterdir():
        shutil.copy(item, tmp_path / item.name)
    split = tmp_path / "mimic-cxr-2.0.0-split.csv.gz"
    with gzip.open(split, "at", encoding="utf-8") as fh:
        fh.write("02aa804e-bde0afdd-112c0b34-7bc16630-4e384014,50414267,10000032,test\n")
    labels = tmp_path / "mimic-cxr-2.0.0-chexpert.csv.gz"
    assert_bad(
        labels,
        r"split\.csv\.gz; first: image '02aa804e-[\w-]+' is listed in more than one part: 'train' \(line 2 "
        r"\(data row 1\)\), 'test' \(line \d+",
        split="test",
    )
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        for part in ("train", "test"):  # dropped from every part
            table = load_table(labels, split=part, check_images="none", skip_bad=True)
            assert "02aa804e-bde0afdd-112c0b34-7bc16630-4e384014" not in table.ids


def test_groups_must_be_a_mapping(tmp_path, capsys):
    with pytest.raises(ValueError, match="mapping must be a mapping of classes to groups .*got a list"):
        frequency_groups(np.array([3, 1]), 4, mapping=["A", "B"], class_names=["A", "B"])
    (tmp_path / "t.csv").write_text("path,A,B\na.png,1,0\nb.png,0,1\n")
    (tmp_path / "g.json").write_text(json.dumps([1, 2]))
    assert main(["data", "stats", str(tmp_path / "t.csv"), "--groups", str(tmp_path / "g.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--groups" in err and "a JSON object expected" in err and "got a list" in err


def test_simulate_overwrite_removes_only_what_the_manifest_lists(tmp_path):
    out = tmp_path / "sim"
    ours = ["files/p10/p100/s1/x.png", "files/p10/p100/s1/y.png", "images/ISIC_0000000.jpg"]
    theirs = ["images/mine.png", "files/own/scan.png", "notes.txt"]
    for name in ours + theirs + ["train.csv"]:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(b"x")
    (out / "dataset.json").write_text(json.dumps({"generator": GENERATOR, "key": "k"}))
    (out / MANIFEST).write_text("\n".join([*ours, "../outside.png", "/etc/passwd"]) + "\n")
    (tmp_path / "outside.png").write_bytes(b"never listed legitimately")
    with pytest.raises(FileExistsError, match="pass --overwrite"):
        check_simulation_folder(out)
    check_simulation_folder(out, overwrite=True)
    assert all((out / name).is_file() for name in theirs)
    assert not any((out / name).exists() for name in ours) and not (out / "files" / "p10").exists()
    assert not (out / "train.csv").exists() and not (out / MANIFEST).exists()
    assert (tmp_path / "outside.png").is_file()


def test_simulate_settings_are_checked_before_anything_is_written(tmp_path, capsys):
    for flags, message in (
        (["--seed", "-1"], "seed must be an int >= 0, got -1"),
        (["--task", "single", "--n-test", "200"], "n_test must be at least 280"),
    ):
        assert main(["data", "simulate", "--out", str(tmp_path / "s"), "--preview", str(tmp_path / "p.png"), *flags])
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(SystemExit):
        main(["data", "simulate", "--help"])
    assert "each >= 200" in " ".join(capsys.readouterr().out.split())


def test_a_broken_image_file_is_refused_in_one_line(tmp_path):
    Image.new("L", (8, 8)).save(tmp_path / "x.png")
    (tmp_path / "x.png").write_bytes((tmp_path / "x.png").read_bytes()[:40])
    with pytest.raises(ValueError, match=r"cannot decode image file .*x\.png"):
        read_image(tmp_path / "x.png", 16)
    with pytest.raises(TableError, match=r"cannot decode image file"):
        load_table(_one_row(tmp_path, "x.png"), check_images="decode")


def _one_row(folder: Path, image: str) -> Path:
    (folder / "t.csv").write_text(f"path,A,B\n{image},1,0\n")
    return folder / "t.csv"
