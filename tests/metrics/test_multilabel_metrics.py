"""Multi-label metrics against values worked out by hand in the comments."""

from __future__ import annotations

import numpy as np
import pytest

from ral.metrics import (
    multilabel_metrics,
    per_class_metrics,
    per_class_table,
    tune_thresholds,
)

NAN = np.nan

# Four images, four classes.
# class 0: ranking pos(0.9) neg(0.8) pos(0.7) neg(0.1)
#   AP  = mean precision at the positives = (1/1 + 2/3) / 2 = 5/6
#   AUC = pos>neg pairs: (0.9,0.8) (0.9,0.1) (0.7,0.1) of 4 = 3/4
#   F1@0.5: predicted 0.9 0.8 0.7 -> TP 2, FP 1, FN 0 -> 2*2/(2*2+1) = 4/5
# class 1: row 0 unknown (NaN, score 0.99 must be ignored); known ranking neg(0.6) pos(0.4) pos(0.3)
#   AP  = (1/2 + 2/3) / 2 = 7/12;  AUC = 0 (both positives below the negative)
#   F1@0.5: predicted only the negative -> TP 0 -> F1 = 0
# class 2: no positive among known rows -> AP, AUC, F1 undefined (NaN), excluded
# class 3: all positive -> AP = 1, AUC undefined (no negative);
#   F1@0.5: predicted 0.9 0.6 0.7 -> TP 3, FN 1 -> 6/7
Y_TRUE = np.array(
    [
        [1, NAN, 0, 1],
        [0, 0, 0, 1],
        [1, 1, NAN, 1],
        [0, 1, 0, 1],
    ]
)
Y_SCORE = np.array(
    [
        [0.9, 0.99, 0.3, 0.9],
        [0.8, 0.6, 0.2, 0.2],
        [0.7, 0.4, 0.9, 0.6],
        [0.1, 0.3, 0.1, 0.7],
    ]
)
GROUPS = ["head", "medium", "tail", "tail"]


def test_per_class_values_by_hand():
    per_class = per_class_metrics(Y_TRUE, Y_SCORE)
    np.testing.assert_allclose(per_class["AP"], [5 / 6, 7 / 12, NAN, 1.0])
    np.testing.assert_allclose(per_class["AUC"], [3 / 4, 0.0, NAN, NAN])
    np.testing.assert_allclose(per_class["F1"], [4 / 5, 0.0, NAN, 6 / 7])
    np.testing.assert_array_equal(per_class["n_pos"], [2, 2, 0, 4])
    np.testing.assert_array_equal(per_class["n_neg"], [2, 1, 3, 0])
    np.testing.assert_array_equal(per_class["threshold"], [0.5] * 4)


def test_macro_and_group_means_skip_classes_without_positives():
    metrics = multilabel_metrics(Y_TRUE, Y_SCORE, groups=GROUPS)
    assert metrics["mAP"] == pytest.approx((5 / 6 + 7 / 12 + 1) / 3)
    assert metrics["mAUC"] == pytest.approx((3 / 4 + 0) / 2)
    assert metrics["mF1"] == pytest.approx((4 / 5 + 0 + 6 / 7) / 3)
    assert metrics["head_mAP"] == pytest.approx(5 / 6)
    assert metrics["medium_mAP"] == pytest.approx(7 / 12)
    assert metrics["tail_mAP"] == pytest.approx(1.0)  # class 2 has no positive
    assert metrics["num_classes_evaluated"] == 3


def test_nan_label_is_ignored_not_read_as_negative():
    as_negative = np.nan_to_num(Y_TRUE, nan=0.0)
    # Reading row 0 of class 1 as a negative with score 0.99 would lower its AP:
    # ranking neg(0.99) neg(0.6) pos(0.4) pos(0.3) -> (1/3 + 2/4) / 2 = 5/12.
    assert per_class_metrics(as_negative, Y_SCORE)["AP"][1] == pytest.approx(5 / 12)
    assert per_class_metrics(Y_TRUE, Y_SCORE)["AP"][1] == pytest.approx(7 / 12)


def test_ties_follow_scikit_learn():
    # scores 0.5 (pos), 0.5 (neg), 0.2 (pos): thresholds >=0.5 -> P 1/2, R 1/2; >=0.2 -> P 2/3, R 1
    # AP = 1/2 * 1/2 + 1/2 * 2/3 = 7/12;  AUC = (0.5 tie + 0) / 2 = 1/4
    per_class = per_class_metrics(np.array([[1.0], [0.0], [1.0]]), np.array([[0.5], [0.5], [0.2]]))
    assert per_class["AP"][0] == pytest.approx(7 / 12)
    assert per_class["AUC"][0] == pytest.approx(1 / 4)


