"""The embedded simulated datasets: ``simulate_dataset`` writes train / val / test tables and images.

- ``task="multilabel"``: chest-radiograph-like PNGs with the 26 CXR-LT 2023 findings, in the
  generic layout (``path, subject_id, <26 classes>``), report-mining noise in train only.
- ``task="single"``: a 7-class dermoscopy-like set with ISIC 2018 proportions, in the ISIC 2018
  task 3 ground-truth layout (``image, MEL, NV, BCC, AKIEC, BKL, DF, VASC``), JPEG images.

See docs/dataset.md for what is drawn and how.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ral.data.classes import CXRLT_CLASSES, ISIC2018_CLASSES
from ral.data._io import write_csv_atomic, write_json_atomic
from ral.data.images import MIN_IMAGE_SIZE
from ral.data.simulate.preview import preview_grid

TASKS = ("multilabel", "single")
SPLITS = ("train", "val", "test")
DEFAULT_SIZES = {"multilabel": (24_000, 4_000, 8_000), "single": (8_000, 1_500, 3_000)}
GENERATOR_VERSION = 1

__all__ = ["simulate_dataset", "preview_grid", "DEFAULT_SIZES", "TASKS"]


def simulate_dataset(
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    size: int = 64,
    n_train: int | None = None,
    n_val: int | None = None,
    n_test: int | None = None,
    task: str = "multilabel",
    missing_rate: float = 0.15,
) -> Path:
    """Generate a simulated long-tailed dataset into ``out_dir`` (deterministic in ``seed``).

    Args:
        out_dir: output folder (created); gets train.csv, val.csv, test.csv, dataset.json and
            the images under ``images/``.
        seed: random seed; the same seed and arguments give byte-identical CSVs and images.
        size: image side in pixels (square, grayscale).
        n_train, n_val, n_test: images per split (default 24,000 / 4,000 / 8,000 for
            multilabel, 8,000 / 1,500 / 3,000 for single).
        task: "multilabel" (26 chest findings) or "single" (7 skin-lesion classes).
        missing_rate: multilabel only: share of positives of every finding but No Finding
            removed from the TRAINING labels (report-mining false negatives); val / test clean.

    Returns:
        ``out_dir`` as a Path.

    Raises:
        ValueError: unknown task, size < ``MIN_IMAGE_SIZE`` (16), split sizes too small, missing_rate outside [0, 0.9].
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if not isinstance(size, int) or size < MIN_IMAGE_SIZE:
        raise ValueError(f"size must be an int >= {MIN_IMAGE_SIZE}, got {size!r}")
    if not (0.0 <= float(missing_rate) <= 0.9):
        raise ValueError(f"missing_rate must be in [0, 0.9], got {missing_rate!r}")
    defaults = DEFAULT_SIZES[task]
    sizes = {s: (n if n is not None else d) for s, n, d in zip(SPLITS, (n_train, n_val, n_test), defaults)}
    for split, n in sizes.items():
        if not isinstance(n, int) or n < 200:
            raise ValueError(f"n_{split} must be an int >= 200 (rare classes need room), got {n!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if task == "multilabel":
        info = _simulate_cxr(out, seed, size, sizes, float(missing_rate))
    else:
        info = _simulate_skin(out, seed, size, sizes)
    write_json_atomic(info, out / "dataset.json")
    return out


def _simulate_cxr(out: Path, seed: int, size: int, sizes: dict[str, int], missing_rate: float) -> dict:
    from ral.data.simulate.cxr import FIRST_SUBJECT_ID, MIN_POSITIVES, simulate_split

    info = _header("multilabel", seed, size, sizes, CXRLT_CLASSES)
    info["layout"] = "generic: path, subject_id, one 0/1 column per class (CXR-LT 2023 names)"
    info["noise"] = {
        "missing_rate": missing_rate,
        "applies_to": "train labels only, every class except No Finding; val/test labels are clean",
        "clean_train_labels": "train_clean.csv",
    }
    info["min_positives"] = {k: v for k, v in MIN_POSITIVES.items() if v}
    first = FIRST_SUBJECT_ID
    for split in SPLITS:
        result = simulate_split(split, sizes[split], out, seed=seed, size=size, missing_rate=missing_rate,
                                first_subject=first)
        first += result["num_patients"]
        frame = result["frame"]
        write_csv_atomic(frame, out / f"{split}.csv")
        if split == "train":
            clean = frame[["path", "subject_id"]].copy()
            clean[CXRLT_CLASSES] = result["clean"].astype(np.int64)
            write_csv_atomic(clean, out / "train_clean.csv")
        info["splits"][split] = {
            "images": sizes[split],
            "patients": result["num_patients"],
            "counts": {c: int(frame[c].sum()) for c in CXRLT_CLASSES},
            "clean_counts": {c: int(v) for c, v in zip(CXRLT_CLASSES, result["clean"].sum(axis=0))},
            "oversampled_classes": result["oversampled"],
        }
    return info


def _simulate_skin(out: Path, seed: int, size: int, sizes: dict[str, int]) -> dict:
    from ral.data.simulate.skin import MIN_POSITIVES, simulate_split

    info = _header("single", seed, size, sizes, ISIC2018_CLASSES)
    info["layout"] = "ISIC 2018 task 3 ground truth: image, MEL, NV, BCC, AKIEC, BKL, DF, VASC (one-hot)"
    info["noise"] = {"missing_rate": 0.0, "applies_to": "none (single-label labels are clean)"}
    info["min_positives"] = {k: v for k, v in MIN_POSITIVES.items() if v}
    offset = 0
    for split in SPLITS:
        result = simulate_split(split, sizes[split], out, seed=seed, size=size, first_index=offset)
        offset += sizes[split]
        frame = result["frame"]
        write_csv_atomic(frame, out / f"{split}.csv")
        info["splits"][split] = {
            "images": sizes[split],
            "patients": sizes[split],
            "counts": {c: int(frame[c].astype(float).sum()) for c in ISIC2018_CLASSES},
            "oversampled_classes": result["oversampled"],
        }
    return info


def _header(task: str, seed: int, size: int, sizes: dict[str, int], classes: list[str]) -> dict:
    return {
        "generator": f"ral.data.simulate v{GENERATOR_VERSION}",
        "task": task,
        "seed": seed,
        "image_size": size,
        "sizes": dict(sizes),
        "classes": list(classes),
        "splits": {},
    }
