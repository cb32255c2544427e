"""Head / medium / tail class groups from training-set label frequency."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, get_args

import numpy as np

#: A class's group by its training-set label frequency.
Group = Literal["head", "medium", "tail"]
GROUPS: tuple[str, ...] = get_args(Group)

# Prevalence thresholds (positives / training images). On the CXR-LT 2023 training counts
# (264,849 images) they give the challenge's split: 8 head (>= 38,574 images, 14.6%),
# 10 medium (4,049-30,119, 1.5%-11.4%) and 8 tail (<= 3,499, 1.3%).
DEFAULT_HEAD_THRESHOLD = 0.13
DEFAULT_TAIL_THRESHOLD = 0.014


def frequency_groups(
    counts: Sequence[float] | np.ndarray,
    num_images: int,
    *,
    thresholds: tuple[float, float] | None = None,
    mapping: Mapping[str, object] | None = None,
    class_names: Sequence[str] | None = None,
) -> list[Group]:
    """Group of each class: "head", "medium" or "tail".

    Args:
        counts: (C,) positives per class in the TRAINING set.
        num_images: number of training images (prevalence = counts / num_images).
        thresholds: ``(head, tail)`` prevalence thresholds: head if prevalence >= head,
            tail if prevalence < tail, medium otherwise. Default ``(0.13, 0.014)``.
        mapping: explicit groups instead of thresholds, either ``{class: group}`` or
            ``{group: [classes]}``; every class must get exactly one group.
        class_names: (C,) names, needed with ``mapping``.

    Returns:
        list of C group names.

    Raises:
        ValueError: bad counts / thresholds, or a mapping that names unknown classes or groups
            or leaves a class out.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0 or not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ValueError(f"counts must be a non-empty 1-D array of non-negative numbers, got {counts!r}")
    if mapping is not None:
        return _groups_from_mapping(mapping, class_names, counts.size)
    if not isinstance(num_images, (int, np.integer)) or num_images <= 0:
        raise ValueError(f"num_images must be a positive int, got {num_images!r}")
    head, tail = thresholds if thresholds is not None else (DEFAULT_HEAD_THRESHOLD, DEFAULT_TAIL_THRESHOLD)
    if not (0.0 <= tail <= head <= 1.0):
        raise ValueError(f"thresholds must be (head, tail) with 0 <= tail <= head <= 1, got {thresholds!r}")
    prevalence = counts / num_images
    return ["head" if p >= head else "tail" if p < tail else "medium" for p in prevalence]


def _groups_from_mapping(mapping: Mapping[str, object], class_names: Sequence[str] | None, num: int) -> list[Group]:
    if not isinstance(mapping, Mapping):
        raise ValueError(
            f"mapping must be a mapping of classes to groups or groups to classes, got a {type(mapping).__name__}"
        )
    if class_names is None or len(class_names) != num:
        raise ValueError(f"mapping needs class_names with {num} names, got {class_names!r}")
    if set(mapping) <= set(GROUPS) and all(isinstance(v, (list, tuple)) for v in mapping.values()):
        flat: dict[str, str] = {}
        for group, names in mapping.items():
            for name in names:  # type: ignore[union-attr]
                if name in flat:
                    raise ValueError(f"mapping puts class {name!r} in both {flat[name]!r} and {group!r}")
                flat[str(name)] = group
    else:
        flat = {str(k): str(v) for k, v in mapping.items()}
    unknown = sorted(set(flat) - set(class_names))
    if unknown:
        raise ValueError(f"mapping names unknown class(es) {unknown}; classes: {list(class_names)}")
    bad = {k: v for k, v in flat.items() if v not in GROUPS}
    if bad:
        raise ValueError(f"mapping groups must be one of {GROUPS}, got {bad}")
    missing = [c for c in class_names if c not in flat]
    if missing:
        raise ValueError(f"mapping leaves class(es) {missing} without a group")
    return [flat[c] for c in class_names]
