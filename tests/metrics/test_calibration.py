"""ECE and reliability bins: a hand-computed case, torchmetrics' values, NaN labels, groups, single-label."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import binary_calibration_error, multiclass_calibration_error

from ral.metrics import per_class_ci, per_class_metrics
from ral.metrics.calibration import (
    calibration_metrics,
    expected_calibration_error,
    per_class_ece,
    reliability_bins,
)


def test_ece_by_hand() -> None:
    # 2 bins: [0, 0.5) holds 0.1, 0.2 (labels 0, 1) -> conf 0.15, freq 0.5, gap 0.35;
    # [0.5, 1] holds 0.8, 0.9, 1.0 (labels 1, 1, 0) -> conf 0.9, freq 2/3, gap 0.2333.
    truth = np.array([0, 1, 1, 1, 0])
    prob = np.array([0.1, 0.2, 0.8, 0.9, 1.0])
    expected = (2 * 0.35 + 3 * (0.9 - 2 / 3)) / 5
    assert expected_calibration_error(truth, prob, n_bins=2) == pytest.approx(expected)
    bins = reliability_bins(truth, prob, n_bins=2)
    np.testing.assert_allclose(bins["count"], [2, 3])
    np.testing.assert_allclose(bins["confidence"], [0.15, 0.9])
    np.testing.assert_allclose(bins["frequency"], [0.5, 2 / 3])


def test_ece_equals_torchmetrics_binary_and_multiclass() -> None:
    rng = np.random.default_rng(0)
    prob = rng.uniform(0.001, 0.999, 500)
    truth = (rng.random(500) < prob**2).astype(float)
    ours = expected_calibration_error(truth, prob, n_bins=15)
    theirs = binary_calibration_error(torch.tensor(prob), torch.tensor(truth).long(), n_bins=15, norm="l1")
    assert ours == pytest.approx(float(theirs), abs=1e-6)

    logits = rng.normal(size=(400, 4))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = rng.integers(0, 4, 400)
    ours = calibration_metrics(labels, probs, task="single")["ECE"]
    theirs = multiclass_calibration_error(torch.tensor(probs), torch.tensor(labels), num_classes=4, n_bins=15)
    assert ours == pytest.approx(float(theirs), abs=1e-6)


def test_nan_labels_are_left_out_and_groups_pool_their_classes() -> None:
    truth = np.array([[1.0, 0.0, np.nan], [0.0, np.nan, 1.0], [1.0, 1.0, 0.0]])
    prob = np.array([[0.9, 0.2, 0.5], [0.3, 0.7, 0.6], [0.8, 0.4, 0.1]])
    known = ~np.isnan(truth)
    metrics = calibration_metrics(truth, prob, task="multilabel", groups=["head", "tail", "tail"], n_bins=5)
    assert metrics["ECE"] == pytest.approx(expected_calibration_error(truth[known], prob[known], n_bins=5))
    tail = truth[:, 1:][known[:, 1:]], prob[:, 1:][known[:, 1:]]
    assert metrics["ECE_tail"] == pytest.approx(expected_calibration_error(*tail, n_bins=5))
    assert np.isnan(metrics["ECE_medium"])  # no medium class
    assert metrics["ECE_bins"] == 5
    per_class = per_class_ece(truth, prob, n_bins=5)
    assert per_class[0] == pytest.approx(expected_calibration_error(truth[:, 0], prob[:, 0], n_bins=5))
    assert np.isnan(expected_calibration_error(np.array([np.nan]), np.array([0.5])))


def test_bad_bins_and_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="n_bins"):
        reliability_bins(np.ones(3), np.ones(3), n_bins=0)
    with pytest.raises(ValueError, match="same size"):
        reliability_bins(np.ones(3), np.ones(4))


def test_per_class_ap_interval_holds_the_point_and_is_seeded() -> None:
    rng = np.random.default_rng(1)
    truth = (rng.random((200, 3)) < [0.5, 0.2, 0.05]).astype(float)
    truth[:2, 2] = 1.0
    truth[rng.random((200, 3)) < 0.05] = np.nan
    prob = np.clip(0.3 * np.nan_to_num(truth) + 0.7 * rng.random((200, 3)), 0, 1)
    intervals = per_class_ci(truth, prob, n_boot=200, seed=3)
    point = per_class_metrics(truth, prob)["AP"]
    assert intervals.shape == (3, 2)
    assert np.all(intervals[:, 0] <= point) and np.all(point <= intervals[:, 1])
    np.testing.assert_array_equal(intervals, per_class_ci(truth, prob, n_boot=200, seed=3))
    assert np.all(np.diff(intervals, axis=1) > 0)
    with pytest.raises(ValueError, match="metric"):
        per_class_ci(truth, prob, metric="F1")
