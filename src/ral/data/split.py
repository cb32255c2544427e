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


def _patients(table: LabelTable) -> tuple[np.ndarray, np.ndarray]:
    """(patient names (P,), patient index of each image (N,))."""
    return np.unique(np.asarray(table.subject_ids, dtype=object).astype(str), return_inverse=True)


def patient_folds(table: LabelTable, folds: int = 5, *, seed: int = 0, test_fraction: float = 0.0) -> np.ndarray:
    """Patient-level, stratified K-fold assignment of ``table``'s images (no patient in two folds).

    Multi-label: ``iterstrat``'s ``MultilabelStratifiedKFold`` on the patients' label vectors
    (union of their images' labels, NaN as 0); single-label: scikit-learn's
    ``StratifiedGroupKFold`` on the images, grouped by patient. Both balance patients, not
    images, so a patient with many positive images of a class can still skew that class's
    image counts: a local search then moves single patients between folds while that brings
    every class's positive-image count (and the images per fold) closer to its mean, in units
    of max(1, 10 % of the mean per fold). With ``test_fraction`` that share of the patients is
    first held out, stratified as in :func:`patient_split`.

    Args:
        table: the images, with their patients (``subject_ids``) and labels.
        folds: K >= 2.
        seed: seed of the stratifiers (same seed, same folds).
        test_fraction: share of the patients held out as a test set (fold -1), in [0, 1).

    Returns:
        (N,) int64: the fold (0 .. K-1) of each image, or -1 for a held-out test image.

    Raises:
        ValueError: K < 2, a test fraction outside [0, 1), or fewer than K patients to divide.
    """
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 2:
        raise ValueError(f"folds must be an integer >= 2, got {folds!r}")
    if not 0.0 <= float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction!r}")
    subjects, inverse = _patients(table)
    counts = np.zeros((subjects.size, table.num_classes))
    np.add.at(counts, inverse, np.nan_to_num(table.labels, nan=0.0))  # positive images per patient and class
    per_patient = (counts > 0).astype(np.float32)
    _, test = _split_off(per_patient, np.arange(subjects.size), float(test_fraction), table.task, int(seed))
    fold = np.full(subjects.size, -1, dtype=np.int64)
    rest = np.setdiff1d(np.arange(subjects.size), test)
    if rest.size < folds:
        where = f" in {table.source}" if table.source is not None else ""
        raise ValueError(f"folds: {folds} folds need at least {folds} patients, got {rest.size}{where}")
    fold[rest] = _stratified_folds(table, inverse, per_patient, rest, folds, int(seed))
    sizes = np.bincount(inverse, minlength=subjects.size)
    fold[rest] = balance_folds(np.column_stack([counts, sizes])[rest], fold[rest], folds)
    return fold[inverse]


def _stratified_folds(
    table: LabelTable, inverse: np.ndarray, per_patient: np.ndarray, patients: np.ndarray, folds: int, seed: int
) -> np.ndarray:
    """The fold of each of ``patients`` (iterstrat / scikit-learn, see :func:`patient_folds`)."""
    import warnings

    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold
    from sklearn.model_selection import StratifiedGroupKFold

    out = np.zeros(patients.size, dtype=np.int64)
    if table.task == "multilabel":
        splitter = MultilabelStratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        for k, (_, held) in enumerate(splitter.split(np.zeros(patients.size), per_patient[patients])):
            out[held] = k
        return out
    position = np.full(per_patient.shape[0], -1)
    position[patients] = np.arange(patients.size)
    images = np.flatnonzero(position[inverse] >= 0)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # "least populated class has fewer members than n_splits": balanced below
        warnings.simplefilter("ignore", UserWarning)
        split = splitter.split(images, table.targets_single()[images], groups=inverse[images])
        for k, (_, held) in enumerate(split):
            out[position[inverse[images[held]]]] = k
    return out


def fold_tolerance(totals: np.ndarray, folds: int) -> np.ndarray:
    """max(1, 10 % of the mean per fold) of each column of ``totals`` (C,): how far a fold may stray."""
    return np.maximum(1.0, 0.1 * np.asarray(totals, dtype=np.float64) / folds)


def balance_folds(weights: np.ndarray, fold: np.ndarray, folds: int, *, max_moves: int | None = None) -> np.ndarray:
    """Move units (patients) between folds while that lowers the spread of every column's fold sums.

    Minimises ``sum over folds k and columns c of ((S[k, c] - mean_c) / t_c) ** 2``, where
    ``S[k, c]`` sums ``weights[:, c]`` over the units of fold k and ``t_c`` is
    :func:`fold_tolerance`; each step makes the one move that lowers it most. Hand-written:
    the stratifiers balance the number of units per class, not their weights (a patient's
    positive images), and none of scikit-learn / iterstrat refines an assignment.

    Args:
        weights: (P, C) non-negative weight of each unit in each column.
        fold: (P,) initial fold of each unit (0 .. folds-1).
        folds: number of folds.
        max_moves: stop after this many moves (default 4 * P).

    Returns:
        (P,) the new folds (a copy); never worse than ``fold``.
    """
    scale = fold_tolerance(weights.sum(axis=0), folds)
    unit = np.asarray(weights, dtype=np.float64) / scale
    fold = np.asarray(fold, dtype=np.int64).copy()
    sums = np.zeros((folds, unit.shape[1]))
    np.add.at(sums, fold, unit)
    deviation = sums - sums.mean(axis=0)
    square = (unit**2).sum(axis=1)
    rows = np.arange(unit.shape[0])
    for _ in range(4 * len(unit) if max_moves is None else max_moves):
        # change of the objective when unit p leaves fold a for fold b: 2 w.(D_b - D_a) + 2 |w|^2
        gain = 2.0 * (unit @ deviation.T - (unit * deviation[fold]).sum(axis=1)[:, None] + square[:, None])
        gain[rows, fold] = np.inf
        best = int(np.argmin(gain))
        p, target = divmod(best, folds)
        if gain[p, target] > -1e-9:
            break
        deviation[fold[p]] -= unit[p]
        deviation[target] += unit[p]
        fold[p] = target
    return fold
