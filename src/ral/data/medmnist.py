"""MedMNIST(+) sets written in the generic layout: real medical images at 28-224 px in one command.

MedMNIST (Yang et al., Scientific Data 2023) distributes each set as one ``.npz`` with the keys
``train_images`` / ``val_images`` / ``test_images`` (uint8, N x H x W for gray sets, N x H x W x 3
for colour ones) and ``train_labels`` / ... (uint8, N x 14 for ChestMNIST's 0/1 findings, N x 1
class indices for the others), in its official splits. :func:`write_medmnist` turns one into PNG
files and ``train.csv`` / ``val.csv`` / ``test.csv`` of the generic format, so ``ral train``,
``ral data stats`` and ``ral bench losses --data`` read it like any other table.

The class names are those of the source datasets, in MedMNIST's label order (MedMNIST's own
names, from its ``INFO``, are kept in ``dataset.json``). MedMNIST keeps no patient ids, so each
image is its own patient.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

SPLITS = ("train", "val", "test")
#: The image sides MedMNIST+ is distributed in (28: the original MedMNIST files).
SIZES = (28, 64, 128, 224)
MedMnistName = Literal["chestmnist", "dermamnist", "retinamnist"]


@dataclass(frozen=True)
class MedMnistSet:
    """One MedMNIST set: its classes (ours and MedMNIST's), task, channels and official split sizes."""

    title: str
    classes: tuple[str, ...]
    medmnist_labels: tuple[str, ...]
    task: Literal["multilabel", "single"]
    channels: int
    official_sizes: tuple[int, int, int]


#: ChestMNIST's 14 labels in MedMNIST's order, under NIH ChestX-ray14's names (ral.data.classes.NIH_CLASSES).
CHEST_CLASSES = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
)

# Checked against MedMNIST's INFO (medmnist/info.py): label order, channels and n_samples per split.
SETS: dict[str, MedMnistSet] = {
    "chestmnist": MedMnistSet(
        title="ChestMNIST: NIH ChestX-ray14, 14 findings (multi-label), official split",
        classes=CHEST_CLASSES,
        medmnist_labels=tuple(name.lower().split("_")[0] for name in CHEST_CLASSES),  # "pleural" for thickening
        task="multilabel",
        channels=1,
        official_sizes=(78468, 11219, 22433),
    ),
    "dermamnist": MedMnistSet(
        title="DermaMNIST: HAM10000 / ISIC 2018 task 3, 7 lesion classes (single-label), split 7:1:2",
        classes=("AKIEC", "BCC", "BKL", "DF", "MEL", "NV", "VASC"),
        medmnist_labels=(
            "actinic keratoses and intraepithelial carcinoma",
            "basal cell carcinoma",
            "benign keratosis-like lesions",
            "dermatofibroma",
            "melanoma",
            "melanocytic nevi",
            "vascular lesions",
        ),
        task="single",
        channels=3,
        official_sizes=(7007, 1003, 2005),
    ),
    "retinamnist": MedMnistSet(
        title="RetinaMNIST: DeepDRiD, 5 diabetic-retinopathy grades (single-label)",
        classes=("grade 0", "grade 1", "grade 2", "grade 3", "grade 4"),
        medmnist_labels=("0", "1", "2", "3", "4"),
        task="single",
        channels=3,
        official_sizes=(1080, 120, 400),
    ),
}


def _checked_arrays(arrays: Mapping[str, np.ndarray], spec: MedMnistSet, source: str, size: int) -> None:
    """MedMNIST's keys, dtypes and shapes, or a one-line ``ValueError`` naming ``source`` and the key."""
    for split in SPLITS:
        for part in ("images", "labels"):
            if f"{split}_{part}" not in arrays:
                raise ValueError(f"{source}: no array {split}_{part!s} (MedMNIST files hold {split}_images / _labels)")
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        shape = (size, size) if spec.channels == 1 else (size, size, 3)
        if images.dtype != np.uint8 or images.ndim != len(shape) + 1 or images.shape[1:] != shape:
            raise ValueError(
                f"{source}: {split}_images must be uint8 N x {' x '.join(map(str, shape))} for --size {size}, "
                f"got {images.dtype} {' x '.join(map(str, images.shape))}"
            )
        width = len(spec.classes) if spec.task == "multilabel" else 1
        if labels.ndim != 2 or labels.shape != (len(images), width):
            raise ValueError(f"{source}: {split}_labels must be {len(images)} x {width}, got {labels.shape}")
        bad = (labels > 1) | (labels < 0) if spec.task == "multilabel" else (labels >= len(spec.classes)) | (labels < 0)
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise ValueError(f"{source}: {split}_labels row {row} holds {labels[row].tolist()}, outside the classes")


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of a MedMNIST ``.npz`` (read without pickles)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--npz: file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (ValueError, OSError) as exc:
        raise ValueError(f"--npz {path}: not a readable .npz file ({exc})") from None


