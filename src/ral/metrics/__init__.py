"""Evaluation metrics of long-tailed multi-label (CXR-LT) and single-label classification.

All definitions are scikit-learn's, computed with scikit-learn and numpy:

- :func:`multilabel_metrics`: macro mAP / mAUC / mF1 over classes with positives (NaN labels
  ignored per class) and head / medium / tail mAP.
- :func:`per_class_metrics`, :func:`per_class_table`: AP, AUC, F1, threshold of every class.
- :func:`tune_thresholds`: per-class F1-optimal thresholds (tune on val, apply to test).
- :func:`single_label_metrics`: accuracy, balanced accuracy, macro-F1, group accuracies.
- :func:`bootstrap_ci`: percentile bootstrap intervals, resampling images (:func:`per_class_ci`: per class).
- :func:`calibration_metrics`, :func:`expected_calibration_error`, :func:`reliability_bins`: calibration (ECE).
- :data:`METRIC_NAMES`, :func:`metric_names`, :func:`headline_metric`: the scalar metric names
  of each task and the one that ranks runs ("mAP" / "balanced_accuracy").
"""

from ral.metrics.bootstrap import bootstrap_ci, per_class_ci, resample_weights
from ral.metrics.calibration import calibration_metrics, expected_calibration_error, reliability_bins
from ral.metrics.multilabel import (
    group_means,
    multilabel_metrics,
    per_class_metrics,
    per_class_table,
    tune_thresholds,
)
from ral.metrics.names import METRIC_NAMES, TASKS, headline_metric, metric_names
from ral.metrics.single_label import single_label_metrics

__all__ = [
    "METRIC_NAMES",
    "TASKS",
    "bootstrap_ci",
    "calibration_metrics",
    "expected_calibration_error",
    "group_means",
    "headline_metric",
    "metric_names",
    "multilabel_metrics",
    "per_class_ci",
    "per_class_metrics",
    "per_class_table",
    "reliability_bins",
    "resample_weights",
    "single_label_metrics",
    "tune_thresholds",
]
