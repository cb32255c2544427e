"""The metric names of each task and the headline metric that selects checkpoints and heads tables.

The one list of names: :func:`ral.metrics.multilabel_metrics` and
:func:`ral.metrics.single_label_metrics` return these keys, evaluation reports them in this
order, and the validation monitor of training is ``"val_" + headline_metric(task)``.
"""

from __future__ import annotations

from typing import get_args

from ral.data.table import Task

TASKS: tuple[str, ...] = get_args(Task)

#: Scalar metrics per task, in report order.
METRIC_NAMES: dict[Task, tuple[str, ...]] = {
    "multilabel": ("mAP", "mAUC", "mF1", "head_mAP", "medium_mAP", "tail_mAP"),
    "single": ("accuracy", "balanced_accuracy", "macro_f1", "head_acc", "medium_acc", "tail_acc"),
}

_HEADLINE: dict[Task, str] = {"multilabel": "mAP", "single": "balanced_accuracy"}


def _check_task(task: object) -> None:
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def metric_names(task: Task) -> tuple[str, ...]:
    """The scalar metric names of ``task`` ("multilabel" or "single"), in report order.

    Raises:
        ValueError: unknown task.
    """
    _check_task(task)
    return METRIC_NAMES[task]


def headline_metric(task: Task) -> str:
    """The metric that ranks runs of ``task`` (higher is better): "mAP" for "multilabel",
    "balanced_accuracy" for "single".

    Raises:
        ValueError: unknown task.
    """
    _check_task(task)
    return _HEADLINE[task]
