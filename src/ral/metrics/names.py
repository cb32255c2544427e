"""The metric names of each task and the headline metric that selects checkpoints and heads tables.

The one list of names: :func:`ral.metrics.multilabel_metrics` and
:func:`ral.metrics.single_label_metrics` return these keys, evaluation reports them in this
order, and the validation monitor of training is ``"val_" + headline_metric(task)``.
"""

from __future__ import annotations

TASKS = ("multilabel", "single")

#: Scalar metrics per task, in report order.
METRIC_NAMES: dict[str, tuple[str, ...]] = {
    "multilabel": ("mAP", "mAUC", "mF1", "head_mAP", "medium_mAP", "tail_mAP"),
    "single": ("accuracy", "balanced_accuracy", "macro_f1", "head_acc", "medium_acc", "tail_acc"),
}

_HEADLINE = {"multilabel": "mAP", "single": "balanced_accuracy"}


def _check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    return task


def metric_names(task: str) -> tuple[str, ...]:
    """The scalar metric names of ``task`` ("multilabel" or "single"), in report order.

    Raises:
        ValueError: unknown task.
    """
    return METRIC_NAMES[_check_task(task)]


def headline_metric(task: str) -> str:
    """The metric that ranks runs of ``task`` (higher is better): "mAP" for "multilabel",
    "balanced_accuracy" for "single".

    Raises:
        ValueError: unknown task.
    """
    return _HEADLINE[_check_task(task)]
