"""The simulated multi-label chest-radiograph dataset (26 CXR-LT 2023 findings)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ral.data.classes import CXRLT_CLASSES
from ral.data.simulate import labels as label_model
from ral.data.simulate.render import image_parameters, render_batch, sample_patient_anatomy

SPLIT_CODES = {"train": 1, "val": 2, "test": 3}
# Minimum positives per class in the clean evaluation splits (rare classes are oversampled).
MIN_POSITIVES = {"train": 0, "val": 20, "test": 40}
BATCH = 512
FIRST_SUBJECT_ID = 10_000_000  # MIMIC-like 8-digit patient ids, disjoint ranges per split


def sample_visibility(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """float32 visibility in [0, 1] of each (image, finding): many findings are subtle."""
    return rng.beta(1.2, 1.6, size=shape).astype(np.float32)


def simulate_split(
    split: str,
    n_images: int,
    out_dir: Path,
    *,
    seed: int,
    size: int,
    missing_rate: float,
    first_subject: int,
) -> dict:
    """Draw labels, render and write the images of one split; returns its table and summary.

    Returns:
        dict with ``frame`` (the CSV as a DataFrame), ``clean`` (the clean labels, uint8 (N, 26)),
        ``num_patients`` and ``oversampled`` (classes whose quota was raised to the minimum).
    """
    code = SPLIT_CODES[split]
    rng = np.random.default_rng([seed, code, 0])
    patient = label_model.sample_patients(n_images, rng)
    factors = label_model.sample_factors(patient, rng)
    prevalence = label_model.clean_prevalence(missing_rate)
    natural = np.rint(n_images * prevalence)
    counts = label_model.quotas(n_images, prevalence, MIN_POSITIVES[split])
    clean = label_model.sample_labels(factors, counts, rng)
    observed = label_model.drop_positives(clean, missing_rate, rng) if split == "train" else clean
    visibility = sample_visibility(clean.shape, rng)
    anatomy = sample_patient_anatomy(int(patient.max()) + 1, rng)

    folder = out_dir / "images" / split
    folder.mkdir(parents=True, exist_ok=True)
    paths = [f"images/{split}/{i:06d}.png" for i in range(n_images)]
    for b, start in enumerate(range(0, n_images, BATCH)):
        rows = np.arange(start, min(start + BATCH, n_images))
        brng = np.random.default_rng([seed, code, 1, b])
        params = image_parameters(anatomy, patient[rows], brng)
        pixels = render_batch(clean[rows], visibility[rows], params, size, brng)
        for r, arr in zip(rows, pixels):
            Image.fromarray(arr, mode="L").save(out_dir / paths[r], format="PNG", compress_level=1)

    frame = pd.DataFrame({"path": paths, "subject_id": (first_subject + patient).astype(np.int64)})
    frame = pd.concat([frame, pd.DataFrame(observed.astype(np.int64), columns=CXRLT_CLASSES)], axis=1)
    oversampled = [c for c, n, k in zip(CXRLT_CLASSES, natural, counts) if k > n]
    return {"frame": frame, "clean": clean, "num_patients": int(patient.max()) + 1, "oversampled": oversampled}
