"""``ral data split``: patient-level, stratified K-fold tables written in the input table's own layout.

The folds come from :func:`ral.data.split.patient_folds`; this module maps them back to the
rows of the CSV file (one row per image for most formats, several per image for VinDr-CXR) and
writes ``fold{i}_train.csv`` / ``fold{i}_val.csv`` (i = 1..K) and, with a test fraction,
``test.csv``, each with the input's header and its rows unchanged, plus ``folds.json`` (the
settings, the per-fold counts, and the files written: what ``--overwrite`` may replace).
"""

from __future__ import annotations

import csv
import gzip
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ral.data.errors import TableError
from ral.data.options import FormatName, TableTask
from ral.data.split import fold_tolerance, patient_folds
from ral.data.table import LabelTable

MANIFEST = "folds.json"


def _records(path: Path) -> list[str]:
    """The CSV records of ``path`` (gzip-compressed or not) as their raw text, header first, blank lines
    skipped (as pandas skips them). A record spans several lines when a quoted field holds a newline."""
    with open(path, "rb") as fh:
        opener = gzip.open if fh.read(2) == b"\x1f\x8b" else open
    records, pending = [], []
    with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:

        def lines():  # the csv reader pulls a record's lines one by one: they are that record's text
            for line in fh:
                pending.append(line)
                yield line

        for fields in csv.reader(lines()):
            text = "".join(pending)
            pending.clear()
            if fields:
                records.append(text if text.endswith(("\n", "\r")) else text + "\n")
    return records


def table_rows(path: Path, table: LabelTable) -> tuple[list[str], np.ndarray]:
    """The CSV records behind ``table`` (raw text, header first) and, for each data record, the index of
    its image in ``table`` (-1: not in it).

    A record belongs to the image whose id is in the format's image column (``dicom_id``,
    ``Image Index``, ``Path``, ``image_id``, ``path`` ...); an NIH split list (``.txt``) selects
    rows of the NIH table beside it, so the rows of the other images get -1.

    Raises:
        TableError: a format without a CSV of one or more rows per image (a folder tree, MIMIC-CXR-JPG's
            labels per study), or a row whose image is not in ``table``.
    """
    from ral.data.formats import FORMAT_BY_NAME
    from ral.data.readers._common import read_csv, text
    from ral.data.readers.lists import is_split_list, split_list_source

    if table.format in ("folder", "mimic") or FORMAT_BY_NAME[table.format].image_list is None:
        raise TableError(
            f"{path}: a {table.format} table has no CSV rows per image to split; split a table with one row per "
            "image (for MIMIC-CXR-JPG: its CXR-LT-style table with dicom_id and fpath)",
            path=path,
        )
    listed = is_split_list(path)
    source = split_list_source(path) if listed else path
    keys = text(read_csv(source), FORMAT_BY_NAME[table.format].image_list.columns[0])
    records = _records(source)
    if len(records) != len(keys) + 1:
        raise TableError(f"{source}: {len(records) - 1} CSV records but {len(keys)} table rows", path=source)
    row_of = {image: i for i, image in enumerate(table.ids)}
    image = np.array([row_of.get(key, -1) for key in keys], dtype=np.int64)
    if not listed and (image < 0).any():
        first = int(np.flatnonzero(image < 0)[0])
        raise TableError(f"{source}: row {first + 2} ({keys[first]!r}) is not an image of the table", path=source)
    return records, image


def _fold_counts(table: LabelTable, fold: np.ndarray, k: int) -> dict[str, Any]:
    """Images, patients and positives per class of fold ``k``."""
    mask = fold == k
    return {
        "images": int(mask.sum()),
        "patients": len(set(np.asarray(table.subject_ids, dtype=object)[mask])),
        "positives": dict(zip(table.class_names, np.nansum(table.labels[mask], axis=0).astype(int).tolist())),
    }


def _clear_previous(out: Path) -> None:
    """Remove the files an earlier ``ral data split`` listed in ``out/folds.json`` (and nothing else)."""
    manifest = out / MANIFEST
    if not manifest.is_file():
        return
    try:
        written = json.loads(manifest.read_text(encoding="utf-8")).get("files", [])
    except (json.JSONDecodeError, AttributeError):
        raise ValueError(f"{manifest}: not a manifest of ral data split; remove it or choose another --out") from None
    for name in [*written, MANIFEST]:
        if isinstance(name, str) and Path(name).name == name and (out / name).is_file():
            (out / name).unlink()


