"""Single-label metrics against values worked out by hand in the comments."""

from __future__ import annotations

import numpy as np
import pytest

from ral.metrics import single_label_metrics

# truth     0 0 0 0 1 1 2
# predicted 0 0 0 1 1 1 0
# accuracy: correct at 0,1,2,4,5 -> 5/7
# recall: class 0 3/4, class 1 2/2, class 2 0/1 -> balanced accuracy (3/4 + 1 + 0) / 3 = 7/12
# F1: class 0 TP3 FP1 FN1 -> 6/8; class 1 TP2 FP1 FN0 -> 4/5; class 2 TP0 -> 0
#     macro-F1 = (0.75 + 0.8 + 0) / 3
Y_TRUE = np.array([0, 0, 0, 0, 1, 1, 2])
PREDICTED = np.array([0, 0, 0, 1, 1, 1, 0])
PROBS = np.eye(3)[PREDICTED] * 0.6 + 0.4 / 3


def test_values_by_hand():
    metrics = single_label_metrics(Y_TRUE, PROBS, groups=["head", "medium", "tail"])
    assert metrics["accuracy"] == pytest.approx(5 / 7)
    assert metrics["balanced_accuracy"] == pytest.approx(7 / 12)
    assert metrics["macro_f1"] == pytest.approx((0.75 + 0.8 + 0.0) / 3)
    assert metrics["head_acc"] == pytest.approx(3 / 4)
    assert metrics["medium_acc"] == pytest.approx(1.0)
    assert metrics["tail_acc"] == pytest.approx(0.0)
    np.testing.assert_allclose(metrics["per_class"]["recall"], [3 / 4, 1.0, 0.0])
    np.testing.assert_array_equal(metrics["per_class"]["n"], [4, 2, 1])


def test_one_hot_targets_give_the_same_result():
    from_indices = single_label_metrics(Y_TRUE, PROBS)
    from_one_hot = single_label_metrics(np.eye(3)[Y_TRUE], PROBS)
    for key in ("accuracy", "balanced_accuracy", "macro_f1"):
        assert from_one_hot[key] == pytest.approx(from_indices[key])


def test_group_accuracy_is_the_mean_recall_of_its_present_classes():
    # 4 classes; class 3 never occurs in y_true -> recall NaN, left out of every mean.
    # tail group = classes 2 and 3 -> only class 2 counts (recall 0); head = class 0 and 1
    probs = np.hstack([PROBS, np.zeros((7, 1))])
    metrics = single_label_metrics(Y_TRUE, probs, groups=["head", "head", "tail", "tail"])
    assert metrics["head_acc"] == pytest.approx((3 / 4 + 1.0) / 2)
    assert metrics["tail_acc"] == pytest.approx(0.0)
    assert np.isnan(metrics["medium_acc"])
    assert metrics["balanced_accuracy"] == pytest.approx(7 / 12)
    assert np.isnan(metrics["per_class"]["recall"][3])


def test_without_groups_group_accuracies_are_nan():
    metrics = single_label_metrics(Y_TRUE, PROBS)
    assert all(np.isnan(metrics[k]) for k in ("head_acc", "medium_acc", "tail_acc"))


@pytest.mark.parametrize(
    ("y_true", "probs", "message"),
    [
        (np.array([0, 3]), np.ones((2, 3)), r"indices must be in \[0, 2\], got 3"),
        (np.array([0, 1, 2]), np.ones((2, 3)), "must be class indices of shape"),
        (np.array([0.5, 1.0]), np.ones((2, 3)), "integer class indices"),
        (np.array([0, 1]), np.ones(3), "probs must be a non-empty 2-D"),
        (np.array([0, 1]), np.array([[0.1, np.nan], [0.2, 0.3]]), "non-finite value in row 0"),
    ],
)
def test_bad_inputs_raise_value_error(y_true, probs, message):
    with pytest.raises(ValueError, match=message):
        single_label_metrics(y_true, probs)
