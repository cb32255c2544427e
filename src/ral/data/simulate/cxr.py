"""The simulated multi-label chest-radiograph dataset (26 CXR-LT 2023 findings).

Written in the CXR-LT 2023 layout (``dicom_id, subject_id, study_id, <26 findings>, fpath``)
plus MIMIC-CXR's ``ViewPosition`` column, with images under MIMIC's path scheme
``files/pXX/pNNNNNNNN/sNNNNNNNN/<dicom_id>.png``. A study has one to three views that share its
labels; each view shows each finding with its own visibility (lateral views somewhat less), so
averaging a study's predictions over its views helps, as it does on real data.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ral.data.classes import CXRLT_CLASSES
from ral.data.simulate import labels as label_model
from ral.data.simulate.findings import render_batch
from ral.data.simulate.render import image_parameters, sample_patient_anatomy
from ral.progress import progress

SPLIT_CODES = {"train": 1, "val": 2, "test": 3}
# Minimum positive studies per class in the clean evaluation splits (rare classes are oversampled).
MIN_POSITIVES = {"train": 0, "val": 20, "test": 40}
BATCH = 512
FIRST_SUBJECT_ID = 10_000_000  # MIMIC-like 8-digit patient ids, disjoint ranges per split
FIRST_STUDY_ID = 50_000_000  # MIMIC-like 8-digit study ids
LATERAL = label_model.VIEWS.index("LATERAL")
LATERAL_VISIBILITY = 0.8  # a lateral view shows a finding less clearly than a frontal one


def sample_visibility(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """float32 visibility in [0, 1] of each (image, finding): many findings are subtle."""
    return rng.beta(1.2, 1.6, size=shape).astype(np.float32)


def lateral_geometry(params: dict[str, np.ndarray], rows: np.ndarray) -> None:
    """Make rows ``rows`` lateral-like (in place): the lungs overlap in one wide field, the heart
    lies anterior (image left) and the mediastinum is narrow."""
    params["lung_cx"][rows] *= 0.3
    params["lung_rx"][rows] *= 1.3
    params["heart_cx"][rows] = -0.12
    params["heart_rx"][rows] *= 0.75
    params["med_w"][rows] *= 0.5


def dicom_ids(n: int, rng: np.random.Generator) -> list[str]:
    """MIMIC-like DICOM ids: five dash-separated groups of eight hex digits."""
    words = rng.integers(0, 2**32, size=(n, 5), dtype=np.uint64)
    return ["-".join(f"{int(w):08x}" for w in row) for row in words]


def simulate_split(
    split: str,
    n_images: int,
    out_dir: Path,
    *,
    seed: int,
    size: int,
    missing_rate: float,
    first_subject: int,
    first_study: int,
    record: Callable[[list[str]], None] | None = None,
) -> dict:
    """Draw labels, render and write the images of one split; returns its table and summary.

    ``record`` is called with the images' paths (relative to ``out_dir``) before they are written.

    Returns:
        dict with ``frame`` (the CSV as a DataFrame), ``clean`` (the clean labels per image,
        uint8 (N, 26)), ``num_patients``, ``num_studies`` and ``oversampled`` (classes whose
        quota was raised to the minimum).
    """
    code = SPLIT_CODES[split]
    rng = np.random.default_rng([seed, code, 0])
    study, view = label_model.sample_studies(n_images, rng)
    n_studies = int(study.max()) + 1
    patient_of_study = label_model.sample_patients(n_studies, rng)
    factors = label_model.sample_factors(patient_of_study, rng)
    prevalence = label_model.clean_prevalence(missing_rate)
    natural = np.rint(n_studies * prevalence)
    counts = label_model.quotas(n_studies, prevalence, MIN_POSITIVES[split])
    clean_study = label_model.sample_labels(factors, counts, rng)
    observed_study = label_model.drop_positives(clean_study, missing_rate, rng) if split == "train" else clean_study
    clean, observed, patient = clean_study[study], observed_study[study], patient_of_study[study]
    visibility = sample_visibility(clean.shape, rng)
    visibility[view == LATERAL] *= LATERAL_VISIBILITY
    anatomy = sample_patient_anatomy(int(patient.max()) + 1, rng)
    subjects = first_subject + patient
    studies = first_study + study
    ids = dicom_ids(n_images, rng)
    paths = [f"files/p{str(s)[:2]}/p{s}/s{t}/{i}.png" for s, t, i in zip(subjects, studies, ids)]
    if record is not None:
        record(paths)

    bar = progress(total=n_images, desc=f"simulate {split}", unit="image")
    for b, start in enumerate(range(0, n_images, BATCH)):
        rows = np.arange(start, min(start + BATCH, n_images))
        brng = np.random.default_rng([seed, code, 1, b])
        params = image_parameters(anatomy, patient[rows], brng)
        lateral_geometry(params, np.flatnonzero(view[rows] == LATERAL))
        pixels = render_batch(clean[rows], visibility[rows], params, size, brng)
        for r, arr in zip(rows, pixels):
            target = out_dir / paths[r]
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr, mode="L").save(target, format="PNG", compress_level=1)
            bar.update()
    bar.close()

    frame = pd.DataFrame(
        {"dicom_id": ids, "subject_id": subjects.astype(np.int64), "study_id": studies.astype(np.int64)}
    )
    frame = pd.concat([frame, pd.DataFrame(observed.astype(np.int64), columns=CXRLT_CLASSES)], axis=1)
    frame["fpath"] = paths
    frame["ViewPosition"] = [label_model.VIEWS[v] for v in view]
    oversampled = [c for c, n, k in zip(CXRLT_CLASSES, natural, counts) if k > n]
    return {
        "frame": frame,
        "clean": clean,
        "num_patients": int(patient.max()) + 1,
        "num_studies": n_studies,
        "oversampled": oversampled,
    }
