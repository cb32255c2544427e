"""Bootstrap intervals: the vectorised weighted metrics equal scikit-learn on repeated rows,
the intervals are seeded, contain the point estimate, and skip undefined resamples."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ral.metrics import (
    METRIC_NAMES,
    bootstrap_ci,
    multilabel_metrics,
    resample_weights,
    single_label_metrics,
)
from ral.metrics.bootstrap import _MultilabelResampler, _SingleLabelResampler

GROUPS = ["head", "head", "medium", "tail", "tail"]


def _multilabel_data(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scores rounded to 2 decimals (many ties), ~10% NaN labels, one rare class."""
    rng = np.random.default_rng(seed)
    prevalence = np.array([0.5, 0.3, 0.15, 0.05, 0.02])
    y_true = (rng.random((n, 5)) < prevalence).astype(float)
    y_true[:3, 4] = 1.0  # at least three positives in the rare class
    y_score = np.round(np.clip(0.35 * y_true + 0.65 * rng.random((n, 5)), 0, 1), 2)
    y_true[rng.random((n, 5)) < 0.1] = np.nan
    return y_true, y_score


def _single_label_data(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.choice(4, size=n, p=[0.6, 0.25, 0.1, 0.05])
    probs = rng.random((n, 4)) + 0.8 * np.eye(4)[labels]
    return labels, probs / probs.sum(axis=1, keepdims=True)


def test_resample_weights_are_draw_counts():
    weights = resample_weights(np.random.default_rng(0), 50, 7)
    assert weights.shape == (7, 50)
    np.testing.assert_array_equal(weights.sum(axis=1), 50)
    assert np.all(weights == np.round(weights)) and weights.min() >= 0


def test_weighted_multilabel_metrics_equal_scikit_learn_on_repeated_rows():
    y_true, y_score = _multilabel_data()
    cuts = np.array([0.5, 0.4, 0.6, 0.5, 0.3])
    resampler = _MultilabelResampler(y_true, y_score, cuts)
    weights = np.vstack([np.ones(len(y_true)), resample_weights(np.random.default_rng(1), len(y_true), 2)])
    per_class = resampler.per_class(weights, {"AP", "AUC", "F1"})
    for b, row_weights in enumerate(weights):
        rows = np.repeat(np.arange(len(y_true)), row_weights.astype(int))
        expected = multilabel_metrics(y_true[rows], y_score[rows], thresholds=cuts)["per_class"]
        for key in ("AP", "AUC", "F1"):
            np.testing.assert_allclose(per_class[key][b], expected[key], rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    labels=st.lists(st.lists(st.sampled_from([0.0, 1.0, np.nan]), min_size=3, max_size=3), min_size=1, max_size=12),
    data=st.data(),
)
def test_weighted_metrics_equal_scikit_learn_for_any_small_case(labels, data):
    """Any labels (NaN columns, all-positive columns), tied scores, any draw counts."""
    y_true = np.array(labels)
    n = len(y_true)
    y_score = np.array(
        data.draw(st.lists(st.sampled_from([0.1, 0.3, 0.5, 0.7]), min_size=3 * n, max_size=3 * n))
    ).reshape(n, 3)
    counts = np.array([data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))], dtype=float)
    per_class = _MultilabelResampler(y_true, y_score, np.full(3, 0.5)).per_class(
        counts.astype(np.float32), {"AP", "AUC", "F1"}
    )
    rows = np.repeat(np.arange(n), counts[0].astype(int))
    if rows.size == 0:
        assert np.isnan(per_class["AP"]).all()
        return
    expected = multilabel_metrics(y_true[rows], y_score[rows])["per_class"]
    for key in ("AP", "AUC", "F1"):
        np.testing.assert_allclose(per_class[key][0], expected[key], rtol=1e-12, atol=1e-12)


def test_weighted_single_label_metrics_equal_scikit_learn_on_repeated_rows():
    labels, probs = _single_label_data()
    weights = np.vstack([np.ones(len(labels)), resample_weights(np.random.default_rng(2), len(labels), 2)])
    values = _SingleLabelResampler(labels, probs)(weights, list(METRIC_NAMES["single"]), np.array(GROUPS[1:]))
    for b, row_weights in enumerate(weights):
        rows = np.repeat(np.arange(len(labels)), row_weights.astype(int))
        expected = single_label_metrics(labels[rows], probs[rows], groups=GROUPS[1:])
        for name in METRIC_NAMES["single"]:
            assert values[name][b] == pytest.approx(expected[name], rel=1e-12, nan_ok=True)


