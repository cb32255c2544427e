"""The in-memory label table every dataset format is read into."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, get_args

import numpy as np

#: The task of a table (and of its model, loss and metrics): multi-label or single-label.
Task = Literal["multilabel", "single"]


@dataclass
class LabelTable:
    """Labels of one split of one dataset, independent of its file format.

    Attributes:
        ids: image identifiers, length N (used as the id column of prediction CSVs).
        paths: image file paths, length N; relative paths are resolved against ``root``.
        subject_ids: patient identifiers, length N (one per image when the format has none).
        class_names: the C class names, in column order.
        labels: float32 array (N, C). Multi-label: 1 positive, 0 negative, NaN uncertain
            or missing (becomes the loss's ``ignore_value``). Single-label: one-hot rows.
        task: "multilabel" or "single".
        root: folder that relative image paths are relative to.
        format: name of the format the table was read from (e.g. "generic", "cxrlt").
        source: the file the table was read from, if any.
        study_ids: study (examination) of each image, length N, or None when the format has no
            studies (CXR-LT, MIMIC-CXR-JPG, PadChest, CheXpert and generic tables with ``study_id``).
        views: view position of each image as the format writes it (``PA``, ``LATERAL``, ``L``...),
            length N, or None when the format records none.
    """

    ids: list[str]
    paths: list[str]
    subject_ids: list[str]
    class_names: list[str]
    labels: np.ndarray
    task: Task = "multilabel"
    root: Path = field(default_factory=Path)
    format: str = "generic"
    source: Path | None = None
    study_ids: list[str] | None = None
    views: list[str] | None = None

    def __post_init__(self) -> None:
        n = len(self.ids)
        lengths = {name: len(values) for name, values in self._per_image().items() if values is not None}
        if set(lengths.values()) != {n}:
            raise ValueError(f"every per-image list must have the N = {n} entries of ids, got lengths {lengths}")
        labels = np.asarray(self.labels, dtype=np.float32)
        if labels.ndim != 2 or labels.shape != (n, len(self.class_names)):
            raise ValueError(f"labels must have shape (N, C) = ({n}, {len(self.class_names)}), got {labels.shape}")
        if self.task not in get_args(Task):
            raise ValueError(f"task must be one of {get_args(Task)}, got {self.task!r}")
        self.labels = labels
        self.root = Path(self.root)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def image_path(self, index: int) -> Path:
        path = Path(self.paths[index])
        return path if path.is_absolute() else self.root / path

    def class_counts(self) -> np.ndarray:
        """Positives per class (uncertain/NaN entries are not counted), shape (C,)."""
        return np.nansum(self.labels, axis=0).astype(np.int64)

    def targets_single(self) -> np.ndarray:
        """Class indices (N,) of a single-label table."""
        if self.task != "single":
            raise ValueError(f"targets_single needs a single-label table, got task={self.task!r}")
        return self.labels.argmax(axis=1).astype(np.int64)

    def _per_image(self) -> dict[str, list[str] | None]:
        return {
            "ids": self.ids,
            "paths": self.paths,
            "subject_ids": self.subject_ids,
            "study_ids": self.study_ids,
            "views": self.views,
        }

    def subset(self, indices: np.ndarray | list[int]) -> LabelTable:
        """The rows ``indices`` (in that order), every per-image field included."""
        idx = np.asarray(indices, dtype=np.int64)
        rows = {k: None if v is None else [v[i] for i in idx] for k, v in self._per_image().items()}
        return replace(self, labels=self.labels[idx], **rows)
