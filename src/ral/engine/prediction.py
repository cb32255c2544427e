"""``ral predict``: probabilities of a checkpoint's classes, in the CXR-LT submission layout.

The CSV has one id column and one probability column per class, named and ordered as in the
checkpoint (for CXR-LT: ``dicom_id, Atelectasis, Calcification of the Aorta, ...``). Several
checkpoints are ensembled, ``tta="hflip"`` averages each image with its flip and ``aggregate``
gives every image its study's probabilities (one row per image still).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ral.data.options import FormatName
from ral.engine.aggregate import Aggregation, aggregate_table, aggregation_keys, check_aggregate
from ral.engine.build import named
from ral.engine.ensemble import Checkpoints, Tta, check_tta, ensemble_probabilities, load_members
from ral.engine.export import exported_member, threshold_values
from ral.engine.inference import image_table


def predict(
    checkpoint: Checkpoints | None = None,
    *,
    model: str | os.PathLike | None = None,
    images: Sequence[str | os.PathLike] | None = None,
    data: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    format: FormatName | None = None,
    root: str | os.PathLike | None = None,
    allow_outside_root: bool = False,
    id_column: str | None = None,
    thresholds: str | os.PathLike | None = None,
    tta: Tta = "none",
    aggregate: Aggregation = "none",
    batch_size: int = 128,
    num_workers: int = 0,
    device: str | None = "auto",
    overwrite: bool = False,
) -> pd.DataFrame:
    """Write the probabilities of ``images`` or of the images of ``data`` to ``out``; labels are never needed.

    Args:
        checkpoint: ``.ckpt`` written by ``ral train``, or several: their ensemble (the mean of
            their probabilities; same task and classes, see :func:`ral.engine.ensemble.load_members`).
        model: instead of ``checkpoint``: a folder written by ``ral export`` (model.onnx run by
            onnxruntime, else model.ts, else model.safetensors, on the CPU; :func:`ral.engine.export.load_exported`).
        images: image files and folders of images (searched recursively, sorted; ids: see
            :func:`ral.engine.inference.image_table`).
        data: a table of any CSV format, with or without its label columns (ids and paths from
            its id / path columns, e.g. ``dicom_id`` / ``fpath`` for CXR-LT, ``path`` for the generic
            layout; see :func:`ral.data.formats.load_image_list`), or a folder of images.
            Exactly one of ``images`` / ``data``.
        out: CSV file to write (atomically); an existing file is replaced only with ``overwrite``.
            From Python, ``out=None`` only returns the table.
        thresholds: multi-label: a CSV of per-class thresholds (``class``, ``threshold``: the
            per_class.csv of ``ral evaluate``); adds a 0/1 column ``<class>_label`` per class
            (probability >= threshold) after the probabilities.
        format, root, allow_outside_root: for a ``data`` table, as in ``ral.data.load_image_list``.
        id_column: name of the id column (default "dicom_id" for CXR-LT checkpoints, else "id").
        tta: "none" or "hflip" (mean over each image and its horizontal flip).
        aggregate: "none", "study" or "view-study" (:mod:`ral.engine.aggregate`): every image gets
            its study's probabilities; needs a ``data`` table with study ids (and views).
        device: "auto", "cpu", "cuda", ...

    Returns:
        The table (written to ``out`` when given): N rows, ``1 + C`` columns (the first checkpoint's
        classes, in its order), and with ``thresholds`` C 0/1 columns more.

    Raises:
        ValueError: both or neither of ``images`` / ``data`` (or of ``checkpoint`` / ``model``), an
            unknown ``tta`` / ``aggregate``, a table without the study ids ``aggregate`` needs,
            checkpoints that cannot be ensembled, bad ``thresholds``.
        FileNotFoundError: missing files.
        FileExistsError / OSError: ``out`` exists (without ``overwrite``) or cannot be written. All
            checked before anything is computed.
    """
    from ral.data import load_image_list
    from ral.report import write_csv
    from ral.report.files import check_output

    if out is not None:
        out = check_output(out, overwrite=overwrite)
    check_tta(tta)
    check_aggregate(aggregate)
    if (images is None or len(images) == 0) == (data is None):
        raise ValueError("give either image files / folders or --data (exactly one of them)")
    if (checkpoint is None) == (model is None):
        raise ValueError("give either --checkpoint (one or more) or --model (an exported folder), exactly one")
    members = load_members(checkpoint, device) if checkpoint is not None else [exported_member(model)]
    cutoffs = None
    if thresholds is not None:
        cutoffs = threshold_values(thresholds, members[0].meta)
    if data is not None and not Path(data).is_dir():
        with named("data"):
            table = load_image_list(data, format=format, root=root, allow_outside_root=allow_outside_root)
    else:
        table = image_table([data] if data is not None else list(images or []))
    if len(table) == 0:
        raise ValueError(f"data: {data} lists no images")
    keys = aggregation_keys(table, aggregate, key="data" if data is not None else "images")
    meta = members[0].meta
    if id_column is None:
        id_column = "dicom_id" if meta.get("dataset_format") == "cxrlt" else "id"
    if id_column in meta["class_names"]:
        raise ValueError(f"id_column {id_column!r} clashes with a class name")
    probs = ensemble_probabilities(members, table, tta=tta, batch_size=batch_size, num_workers=num_workers)
    frame = pd.DataFrame(aggregate_table(probs, keys), columns=list(meta["class_names"]))
    if cutoffs is not None:
        labels = (frame.to_numpy() >= cutoffs).astype(int)
        frame[[f"{name}_label" for name in frame.columns]] = labels
    frame.insert(0, id_column, table.ids)
    if out is not None:
        write_csv(frame, out)
    return frame
