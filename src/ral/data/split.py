"""Patient-level train / val / test splits (no patient in two splits), stratified by label."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ral.data.table import LabelTable, Task

SPLIT_NAMES = ("train", "val", "test")


def patient_split(
    table: LabelTable,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    *,
    seed: int = 0,
) -> dict[str, LabelTable]:
    """Split ``table`` into train / val / test so that no patient (subject_id) is in two splits.

    Patients are the units: each patient's label vector is the union (max) of its images'
    labels (NaN counts as 0), and patients are divided with iterative stratification
    (``iterstrat.MultilabelStratifiedShuffleSplit``) for multi-label tables, or stratified
    by the patient's most frequent class for single-label tables. Fractions are of patients.

    Returns:
        ``{"train": ..., "val": ..., "test": ...}`` (a split with fraction 0 is empty).

    Raises:
        ValueError: fractions not three non-negative numbers summing to 1, or too few patients.
    """
    fr = np.asarray(fractions, dtype=np.float64)
    if fr.shape != (3,) or np.any(fr < 0) or not np.isclose(fr.sum(), 1.0):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions!r}")
    subjects, inverse = np.unique(np.asarray(table.subject_ids, dtype=object).astype(str), return_inverse=True)
    if subjects.size < 3:
        raise ValueError(f"patient_split needs at least 3 patients, got {subjects.size}")
    per_patient = np.zeros((subjects.size, table.num_classes), dtype=np.float32)
    np.maximum.at(per_patient, inverse, np.nan_to_num(table.labels, nan=0.0))
    rng_seed = int(seed)
    all_patients = np.arange(subjects.size)
    rest, test = _split_off(per_patient, all_patients, fr[2], table.task, rng_seed)
    val_share = fr[1] / (fr[0] + fr[1]) if fr[0] + fr[1] > 0 else 0.0
    train, val = _split_off(per_patient, rest, val_share, table.task, rng_seed + 1)
    out = {}
    for name, patients in zip(SPLIT_NAMES, (train, val, test)):
        rows = np.flatnonzero(np.isin(inverse, patients))
        out[name] = table.subset(rows)
    return out


def _split_off(
    y: np.ndarray, patients: np.ndarray, share: float, task: Task, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``patients`` into (kept, split off) with about ``share`` of them split off."""
    n_off = int(round(share * patients.size))
    if n_off == 0:
        return patients, patients[:0]
    if n_off == patients.size:
        return patients[:0], patients
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit
    from sklearn.model_selection import StratifiedShuffleSplit

    labels = y[patients]
    if task == "single":
        strata = labels.argmax(axis=1)
        if np.bincount(strata).min() < 2:  # sklearn needs two members per stratum
            strata = np.zeros_like(strata)
        splitter = StratifiedShuffleSplit(n_splits=1, test_size=n_off, random_state=seed)
        keep, off = next(splitter.split(np.zeros(patients.size), strata))
    else:
        splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=n_off / patients.size, random_state=seed)
        keep, off = next(splitter.split(np.zeros(patients.size), labels))
    return patients[np.sort(keep)], patients[np.sort(off)]
