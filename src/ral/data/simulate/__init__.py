"""The embedded simulated datasets: ``simulate_dataset`` writes train / val / test tables and images.

- ``task="multilabel"``: chest-radiograph-like PNGs with the 26 CXR-LT 2023 findings, in the
  CXR-LT 2023 layout (``dicom_id, subject_id, study_id, <26 classes>, fpath``, plus MIMIC's
  ``ViewPosition``), studies of one to three views, report-mining noise in train only.
- ``task="single"``: a 7-class dermoscopy-like set with ISIC 2018 proportions, in the ISIC 2018
  task 3 ground-truth layout (``image, MEL, NV, BCC, AKIEC, BKL, DF, VASC``), JPEG images.
- ``task="fundus"``: a 5-grade diabetic-retinopathy set with APTOS 2019 proportions, in the
  APTOS layout (``id_code, diagnosis``), RGB PNG images (single-label, ordinal classes).

``ensure_simulated`` reuses a folder only when its ``dataset.json`` records the same simulation
key: a hash of the settings and of the code of this package (:func:`simulation_key`).

See docs/dataset.md for what is drawn and how.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from ral.data.classes import CXRLT_CLASSES
from ral.data.images import MIN_IMAGE_SIZE
from ral.data.simulate.preview import preview_grid
from ral.report.files import check_writable, is_empty_folder, write_csv, write_json

#: The simulated sets: chest radiographs (multi-label), skin lesions or fundus photographs (single-label).
SimulatedSet = Literal["multilabel", "single", "fundus"]
TASKS: tuple[str, ...] = get_args(SimulatedSet)
SPLITS = ("train", "val", "test")
DEFAULT_SIZES = {"multilabel": (24_000, 4_000, 8_000), "single": (8_000, 1_500, 3_000), "fundus": (3_000, 800, 1_200)}
GENERATOR = "ral.data.simulate"
#: The list of the images a simulation wrote, relative to its folder (each written before its images):
#: what ``--overwrite`` removes, and nothing else.
MANIFEST = "simulated_files.txt"
#: Files a simulation writes into its folder besides the images (``dataset.json`` last).
OUTPUT_FILES = ("train.csv", "val.csv", "test.csv", "train_clean.csv", MANIFEST, "dataset.json")
#: Smallest split a simulation draws (the rare classes need room).
MIN_SPLIT_SIZE = 200

__all__ = [
    "simulate_dataset",
    "ensure_simulated",
    "simulation_key",
    "code_hash",
    "preview_grid",
    "DEFAULT_SIZES",
    "TASKS",
]


def code_hash() -> str:
    """SHA-256 hex digest of every ``.py`` file of this package (relative names and bytes, sorted)."""
    package = Path(__file__).parent
    digest = hashlib.sha256()
    for file in sorted(package.rglob("*.py")):
        digest.update(file.relative_to(package).as_posix().encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def _checked_settings(
    task: SimulatedSet,
    seed: int,
    size: int,
    n_train: int | None,
    n_val: int | None,
    n_test: int | None,
    missing_rate: float,
) -> dict:
    """The checked settings that decide the output (split sizes with the task's defaults filled in).

    Raises:
        ValueError: unknown task, size < ``MIN_IMAGE_SIZE`` (16), split sizes too small, missing_rate outside [0, 0.9].
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    if not isinstance(size, int) or size < MIN_IMAGE_SIZE:
        raise ValueError(f"size must be an int >= {MIN_IMAGE_SIZE}, got {size!r}")
    if not (0.0 <= float(missing_rate) <= 0.9):
        raise ValueError(f"missing_rate must be in [0, 0.9], got {missing_rate!r}")
    defaults = DEFAULT_SIZES[task]
    sizes = {s: (n if n is not None else d) for s, n, d in zip(SPLITS, (n_train, n_val, n_test), defaults)}
    for split, n in sizes.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < MIN_SPLIT_SIZE:
            raise ValueError(f"n_{split} must be an int >= {MIN_SPLIT_SIZE} (rare classes need room), got {n!r}")
    if task != "multilabel":  # their rare classes need more images in val / test
        from ral.data.simulate.fundus import FUNDUS
        from ral.data.simulate.single_label import split_quotas
        from ral.data.simulate.skin import SKIN

        spec = FUNDUS if task == "fundus" else SKIN
        for split, n in sizes.items():
            split_quotas(split, n, spec.published_counts, spec.classes, spec.majority)
    # single-label labels carry no noise: the rate does not change the output
    rate = float(missing_rate) if task == "multilabel" else 0.0
    return {"task": task, "seed": int(seed), "size": size, "sizes": sizes, "missing_rate": rate}


def _settings(settings: Mapping[str, Any]) -> dict:
    """Keyword arguments of :func:`simulate_dataset` with its defaults filled in, checked."""
    try:
        bound = inspect.signature(simulate_dataset).bind("", **settings)
    except TypeError as exc:
        raise ValueError(f"settings: {exc}") from None
    bound.apply_defaults()
    # where and whether to replace do not decide the output
    arguments = {name: value for name, value in bound.arguments.items() if name not in ("out_dir", "overwrite")}
    return _checked_settings(**arguments)


def simulation_key(**settings: Any) -> str:
    """SHA-256 hex digest of the settings and of :func:`code_hash`: equal keys mean
    byte-identical outputs.

    Args:
        settings: keyword arguments of :func:`simulate_dataset` (seed, size, n_train, n_val,
            n_test, task, missing_rate); the missing ones take its defaults.

    Raises:
        ValueError: as :func:`simulate_dataset`, or an unknown keyword.
    """
    return _key(_settings(settings), code_hash())


def _key(settings: dict, code: str) -> str:
    text = json.dumps({**settings, "code": code}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _read_info(folder: Path) -> dict | None:
    """``folder/dataset.json`` as a dict, or None when it is missing or not a JSON object."""
    try:
        info = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return info if isinstance(info, dict) else None


def _written_by_simulator(info: dict | None) -> bool:
    return info is not None and str(info.get("generator", "")).startswith(GENERATOR)


def _refuse_foreign(folder: Path) -> dict | None:
    """``folder``'s simulator ``dataset.json`` (None if there is none); raise if someone else wrote it."""
    info = _read_info(folder)
    if (folder / "dataset.json").exists() and not _written_by_simulator(info):
        raise ValueError(
            f"out_dir: {folder / 'dataset.json'} was not written by {GENERATOR}; "
            "choose another folder for the simulated dataset"
        )
    return info


def ensure_simulated(out_dir: str | os.PathLike, *, log: Callable[[str], None] | None = None, **settings: Any) -> Path:
    """The simulated dataset of these settings in ``out_dir``: reused when there, else (re)generated.

    The folder is reused only when its ``dataset.json`` records the same :func:`simulation_key`
    and the three split tables exist. Otherwise, when ``dataset.json`` shows an earlier
    simulation, its images and tables are removed first, so no stale file remains (also after an
    interrupted simulation: :func:`simulate_dataset` marks the folder before it writes anything),
    and :func:`simulate_dataset` writes the folder. Nothing is deleted from a folder whose
    ``dataset.json`` the simulator did not write.

    Args:
        out_dir: the dataset folder.
        log: called with one line saying whether the folder is reused or simulated (None: silent).
        settings: keyword arguments of :func:`simulate_dataset`, as in :func:`simulation_key`.

    Returns:
        ``out_dir`` as a Path.

    Raises:
        ValueError: bad settings (as :func:`simulation_key`), or ``out_dir/dataset.json`` not
            written by the simulator.
    """
    out = Path(out_dir)
    checked = _settings(settings)
    key = _key(checked, code_hash())
    info = _refuse_foreign(out)
    say = log or (lambda line: None)
    if info is not None and info.get("key") == key and all((out / f"{s}.csv").is_file() for s in SPLITS):
        say(f"simulated dataset in {out} has the same settings and generator code: reused")
        return out
    if info is not None:
        say(f"removing the earlier simulation in {out} (other settings or generator code)")
    say(f"simulating the {checked['task']} dataset into {out} ...")
    return simulate_dataset(out, overwrite=True, **settings)


def check_simulation_folder(out_dir: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Check that a simulation may write ``out_dir``, before it writes anything.

    A missing or empty folder is fine; any other needs ``overwrite``. Then an earlier simulation
    there (a ``dataset.json`` of the simulator, also of an interrupted one) is removed first: the
    images its :data:`MANIFEST` lists and its tables, so no stale image remains, while any other
    file there (a user's own ``images/mine.png``) stays; from a folder the simulator did not write
    nothing is deleted (files with the simulator's names are replaced).

    Raises:
        FileExistsError: ``out_dir`` holds files and ``overwrite`` is False.
        ValueError: ``out_dir/dataset.json`` exists but was not written by the simulator.
        OSError: ``out_dir`` cannot be written (see :func:`ral.report.files.check_writable`).
    """
    out = check_writable(out_dir, folder=True)
    if is_empty_folder(out):
        return out
    info = _refuse_foreign(out)
    if not overwrite:
        what = "a simulation" if info is not None else "files"
        raise FileExistsError(f"{out}: the folder holds {what}; pass --overwrite to replace it, or choose another")
    if info is not None:
        _remove_simulation(out)
    return out


def _remove_simulation(folder: Path) -> None:
    """Delete the images (those its :data:`MANIFEST` lists) and tables a simulation wrote into ``folder``,
    and the folders left empty; ``dataset.json`` stays as the mark of a simulator folder until
    :func:`simulate_dataset` replaces it. A simulation written before the manifest leaves its images."""
    try:
        listed = (folder / MANIFEST).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        listed = []
    root = folder.resolve()
    for name in listed:
        file = (folder / name).resolve()
        if name and file.is_relative_to(root) and file.is_file():  # never a path leading out of the folder
            file.unlink()
            for parent in file.parents:  # the folders the simulation made, once empty
                if parent == root or any(parent.iterdir()):
                    break
                parent.rmdir()
    for name in OUTPUT_FILES:
        if name != "dataset.json":
            (folder / name).unlink(missing_ok=True)


@contextlib.contextmanager
def _manifest(folder: Path) -> Iterator[Callable[[list[str]], None]]:
    """A function recording image paths (relative to ``folder``) in its :data:`MANIFEST`, before they are written."""
    with open(folder / MANIFEST, "w", encoding="utf-8") as fh:

        def record(paths: list[str]) -> None:
            fh.writelines(path + "\n" for path in paths)
            fh.flush()  # on disk before the images: an interrupted simulation is removed completely

        yield record


def simulate_dataset(
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    size: int = 64,
    n_train: int | None = None,
    n_val: int | None = None,
    n_test: int | None = None,
    task: SimulatedSet = "multilabel",
    missing_rate: float = 0.15,
    overwrite: bool = False,
) -> Path:
    """Generate a simulated long-tailed dataset into ``out_dir`` (deterministic in ``seed``).

    Args:
        out_dir: output folder (created); gets train.csv, val.csv, test.csv, dataset.json and
            the images (``files/...`` for chest radiographs, ``images/`` for the skin set). It must
            be missing or empty, or with ``overwrite`` hold an earlier simulation (removed first, so
            no stale image remains; see :func:`check_simulation_folder`).
        seed: random seed (>= 0); the same seed and arguments give byte-identical CSVs and images.
        size: image side in pixels (square, grayscale; >= 16).
        n_train, n_val, n_test: images per split, each >= 200; the single-label sets need more in
            val / test, where every class gets 20 / 40 images (e.g. n_test >= 280 for single).
            Default 24,000 / 4,000 / 8,000 for multilabel, 8,000 / 1,500 / 3,000 for single,
            3,000 / 800 / 1,200 for fundus.
        task: "multilabel" (26 chest findings), "single" (7 skin-lesion classes) or "fundus"
            (5 diabetic-retinopathy grades).
        missing_rate: multilabel only: share of positives of every finding but No Finding
            removed from the TRAINING labels (report-mining false negatives; 0 to 0.9); val /
            test clean.

    Returns:
        ``out_dir`` as a Path. Its ``dataset.json`` records the settings, ``code_hash`` and
        ``key`` (:func:`simulation_key`), which :func:`ensure_simulated` compares.

    Raises:
        ValueError: unknown task, size < ``MIN_IMAGE_SIZE`` (16), split sizes too small, missing_rate outside [0, 0.9].
        FileExistsError / OSError: ``out_dir`` may not be written (see :func:`check_simulation_folder`).
    """
    settings = _checked_settings(task, seed, size, n_train, n_val, n_test, missing_rate)
    code = code_hash()
    out = check_simulation_folder(out_dir, overwrite=overwrite)
    # marks the folder as the simulator's while it is written (an interrupted run is cleaned next time)
    write_json({"generator": GENERATOR, "key": None, "complete": False}, out / "dataset.json")
    seed, sizes = settings["seed"], settings["sizes"]
    with _manifest(out) as record:
        if task == "multilabel":
            info = _simulate_cxr(out, seed, size, sizes, settings["missing_rate"], record)
        else:
            info = _simulate_single(task, out, seed, size, sizes, record)
    info.update({"code_hash": code, "key": _key(settings, code)})
    write_json(info, out / "dataset.json")
    return out


def _simulate_cxr(
    out: Path, seed: int, size: int, sizes: dict[str, int], missing_rate: float, record: Callable[[list[str]], None]
) -> dict:
    from ral.data.simulate.cxr import (
        FIRST_STUDY_ID,
        FIRST_SUBJECT_ID,
        LATERAL_VISIBILITY,
        MIN_POSITIVES,
        simulate_split,
    )
    from ral.data.simulate.labels import VIEWS, VIEWS_PER_STUDY

    info = _header("multilabel", seed, size, sizes, CXRLT_CLASSES)
    info["layout"] = (
        "CXR-LT 2023: dicom_id, subject_id, study_id, one 0/1 column per class, fpath "
        "(files/pXX/pNNNNNNNN/sNNNNNNNN/<dicom_id>.png), plus MIMIC-CXR's ViewPosition"
    )
    info["studies"] = {
        "views": list(VIEWS),
        "views_per_study_probability": list(VIEWS_PER_STUDY),
        "labels": "per study (all views of a study share them; the noise removes a study's positive)",
        "lateral_visibility": LATERAL_VISIBILITY,
    }
    info["noise"] = {
        "missing_rate": missing_rate,
        "applies_to": "train labels only, every class except No Finding; val/test labels are clean",
        "clean_train_labels": "train_clean.csv",
    }
    info["min_positives"] = {k: v for k, v in MIN_POSITIVES.items() if v}
    first, first_study = FIRST_SUBJECT_ID, FIRST_STUDY_ID
    common = {"seed": seed, "size": size, "missing_rate": missing_rate, "record": record}
    for split in SPLITS:
        result = simulate_split(split, sizes[split], out, first_subject=first, first_study=first_study, **common)
        first += result["num_patients"]
        first_study += result["num_studies"]
        frame = result["frame"]
        write_csv(frame, out / f"{split}.csv")
        if split == "train":
            clean = frame.copy()
            clean[CXRLT_CLASSES] = result["clean"].astype(np.int64)
            write_csv(clean, out / "train_clean.csv")
        info["splits"][split] = {
            "images": sizes[split],
            "patients": result["num_patients"],
            "studies": result["num_studies"],
            "counts": {c: int(frame[c].sum()) for c in CXRLT_CLASSES},
            "clean_counts": {c: int(v) for c, v in zip(CXRLT_CLASSES, result["clean"].sum(axis=0))},
            "oversampled_classes": result["oversampled"],
        }
    return info


def _simulate_single(
    task: SimulatedSet, out: Path, seed: int, size: int, sizes: dict[str, int], record: Callable[[list[str]], None]
) -> dict:
    from ral.data.simulate.fundus import FUNDUS
    from ral.data.simulate.single_label import MIN_POSITIVES, simulate_split
    from ral.data.simulate.skin import SKIN

    spec = FUNDUS if task == "fundus" else SKIN
    classes = list(spec.classes)
    info = _header(task, seed, size, sizes, classes)
    info["layout"] = spec.layout
    info["noise"] = {"missing_rate": 0.0, "applies_to": "none (single-label labels are clean)"}
    info["min_positives"] = {k: v for k, v in MIN_POSITIVES.items() if v}
    offset = 0
    for split in SPLITS:
        result = simulate_split(spec, split, sizes[split], out, seed=seed, size=size, first_index=offset, record=record)
        offset += sizes[split]
        frame = result["frame"]
        write_csv(frame, out / f"{split}.csv")
        info["splits"][split] = {
            "images": sizes[split],
            "patients": sizes[split],
            "counts": _single_label_counts(frame, classes),
            "oversampled_classes": result["oversampled"],
        }
    return info


def _single_label_counts(frame, classes: list[str]) -> dict[str, int]:
    if "diagnosis" in frame.columns:  # APTOS: one grade column
        return {c: int((frame["diagnosis"] == k).sum()) for k, c in enumerate(classes)}
    return {c: int(frame[c].astype(float).sum()) for c in classes}


def _header(task: SimulatedSet, seed: int, size: int, sizes: dict[str, int], classes: list[str]) -> dict:
    return {
        "generator": GENERATOR,
        "task": task,
        "seed": seed,
        "image_size": size,
        "sizes": dict(sizes),
        "classes": list(classes),
        "splits": {},
    }
