"""The one list of metric names per task and the headline metric."""

from __future__ import annotations

import numpy as np
import pytest

from ral.engine.module import compute_metrics, monitor_metric
from ral.metrics import METRIC_NAMES, headline_metric, metric_names, multilabel_metrics, single_label_metrics


def test_names_are_the_scalar_keys_the_metric_functions_return():
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], dtype=float)
    scores = np.array([[0.9, 0.2], [0.1, 0.8], [0.7, 0.6], [0.2, 0.1]])
    multilabel = multilabel_metrics(y, scores, groups=["head", "tail"])
    assert set(metric_names("multilabel")) == {k for k, v in multilabel.items() if isinstance(v, float)}
    single = single_label_metrics([0, 1, 1, 0], scores, groups=["head", "tail"])
    assert set(metric_names("single")) == {k for k, v in single.items() if isinstance(v, float)}
    assert list(compute_metrics("single", np.array([0, 1, 1, 0]), scores, None)) == list(metric_names("single"))


def test_headline_metric_and_validation_monitor():
    assert headline_metric("multilabel") == "mAP" and headline_metric("single") == "balanced_accuracy"
    for task in METRIC_NAMES:
        assert headline_metric(task) in metric_names(task)
        assert monitor_metric(task) == "val_" + headline_metric(task)


@pytest.mark.parametrize("function", [metric_names, headline_metric])
def test_unknown_task_is_refused(function):
    with pytest.raises(ValueError, match=r"task must be one of \('multilabel', 'single'\), got 'regression'"):
        function("regression")
