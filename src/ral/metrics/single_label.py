"""Single-label long-tailed metrics (ISIC 2018, APTOS 2019): accuracy, balanced accuracy,
macro-F1 and head / medium / tail ("many / medium / few-shot") accuracy.

scikit-learn definitions: ``accuracy_score``, ``balanced_accuracy_score`` (mean recall over
the classes present in ``y_true``) and ``f1_score(average="macro")`` over the classes present
in ``y_true``. A group's accuracy is the mean per-class recall of its classes present in
``y_true`` (the "shot accuracy" of OLTR / LDAM), so a frequent class does not dominate it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, recall_score

from ral.metrics._checks import check_single_label
from ral.metrics.multilabel import group_means


def single_label_metrics(y_true: np.ndarray, probs: np.ndarray, *, groups: Sequence[str] | None = None) -> dict:
    """Accuracy, balanced accuracy, macro-F1 and group accuracies of argmax predictions.

    Args:
        y_true: (N,) int class indices, or (N, C) one-hot rows.
        probs: (N, C) class probabilities (or logits: only the argmax is used).
        groups: (C,) "head" / "medium" / "tail" per class (tail = few-shot); None leaves
            the group accuracies NaN.

    Returns:
        ``{"accuracy", "balanced_accuracy", "macro_f1", "head_acc", "medium_acc", "tail_acc":
        float, "per_class": {"recall": (C,), "n": (C,)}}``; recall is NaN for a class absent
        from ``y_true``.

    Raises:
        ValueError: wrong shapes, indices outside [0, C), non-finite probabilities.

    Example:
        >>> single_label_metrics([0, 1, 1], [[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])["accuracy"]
        0.6666666666666666
    """
    labels, score = check_single_label(y_true, probs)
    num_classes = score.shape[1]
    predicted = np.argmax(score, axis=1)
    present = np.unique(labels)
    recall = np.full(num_classes, np.nan)
    recall[present] = recall_score(labels, predicted, labels=present, average=None, zero_division=0)
    by_group = group_means(recall, groups)
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(labels, predicted)),
        "macro_f1": float(f1_score(labels, predicted, labels=present, average="macro", zero_division=0)),
        "head_acc": by_group["head"],
        "medium_acc": by_group["medium"],
        "tail_acc": by_group["tail"],
        "per_class": {"recall": recall, "n": np.bincount(labels, minlength=num_classes)},
    }
