"""The maths of study aggregation (mean per study; mean per view type, then over the study's views)
and the errors when a table lacks what an aggregation needs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ral.data.table import LabelTable
from ral.engine.aggregate import aggregate_probabilities, aggregation_keys

PROBS = np.array(
    [
        [0.9, 0.1],  # study a, frontal
        [0.7, 0.3],  # study a, frontal
        [0.2, 0.6],  # study a, lateral
        [0.4, 0.4],  # study b, frontal (alone)
        [0.1, 0.8],  # study c, lateral
        [0.5, 0.0],  # study c, frontal
    ]
)
STUDIES = ["a", "a", "a", "b", "c", "c"]
VIEWS = ["frontal", "frontal", "lateral", "frontal", "lateral", "frontal"]


def test_study_mean_gives_every_image_its_study_mean():
    out = aggregate_probabilities(PROBS, STUDIES)
    a, b, c = PROBS[:3].mean(axis=0), PROBS[3], PROBS[4:].mean(axis=0)
    np.testing.assert_allclose(out, np.stack([a, a, a, b, c, c]))


def test_view_study_weighs_each_view_type_once():
    out = aggregate_probabilities(PROBS, STUDIES, VIEWS)
    a = ((PROBS[0] + PROBS[1]) / 2 + PROBS[2]) / 2  # frontal mean, then with the lateral
    np.testing.assert_allclose(out[:3], np.stack([a, a, a]))
    assert not np.allclose(a, PROBS[:3].mean(axis=0))  # differs from the plain study mean
    np.testing.assert_allclose(out[3], PROBS[3])  # one image: unchanged
    np.testing.assert_allclose(out[4:], np.stack([PROBS[4:].mean(axis=0)] * 2))  # one image per view: the mean


def test_aggregation_follows_the_rows_wherever_they_are():
    order = np.random.default_rng(0).permutation(len(PROBS))
    for views in (None, VIEWS):
        shuffled_views = None if views is None else [views[i] for i in order]
        shuffled = aggregate_probabilities(PROBS[order], [STUDIES[i] for i in order], shuffled_views)
        np.testing.assert_allclose(shuffled, aggregate_probabilities(PROBS, STUDIES, views)[order])


def test_one_image_per_study_and_one_view_per_study_change_nothing():
    np.testing.assert_array_equal(aggregate_probabilities(PROBS, [str(i) for i in range(6)]), PROBS)
    same_view = aggregate_probabilities(PROBS, STUDIES, ["frontal"] * 6)
    np.testing.assert_allclose(same_view, aggregate_probabilities(PROBS, STUDIES))
    assert aggregate_probabilities(np.zeros((0, 3)), []).shape == (0, 3)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match=r"probs must have shape \(N, C\), got \(6,\)"):
        aggregate_probabilities(PROBS[:, 0], STUDIES)
    with pytest.raises(ValueError, match=r"must have the N = 6 entries of probs, got 5 and 6"):
        aggregate_probabilities(PROBS, STUDIES[:5])
    with pytest.raises(ValueError, match=r"got 6 and 2"):
        aggregate_probabilities(PROBS, STUDIES, VIEWS[:2])


def _table(study_ids=None, views=None, fmt="cxrlt") -> LabelTable:
    n = len(PROBS)
    ids = [f"d{i}" for i in range(n)]
    return LabelTable(
        ids=ids,
        paths=[f"{i}.png" for i in ids],
        subject_ids=ids,
        class_names=[],
        labels=np.zeros((n, 0)),
        format=fmt,
        source=Path("dev.csv"),
        study_ids=study_ids,
        views=views,
    )


def test_keys_come_from_the_table_with_view_types_of_its_format():
    table = _table(STUDIES, ["PA", "AP", "LATERAL", "PA", "LL", ""])
    assert aggregation_keys(table, "none") is None
    assert aggregation_keys(table, "study") == (STUDIES, None)
    assert aggregation_keys(table, "view-study") == (
        STUDIES,
        ["frontal", "frontal", "lateral", "frontal", "lateral", ""],
    )


def test_tables_without_what_the_aggregation_needs_are_named():
    with pytest.raises(ValueError, match=r"aggregate 'study': data dev.csv \(generic table\) has no study ids"):
        aggregation_keys(_table(fmt="generic"), "study")
    with pytest.raises(
        ValueError, match=r"aggregate 'study': 1 image\(s\) of val_data dev.csv .* no study id \(first: d2"
    ):
        aggregation_keys(_table(["a", "a", "", "b", "c", "c"]), "study", key="val_data")
    with pytest.raises(ValueError, match=r"aggregate 'view-study': data dev.csv \(cxrlt table\) records no views"):
        aggregation_keys(_table(STUDIES), "view-study")
    with pytest.raises(ValueError, match=r"aggregate must be one of \('none', 'study', 'view-study'\), got 'patient'"):
        aggregation_keys(_table(STUDIES), "patient")


def test_a_study_id_under_two_patients_is_two_studies():
    """Issue 19: a generic table where study s1 appears under subjects p1 and p2 is not one study."""
    table = LabelTable(
        ids=["a", "b", "c"],
        paths=["a.png", "b.png", "c.png"],
        subject_ids=["p1", "p1", "p2"],
        class_names=[],
        labels=np.zeros((3, 0)),
        format="generic",
        study_ids=["s1", "s1", "s1"],
    )
    keys = aggregation_keys(table, "study")
    assert keys[0][0] == keys[0][1] != keys[0][2]
    out = aggregate_probabilities(PROBS[:3], *keys)
    np.testing.assert_allclose(out, np.stack([PROBS[:2].mean(axis=0)] * 2 + [PROBS[2]]))
