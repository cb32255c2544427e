"""Patient-level, stratified train / val / test splits."""

from __future__ import annotations

import numpy as np
import pytest

from ral.data import LabelTable
from ral.data.split import patient_split


def _table(n: int = 3000, task: str = "multilabel", seed: int = 0) -> LabelTable:
    rng = np.random.default_rng(seed)
    subjects = [f"p{i}" for i in rng.integers(0, n // 3, n)]
    if task == "single":
        labels = np.eye(4, dtype=np.float32)[rng.choice(4, n, p=[0.7, 0.2, 0.07, 0.03])]
    else:
        labels = (rng.random((n, 5)) < [0.3, 0.1, 0.05, 0.02, 0.01]).astype(np.float32)
        labels[rng.random((n, 5)) < 0.02] = np.nan
    return LabelTable(
        ids=[str(i) for i in range(n)],
        paths=[f"{i}.png" for i in range(n)],
        subject_ids=subjects,
        class_names=list("abcde"[: labels.shape[1]]),
        labels=labels,
        task=task,
    )


@pytest.mark.parametrize("task", ["multilabel", "single"])
def test_no_patient_in_two_splits_and_nothing_lost(task):
    table = _table(task=task)
    splits = patient_split(table, (0.7, 0.15, 0.15), seed=1)
    patients = {name: set(part.subject_ids) for name, part in splits.items()}
    assert not patients["train"] & patients["val"]
    assert not patients["train"] & patients["test"]
    assert not patients["val"] & patients["test"]
    assert sorted(sum((part.ids for part in splits.values()), [])) == sorted(table.ids)
    n_patients = len(set(table.subject_ids))
    assert abs(len(patients["val"]) - 0.15 * n_patients) <= 2


def test_multilabel_split_is_stratified():
    table = _table(6000)
    splits = patient_split(table, seed=0)
    overall = np.nanmean(table.labels, axis=0)
    for part in splits.values():
        prevalence = np.nanmean(part.labels, axis=0)
        assert np.all(np.abs(prevalence - overall) < 0.35 * overall + 0.004)
        assert np.all(part.class_counts() > 0)  # even the 1% class reaches every split


def test_split_is_deterministic_in_seed():
    table = _table()
    a = patient_split(table, seed=3)
    b = patient_split(table, seed=3)
    c = patient_split(table, seed=4)
    assert a["test"].ids == b["test"].ids and a["test"].ids != c["test"].ids


def test_bad_fractions():
    with pytest.raises(ValueError, match="fractions must be three non-negative numbers summing to 1"):
        patient_split(_table(), (0.8, 0.3, 0.1))
