"""Checks of a table's content that are not errors of one row: image paths and classes without positives.

Each finding is one line naming the table, the rows or the classes: a warning, or a
``ValueError`` where going on would be wrong (:class:`~ral.data.errors.TableError` for a path
escaping the image root; a validation set without any positive).
"""

from __future__ import annotations

import os
import warnings

from ral.data.errors import TableError
from ral.data.table import LabelTable


def _where(table: LabelTable) -> str:
    return str(table.source or table.root)


def _rows(rows: list[int], table: LabelTable, limit: int = 3) -> str:
    shown = ", ".join(f"row {i} {table.paths[i]!r}" for i in rows[:limit])
    return shown + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def check_paths(table: LabelTable, *, allow_outside_root: bool = False) -> None:
    """Refuse relative image paths that lead out of the image root; warn about repeated images.

    Paths are compared as written, normalised (``a/../b`` is ``b``; symbolic links are not
    followed, so a linked image folder inside the root stays inside). Absolute paths are taken
    as given.

    Args:
        table: the table (N rows). allow_outside_root: accept paths escaping the root.

    Raises:
        TableError: a relative path leads out of the root and ``allow_outside_root`` is False
            (``value``: the first such path; ``option="allow_outside_root"``).
    """
    root = os.path.normpath(os.path.abspath(table.root))
    inside = root.rstrip(os.sep) + os.sep
    resolved = [os.path.normpath(os.path.join(root, p)) for p in table.paths]
    if not allow_outside_root:
        outside = [
            i
            for i, (p, full) in enumerate(zip(table.paths, resolved))
            if not os.path.isabs(p) and not full.startswith(inside)
        ]
        if outside:
            raise TableError(
                f"{_where(table)}: {len(outside)} image path(s) lead out of the image root {root} "
                f"({_rows(outside, table)})",
                path=table.source or table.root,
                value=table.paths[outside[0]],
                option="allow_outside_root",
            )
    first: dict[str, int] = {}
    repeats = []
    for i, full in enumerate(resolved):
        if first.setdefault(full, i) != i:
            repeats.append(i)
    if repeats:
        i = repeats[0]
        warnings.warn(
            f"{_where(table)}: {len(repeats)} row(s) repeat the image of an earlier row ({_rows(repeats, table)}; "
            f"row {i} repeats row {first[resolved[i]]}); each row counts as one sample",
            stacklevel=3,
        )


def classes_without_positives(table: LabelTable) -> list[str]:
    """Names of the classes with no positive label (uncertain entries do not count)."""
    return [name for name, count in zip(table.class_names, table.class_counts()) if count == 0]


def check_training_classes(table: LabelTable, key: str = "training table") -> None:
    """Refuse a single-label training table whose rows hold fewer than two classes (nothing to tell apart).

    Raises:
        ValueError: naming ``key`` and the classes.
    """
    if table.task != "single":
        return
    present = [name for name, count in zip(table.class_names, table.class_counts()) if count > 0]
    if len(present) < 2:
        raise ValueError(
            f"{key}: a single-label table needs rows of at least 2 classes to train on, got rows of "
            f"{len(present)} ({present}) among its classes {list(table.class_names)}"
        )


def warn_training_classes(table: LabelTable, key: str = "training table") -> None:
    """One warning naming the classes of the training table ``key`` that have no positive."""
    empty = classes_without_positives(table)
    if empty:
        warnings.warn(
            f"{key}: {len(empty)} class(es) have no positive label in {len(table)} rows: {empty}; "
            "the model cannot learn them",
            stacklevel=2,
        )


def check_validation_classes(table: LabelTable, key: str = "validation table") -> None:
    """Warn about validation classes without a positive; raise when no class has one.

    Their per-class metrics (AP, AUC, recall) are undefined and left out of the macro averages; with no positive at all
    every validation metric is NaN and no best checkpoint can be chosen.

    Raises:
        ValueError: the table has no rows, or no class has a positive label.
    """
    empty = classes_without_positives(table)
    if len(table) == 0 or len(empty) == table.num_classes:
        raise ValueError(
            f"{key}: no class has a positive label in its {len(table)} rows, so the validation metrics "
            "are undefined and no best checkpoint can be chosen; use another validation table or none"
        )
    if empty:
        warnings.warn(
            f"{key}: {len(empty)} class(es) have no positive label: {empty}; their per-class metrics are "
            "undefined and left out of the validation averages",
            stacklevel=2,
        )