def fetch_arrays(name: str, size: int) -> dict[str, np.ndarray]:
    """The arrays of set ``name`` at ``size`` through the ``medmnist`` package (it downloads to its own folder).

    ``ral`` itself downloads nothing: without the package the error says how to pass ``--npz``.
    """
    try:
        import medmnist
    except ImportError:
        file = f"{name}.npz" if size == 28 else f"{name}_{size}.npz"
        raise ValueError(
            f"the medmnist package is not installed: download {file} from https://zenodo.org/records/10519652 "
            f"(MedMNIST+) and pass it with --npz {file}"
        ) from None
    dataset_class = getattr(medmnist, medmnist.INFO[name]["python_class"])
    arrays = {}
    for split in SPLITS:
        kwargs: dict[str, Any] = {"split": split, "download": True}
        if size != 28:
            kwargs["size"] = size
        data = dataset_class(**kwargs)
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = np.asarray(data.imgs), np.asarray(data.labels)
    return arrays


def _table(spec: MedMnistSet, split: str, labels: np.ndarray) -> Any:
    """The generic table of one split: ``path`` plus 0/1 class columns, or a ``label`` column of names."""
    import pandas as pd

    paths = [f"images/{split}/{i:06d}.png" for i in range(len(labels))]
    if spec.task == "multilabel":
        return pd.DataFrame({"path": paths, **{c: labels[:, j].astype(int) for j, c in enumerate(spec.classes)}})
    return pd.DataFrame({"path": paths, "label": [spec.classes[int(k)] for k in labels[:, 0]]})


def write_medmnist(
    name: MedMnistName,
    *,
    out: str | os.PathLike,
    size: int = 28,
    npz: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Path:
    """Write MedMNIST set ``name`` in the generic layout: ``out/images/<split>/NNNNNN.png``, train.csv,
    val.csv, test.csv (official splits) and dataset.json (classes, task, counts per split, source).

    Args:
        name: "chestmnist" (14 findings, multi-label), "dermamnist" (7 classes) or "retinamnist" (5 grades).
        out: output folder; it must be missing or empty unless ``overwrite`` (then its files are replaced).
        size: image side: 28, 64, 128 or 224 (MedMNIST+); the images of ``npz`` must have it.
        npz: a local MedMNIST file (``chestmnist.npz``, ``chestmnist_64.npz`` ...); without it the
            ``medmnist`` package fetches the set when installed (otherwise a one-line error).
        overwrite: replace what an earlier run of this command wrote in ``out``.

    Returns:
        ``out`` as a Path.

    Raises:
        ValueError: an unknown set or size, a file without MedMNIST's keys, dtypes or shapes.
        FileNotFoundError / FileExistsError / OSError: ``npz`` missing; ``out`` not empty or not writable.
    """
    from PIL import Image

    from ral.report import write_csv, write_json
    from ral.report.files import check_output

    if name not in SETS:
        raise ValueError(f"unknown MedMNIST set {name!r}; choose one of {sorted(SETS)}")
    if size not in SIZES:
        raise ValueError(f"--size must be one of {list(SIZES)}, got {size!r}")
    spec = SETS[name]
    folder = check_output(out, folder=True, overwrite=overwrite)
    arrays = read_npz(npz) if npz is not None else fetch_arrays(name, size)
    _checked_arrays(arrays, spec, str(npz or name), size)
    counts = {}
    for split in SPLITS:
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        (folder / "images" / split).mkdir(parents=True, exist_ok=True)
        for i, pixels in enumerate(images):
            Image.fromarray(pixels).save(folder / "images" / split / f"{i:06d}.png")
        write_csv(_table(spec, split, labels), folder / f"{split}.csv")
        per_class = (
            labels.sum(axis=0) if spec.task == "multilabel" else np.bincount(labels[:, 0], minlength=len(spec.classes))
        )
        counts[split] = {"images": len(images), **{c: int(n) for c, n in zip(spec.classes, per_class)}}
    info = {
        "source": "MedMNIST",
        "name": name,
        "title": spec.title,
        "size": size,
        "task": spec.task,
        "channels": spec.channels,
        "classes": list(spec.classes),
        "medmnist_labels": list(spec.medmnist_labels),
        "official_sizes_28px": dict(zip(SPLITS, spec.official_sizes)),
        "counts": counts,
        "npz": str(Path(npz).resolve()) if npz is not None else None,
        "license": "CC BY 4.0 (MedMNIST)",
    }
    write_json(info, folder / "dataset.json")
    return folder
