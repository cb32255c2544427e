"""``ral predict``: probabilities of a checkpoint's classes, in the CXR-LT submission layout.

The CSV has one id column and one probability column per class, named and ordered as in the
checkpoint (for CXR-LT: ``dicom_id, Atelectasis, Calcification of the Aorta, ...``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ral.engine.inference import (
    load_eval_table,
    load_trained_model,
    predict_probabilities,
    unlabeled_csv,
    unlabeled_table,
)


def predict(
    checkpoint: str | os.PathLike,
    *,
    images: Sequence[str | os.PathLike] | None = None,
    data: str | os.PathLike | None = None,
    out: str | os.PathLike,
    format: str | None = None,
    root: str | os.PathLike | None = None,
    id_column: str | None = None,
    batch_size: int = 128,
    num_workers: int = 0,
    device: str | None = "auto",
) -> pd.DataFrame:
    """Write the probabilities of ``images`` (files) or of the rows of table ``data`` to ``out``.

    Args:
        checkpoint: ``.ckpt`` written by ``ral train``.
        images: image files (ids: file names without extension). data: a label table (ids: its
            id column, e.g. ``dicom_id`` for CXR-LT; its labels are not used), or a CSV with just
            a ``path`` column (ids: the paths). Exactly one of both.
        out: CSV file to write (atomically).
        format, root: for ``data``, as in ``ral.data.load_table``.
        id_column: name of the id column (default "dicom_id" for CXR-LT checkpoints, else "id").
        device: "auto", "cpu", "cuda", ...

    Returns:
        The written table: N rows, ``1 + C`` columns.

    Raises:
        ValueError: both or neither of ``images`` / ``data``; FileNotFoundError: missing files.
    """
    from ral.report import write_csv

    if (images is None or len(images) == 0) == (data is None):
        raise ValueError("give either image files or --data TABLE (exactly one of them)")
    model, meta = load_trained_model(checkpoint, device)
    if data is not None:
        table = unlabeled_csv(data, meta, root) if format in (None, "generic") else None
        if table is None:
            table = load_eval_table(data, meta, format=format, root=root, key="data")
    else:
        table = unlabeled_table(list(images or []), meta)
    probs = predict_probabilities(
        model, table, task=meta["task"], image_size=meta["image_size"], batch_size=batch_size, num_workers=num_workers
    )
    if id_column is None:
        id_column = "dicom_id" if meta.get("dataset_format") == "cxrlt" else "id"
    if id_column in meta["class_names"]:
        raise ValueError(f"id_column {id_column!r} clashes with a class name")
    frame = pd.DataFrame(probs, columns=list(meta["class_names"]))
    frame.insert(0, id_column, table.ids)
    write_csv(frame, Path(out))
    return frame