def test_without_groups_the_group_means_are_nan_and_without_positives_everything_is():
    metrics = multilabel_metrics(Y_TRUE, Y_SCORE)
    assert np.isnan(metrics["head_mAP"]) and np.isnan(metrics["tail_mAP"])
    empty = multilabel_metrics(np.zeros((3, 2)), np.full((3, 2), 0.5))
    assert np.isnan(empty["mAP"]) and np.isnan(empty["mAUC"]) and np.isnan(empty["mF1"])
    assert empty["num_classes_evaluated"] == 0


def test_tune_thresholds_picks_the_f1_optimal_cut():
    # class 0 cuts (predict score >= cut), labels by score 0.9:1 0.8:1 0.7:0 0.4:1 0.2:0
    #   0.9: TP1 FP0 FN2 -> 2/4 = 0.5     0.8: TP2 FP0 FN1 -> 4/5 = 0.8
    #   0.7: TP2 FP1 FN1 -> 4/6 = 0.667   0.4: TP3 FP1 FN0 -> 6/7 = 0.857 (best)
    #   0.2: TP3 FP2 FN0 -> 6/8 = 0.75
    # row 5 is unknown (NaN) for class 0 and must not become a candidate.
    # class 1 has no positive -> default 0.5.
    y_true = np.array([[1, 0], [1, 0], [0, 0], [1, 0], [0, 0], [NAN, 0]])
    y_score = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.4, 0.4], [0.2, 0.5], [0.95, 0.6]])
    cuts = tune_thresholds(y_true, y_score)
    np.testing.assert_allclose(cuts, [0.4, 0.5])
    tuned = multilabel_metrics(y_true, y_score, thresholds=cuts)
    assert tuned["mF1"] == pytest.approx(6 / 7)
    assert multilabel_metrics(y_true, y_score)["mF1"] == pytest.approx(2 / 3)  # 0.5 cut = 0.7 cut


def test_per_class_table_columns_and_values():
    table = per_class_table(
        Y_TRUE,
        Y_SCORE,
        class_names=["a", "b", "c", "d"],
        counts=[40, 30, 2, 1],
        groups=GROUPS,
        thresholds=[0.5, 0.5, 0.5, 0.65],
    )
    assert list(table.columns) == ["class", "count", "group", "AP", "AUC", "F1", "threshold", "n_pos"]
    assert table["class"].tolist() == ["a", "b", "c", "d"]
    assert table["count"].tolist() == [40, 30, 2, 1]
    assert table["group"].tolist() == GROUPS
    np.testing.assert_allclose(table["AP"], [5 / 6, 7 / 12, NAN, 1.0])
    # class 3 at 0.65: predicted 0.9 0.7 -> TP 2, FN 2 -> 4/6
    assert table["F1"].iloc[3] == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("y_true", "y_score", "message"),
    [
        (np.zeros(4), np.zeros(4), "y_true must be a 2-D"),
        (np.zeros((4, 2)), np.zeros((4, 3)), "y_score must have the shape"),
        (np.full((2, 2), 2.0), np.zeros((2, 2)), "only 0, 1 or NaN, got value 2.0"),
        (np.zeros((2, 2)), np.array([[0.1, np.inf], [0.2, 0.3]]), "non-finite value in row 0"),
    ],
)
def test_bad_inputs_raise_value_error(y_true, y_score, message):
    with pytest.raises(ValueError, match=message):
        multilabel_metrics(y_true, y_score)


def test_bad_groups_and_thresholds_raise_value_error():
    with pytest.raises(ValueError, match=r"groups\[1\] must be one of"):
        multilabel_metrics(Y_TRUE, Y_SCORE, groups=["head", "rare", "tail", "tail"])
    with pytest.raises(ValueError, match="one entry per class"):
        multilabel_metrics(Y_TRUE, Y_SCORE, groups=["head"])
    with pytest.raises(ValueError, match="thresholds must have shape"):
        multilabel_metrics(Y_TRUE, Y_SCORE, thresholds=[0.5, 0.5])
    with pytest.raises(ValueError, match="class_names must have 4"):
        per_class_table(Y_TRUE, Y_SCORE, class_names=["a"])


def test_inputs_are_not_modified():
    y_true, y_score = Y_TRUE.copy(), Y_SCORE.copy()
    multilabel_metrics(y_true, y_score, groups=GROUPS, thresholds=tune_thresholds(y_true, y_score))
    np.testing.assert_array_equal(y_true, Y_TRUE)
    np.testing.assert_array_equal(y_score, Y_SCORE)
