"""Tiny image datasets (16x16 PNGs written with PIL) and configs for fast engine tests."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

CLASSES = ["Alpha", "Beta", "Gamma", "Delta"]
PREVALENCE = np.array([0.5, 0.3, 0.15, 0.08])
SIZE = 16


def _image(labels: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """Noise plus one bright square per positive class, at a class-specific corner."""
    pixels = rng.normal(90, 20, size=(SIZE, SIZE))
    half = SIZE // 2
    for c, corner in enumerate([(0, 0), (0, half), (half, 0), (half, half)]):
        if labels[c] == 1:
            y, x = corner
            pixels[y + 2 : y + half - 2, x + 2 : x + half - 2] += 120
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="L")


def write_generic_split(root: Path, split: str, n: int, seed: int) -> Path:
    """``<root>/<split>.csv`` in the generic layout (path, subject_id, classes; blank = uncertain)."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, len(CLASSES))) < PREVALENCE).astype(float)
    labels[np.arange(len(CLASSES)), np.arange(len(CLASSES))] = 1  # every class has a positive
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        path = f"images/{split}_{i:03d}.png"
        _image(labels[i], rng).save(root / path)
        cells = ["" if (i % 7 == 3 and c == 1) else str(int(labels[i, c])) for c in range(len(CLASSES))]
        rows.append([path, f"p{i // 2}", *cells])
    table = root / f"{split}.csv"
    pd.DataFrame(rows, columns=["path", "subject_id", *CLASSES]).to_csv(table, index=False)
    return table


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 4-class multi-label set: 64 train, 21 val (odd: DDP pads it), 24 test images."""
    root = tmp_path_factory.mktemp("tiny-multilabel")
    return {
        "train": write_generic_split(root, "train", 64, 0),
        "val": write_generic_split(root, "val", 21, 1),
        "test": write_generic_split(root, "test", 24, 2),
    }


@pytest.fixture(scope="session")
def tiny_single_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 3-class single-label set in the folder-per-class layout (train / val)."""
    base = tmp_path_factory.mktemp("tiny-single")
    rng = np.random.default_rng(3)
    out = {}
    for split, n in (("train", 48), ("val", 18)):
        for i in range(n):
            c = [0, 0, 0, 1, 1, 2][i % 6]
            folder = base / split / ["nevus", "melanoma", "vascular"][c]
            folder.mkdir(parents=True, exist_ok=True)
            labels = np.zeros(len(CLASSES))
            labels[c] = 1
            _image(labels, rng).save(folder / f"{i:03d}.png")
        out[split] = base / split
    return out


def tiny_config(data: dict[str, Path], out: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    """A config dict training the tiny CNN for one CPU epoch on ``data``; ``sections`` update it."""
    config: dict[str, Any] = {
        "seed": 0,
        "output_dir": str(out),
        "dataset": {"train": str(data["train"]), "val": str(data["val"]), "image_size": SIZE, "num_workers": 0},
        "model": {"backbone": "tiny", "options": {"width": 4, "depth": 2}},
        "loss": {"name": "bce", "params": {}},
        "optimizer": {"name": "adamw", "lr": 0.01},
        "schedule": {"name": "cosine", "warmup_epochs": 0},
        "train": {"epochs": 1, "batch_size": 16, "accelerator": "cpu", "progress_bar": False, "log_every_n_steps": 1},
    }
    if "test" in data:
        config["dataset"]["test"] = str(data["test"])
    config = copy.deepcopy(config)
    for section, values in sections.items():
        if isinstance(values, dict):
            config.setdefault(section, {}).update(values)
        else:
            config[section] = values
    return config


@pytest.fixture(scope="session")
def trained_run(tiny_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What ``train`` returns for one epoch of the tiny CNN with BCE on ``tiny_data`` (the default
    ``tiny_config``): one run shared by the tests that only read it or copy its folder."""
    from ral.engine import train

    return train(tiny_config(tiny_data, tmp_path_factory.mktemp("trained") / "run"))


@pytest.fixture(scope="session")
def copy_trained_run(trained_run: dict[str, Any]) -> Callable[[Path], Path]:
    """``copy_trained_run(folder)``: copies ``trained_run``'s folder to ``folder / "run"`` (returned),
    for tests that write into a run folder (e.g. ``<run>/eval/``) or change it."""
    return lambda folder: Path(shutil.copytree(trained_run["output_dir"], folder / "run"))


@pytest.fixture
def copied_run(copy_trained_run: Callable[[Path], Path], tmp_path: Path) -> Path:
    """A copy of ``trained_run``'s folder: ``tmp_path / "run"``."""
    return copy_trained_run(tmp_path)


@pytest.fixture(name="tiny_config", scope="session")
def tiny_config_factory() -> Callable[..., dict[str, Any]]:
    """``tiny_config(data, out, **sections)``: a config dict training the tiny CNN for one CPU
    epoch on ``data`` (a dict of table paths) into ``out``; each ``sections`` entry updates a section."""
    return tiny_config


@pytest.fixture(scope="session")
def classes() -> list[str]:
    """The class names of the tiny sets."""
    return list(CLASSES)


@pytest.fixture(scope="session")
def write_split() -> Callable[[Path, str, int, int], Path]:
    """``write_split(root, split, n, seed)``: writes a tiny generic-layout table and its images."""
    return write_generic_split


@pytest.fixture(scope="session")
def evaluated_report(trained_run: dict[str, Any], tiny_data: dict[str, Path], tmp_path_factory) -> Path:
    """An evaluation folder (report.html, metrics.json, ...) of ``trained_run`` on the tiny test table
    (20 bootstrap resamples): read, not changed, by the report tests."""
    from ral.engine import evaluate

    out = tmp_path_factory.mktemp("report") / "eval"
    evaluate(trained_run["best_checkpoint"], tiny_data["test"], out_dir=out, n_boot=20)
    return out