def test_multilabel_interval_is_seeded_and_contains_the_point_estimate():
    y_true, y_score = _multilabel_data()
    names = list(METRIC_NAMES["multilabel"])
    first = bootstrap_ci(y_true, y_score, metric_names=names, n_boot=200, seed=3, groups=GROUPS)
    again = bootstrap_ci(y_true, y_score, metric_names=names, n_boot=200, seed=3, groups=GROUPS)
    other = bootstrap_ci(y_true, y_score, metric_names=names, n_boot=200, seed=4, groups=GROUPS)
    assert first == again
    assert first != other
    point = multilabel_metrics(y_true, y_score, groups=GROUPS)
    for name in names:
        low, high = first[name]
        assert low <= point[name] <= high, name
        assert high - low > 0


def test_single_label_interval_contains_the_point_estimate():
    labels, probs = _single_label_data()
    groups = ["head", "medium", "tail", "tail"]
    names = list(METRIC_NAMES["single"])
    intervals = bootstrap_ci(labels, probs, metric_names=names, n_boot=200, seed=0, groups=groups)
    point = single_label_metrics(labels, probs, groups=groups)
    for name in names:
        assert intervals[name][0] <= point[name] <= intervals[name][1], name


def test_paired_difference_interval_contains_the_difference_and_is_narrower():
    y_true, better = _multilabel_data()
    rng = np.random.default_rng(1)
    worse = np.clip(better + rng.normal(0, 0.15, better.shape), 0, 1)
    names = ["mAP", "mAUC"]
    paired = bootstrap_ci(y_true, better, metric_names=names, n_boot=300, seed=0, baseline=worse)
    alone = bootstrap_ci(y_true, better, metric_names=names, n_boot=300, seed=0)
    point_better, point_worse = multilabel_metrics(y_true, better), multilabel_metrics(y_true, worse)
    for name in names:
        low, high = paired[name]
        assert low <= point_better[name] - point_worse[name] <= high, name
        assert low > 0 and high - low < alone[name][1] - alone[name][0], name
    assert bootstrap_ci(y_true, better, metric_names=names, n_boot=50, baseline=better) == {n: (0, 0) for n in names}
    labels, probs = _single_label_data()
    same = bootstrap_ci(labels, probs, metric_names=["accuracy"], n_boot=50, baseline=probs)
    assert same == {"accuracy": (0, 0)}


def test_resamples_without_positives_are_skipped_without_warnings():
    # Class 1 has a single positive in 40 images: about (39/40)^40 = 36% of resamples miss it.
    # Those resamples use class 0 alone, as the point estimate would.
    rng = np.random.default_rng(0)
    y_true = np.zeros((40, 2))
    y_true[:20, 0] = 1
    y_true[0, 1] = 1
    y_score = rng.random((40, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        intervals = bootstrap_ci(y_true, y_score, metric_names=["mAP", "tail_mAP"], n_boot=300, groups=["head", "tail"])
    assert np.isfinite(intervals["mAP"]).all()
    assert np.isfinite(intervals["tail_mAP"]).all()


def test_group_metric_without_groups_is_nan():
    y_true, y_score = _multilabel_data()
    intervals = bootstrap_ci(y_true, y_score, metric_names=["head_mAP"], n_boot=10)
    assert np.isnan(intervals["head_mAP"]).all()


def test_chunking_does_not_change_the_result(monkeypatch):
    y_true, y_score = _multilabel_data()
    whole = bootstrap_ci(y_true, y_score, metric_names=["mAP"], n_boot=50, seed=1)
    monkeypatch.setattr("ral.metrics.bootstrap._CHUNK_ELEMENTS", 7 * len(y_true))
    chunked = bootstrap_ci(y_true, y_score, metric_names=["mAP"], n_boot=50, seed=1)
    # numpy draws bounded integers one after the other, so chunks see the same resamples
    assert chunked == whole


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric_names": ["mAP", "accuracy"]}, "mixes multi-label and single-label"),
        ({"metric_names": ["top5"]}, "metric_names must be non-empty names"),
        ({"metric_names": []}, "metric_names must be non-empty names"),
        ({"metric_names": ["mAP"], "n_boot": 0}, "n_boot must be an integer >= 1, got 0"),
        ({"metric_names": ["mAP"], "level": 1.5}, r"level must be in \(0, 1\), got 1.5"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, message):
    y_true, y_score = _multilabel_data(50)
    with pytest.raises(ValueError, match=message):
        bootstrap_ci(y_true, y_score, **kwargs)