def write_folds(
    table: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    folds: int = 5,
    test_fraction: float = 0.0,
    seed: int = 0,
    format: FormatName | None = None,
    task: TableTask = "auto",
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write K patient-level, stratified folds of ``table`` to ``out_dir`` (see the module docstring).

    Args:
        table: the label table to split (any CSV format with rows per image, or an NIH split list).
        out_dir: output folder; must be missing or empty, unless ``overwrite`` (then the files of an
            earlier split listed in its folds.json are replaced; other files are kept).
        folds: number of folds K (>= 2): fold i's val table is one K-th of the patients, its train table the rest.
        test_fraction: share of the patients first held out as test.csv (0: none).
        seed: seed of the stratified split (same seed, same folds).
        format: the table's format (default: detected).
        task: read the table as "single"-label (a one-hot generic table) or let it decide ("auto").
        overwrite: replace an earlier split in ``out_dir``.

    Returns:
        The content of folds.json plus ``"out_dir"``.

    Raises:
        FileNotFoundError / ValueError: a missing or unreadable table, fewer patients than folds,
            a format without rows per image; FileExistsError: ``out_dir`` not empty (without ``overwrite``).
    """
    from ral.data import load_table
    from ral.report import write_json
    from ral.report.files import check_output, write_text

    out = check_output(out_dir, folder=True, overwrite=overwrite)
    source = Path(table)
    labels = load_table(source, format=format, task=task, check_images="none")
    records, image = table_rows(source, labels)
    fold = patient_folds(labels, folds, seed=seed, test_fraction=test_fraction)
    row_fold = np.where(image >= 0, fold[np.maximum(image, 0)], -2)  # -2: a row the split list leaves out
    parts = {}
    for k in range(folds):
        parts[f"fold{k + 1}_train.csv"] = (row_fold >= 0) & (row_fold != k)
        parts[f"fold{k + 1}_val.csv"] = row_fold == k
    if test_fraction > 0:
        parts["test.csv"] = row_fold == -1
    out.mkdir(parents=True, exist_ok=True)
    if overwrite:
        _clear_previous(out)
    for name, rows in parts.items():
        write_text(records[0] + "".join(records[1 + i] for i in np.flatnonzero(rows)), out / name)
    counts = np.stack([np.nansum(labels.labels[fold == k], axis=0) for k in range(folds)])
    _, patient = np.unique(np.asarray(labels.subject_ids, dtype=object).astype(str), return_inverse=True)
    per_patient = np.zeros((patient.max(initial=-1) + 1, labels.num_classes))
    np.add.at(per_patient, patient, np.nan_to_num(labels.labels, nan=0.0))
    largest = per_patient.max(axis=0, initial=0)
    spread = counts.max(axis=0) - counts.min(axis=0)
    tolerance = fold_tolerance(counts.sum(axis=0), folds)
    report = {
        "table": str(source.resolve()),
        "format": labels.format,
        "task": labels.task,
        "folds": folds,
        "test_fraction": test_fraction,
        "seed": seed,
        "root": str(Path(labels.root).resolve()),
        "per_fold": [_fold_counts(labels, fold, k) for k in range(folds)],
        "test": _fold_counts(labels, fold, -1) if test_fraction > 0 else None,
        "spread": {
            name: {"max_minus_min": int(s), "tolerance": round(float(t), 2), "largest_patient": int(w)}
            for name, s, t, w in zip(labels.class_names, spread, tolerance, largest)
        },
        "files": list(parts),
    }
    write_json(report, out / MANIFEST)
    return report | {"out_dir": str(out)}


def format_folds(report: dict[str, Any]) -> str:
    """A few lines for the terminal: folds, the classes whose spread exceeds the tolerance, the override."""
    lines = [f"{'fold':>6s} {'images':>8s} {'patients':>9s}"]
    for k, part in enumerate(report["per_fold"], 1):
        lines.append(f"{k:>6d} {part['images']:>8d} {part['patients']:>9d}")
    if report["test"] is not None:
        lines.append(f"{'test':>6s} {report['test']['images']:>8d} {report['test']['patients']:>9d}")
    spread = report["spread"]
    wide = [n for n, s in spread.items() if s["max_minus_min"] > s["tolerance"]]
    lines.append(
        f"positives per class across folds: max - min within max(1, 10% of the mean per fold) for "
        f"{len(spread) - len(wide)} of {len(spread)} classes"
    )
    for name in wide:  # a patient's images stay together: one patient's positives bound what is possible
        s = spread[name]
        held = "no more than" if s["max_minus_min"] <= s["largest_patient"] else "MORE than"
        lines.append(
            f"  {name}: max - min {s['max_minus_min']} > {s['tolerance']:g}, {held} the {s['largest_patient']} "
            "positive images of its largest patient"
        )
    out = Path(report["out_dir"])
    root = "" if Path(report["root"]) == out.resolve() else f" dataset.root={report['root']}"
    lines.append(
        f"wrote {len(report['files'])} tables and {MANIFEST} to {out}; train fold 1 with: ral train --config CONFIG "
        f"dataset.train={out / 'fold1_train.csv'} dataset.val={out / 'fold1_val.csv'}{root} output_dir=runs/fold1"
    )
    if root:
        lines.append("  (dataset.root: where the rows' image paths lead; keep your config's own if it sets one)")
    return "\n".join(lines)
