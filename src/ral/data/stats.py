"""Label statistics of a table (no images needed): counts, prevalence, groups, long-tail plot."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ral.data.groups import GROUPS, frequency_groups
from ral.data.table import LabelTable


def table_stats(
    table: LabelTable,
    *,
    thresholds: tuple[float, float] | None = None,
    mapping: Mapping[str, object] | None = None,
    group_table: LabelTable | None = None,
) -> dict:
    """Summary of the labels of ``table``.

    Args:
        table: the label table (N images, C classes).
        thresholds, mapping: passed to :func:`frequency_groups`.
        group_table: the TRAINING table whose prevalence defines the groups (default: ``table``).

    Returns:
        dict with ``images``, ``patients`` and ``studies`` (None where the table records none),
        ``views`` ({view: images}, None without views), ``classes``, ``task``, ``format``, ``per_class``
        (DataFrame: class, count, prevalence, uncertain, group; sorted as in the table),
        ``labels_per_image`` (mean, histogram {k: images with k positives}), ``groups``
        ({group: number of classes}) and ``imbalance_ratio`` (largest / smallest non-zero count).
    """
    ref = group_table if group_table is not None else table
    if ref.class_names != table.class_names:
        raise ValueError(f"group_table classes {ref.class_names} differ from the table's {table.class_names}")
    counts = table.class_counts()
    groups = (
        frequency_groups(
            ref.class_counts(), max(len(ref), 1), thresholds=thresholds, mapping=mapping, class_names=table.class_names
        )
        if table.num_classes
        else []
    )
    n = len(table)
    per_class = pd.DataFrame(
        {
            "class": table.class_names,
            "count": counts,
            "prevalence": counts / max(n, 1),
            "uncertain": np.isnan(table.labels).sum(axis=0).astype(np.int64),
            "group": groups,
        }
    )
    positives = (np.nan_to_num(table.labels, nan=0.0) > 0.5).sum(axis=1)
    hist = np.bincount(positives, minlength=1)
    nonzero = counts[counts > 0]
    return {
        "source": str(table.source) if table.source else None,
        "format": table.format,
        "task": table.task,
        "images": n,
        "patients": len(set(table.subject_ids)) if table.subject_ids != table.ids else None,
        "studies": len(set(table.study_ids)) if table.study_ids is not None else None,
        "views": dict(Counter(table.views).most_common()) if table.views is not None else None,
        "classes": table.num_classes,
        "per_class": per_class,
        "labels_per_image": {
            "mean": float(positives.mean()) if n else 0.0,
            "histogram": {int(k): int(v) for k, v in enumerate(hist)},
        },
        "groups": {g: groups.count(g) for g in GROUPS},
        "imbalance_ratio": float(nonzero.max() / nonzero.min()) if nonzero.size else None,
    }


def format_stats(stats: dict) -> str:
    """Plain-text report of :func:`table_stats` for the terminal."""
    patients = stats["patients"] if stats["patients"] is not None else "not recorded"
    lines = [
        f"table: {stats['source']}  (format {stats['format']}, task {stats['task']})",
        f"images: {stats['images']}  patients: {patients}  classes: {stats['classes']}",
    ]
    if stats["studies"] is not None:
        lines.append(f"studies: {stats['studies']}  images per study: {stats['images'] / max(stats['studies'], 1):.2f}")
    if stats["views"] is not None:
        lines.append("views: " + ", ".join(f"{view or '(blank)'} {n}" for view, n in stats["views"].items()))
    if not stats["classes"]:
        return "\n".join([*lines, "no label columns (a table to predict)"])
    lines += [
        f"labels per image: mean {stats['labels_per_image']['mean']:.3f}  histogram "
        + ", ".join(f"{k}: {v}" for k, v in stats["labels_per_image"]["histogram"].items()),
        "groups: "
        + ", ".join(f"{g} {n}" for g, n in stats["groups"].items())
        + (f"  imbalance ratio: {stats['imbalance_ratio']:.1f}" if stats["imbalance_ratio"] else ""),
        "",
        f"{'class':32s} {'count':>8s} {'prevalence':>10s} {'uncertain':>9s}  group",
    ]
    frame = stats["per_class"].sort_values("count", ascending=False, kind="stable")
    for row in frame.itertuples(index=False):
        lines.append(f"{row[0]:32s} {row.count:8d} {row.prevalence:10.4f} {row.uncertain:9d}  {row.group}")
    return "\n".join(lines)


def write_stats(stats: dict, out_dir: str | os.PathLike, *, overwrite: bool = False) -> dict[str, Path]:
    """Write ``stats.json``, ``per_class.csv`` and the bar chart ``long_tail.png`` into ``out_dir``.

    ``out_dir`` must be missing or empty unless ``overwrite`` (then the files are replaced). Uses
    the atomic writers and ``plot_long_tail`` of :mod:`ral.report` (no chart for a table without classes).

    Raises:
        FileExistsError / OSError: see :func:`ral.report.files.check_output`.
    """
    from ral.report import plot_long_tail, write_csv, write_json
    from ral.report.files import check_output

    out = check_output(out_dir, folder=True, overwrite=overwrite)
    per_class = stats["per_class"]
    summary = {k: v for k, v in stats.items() if k != "per_class"}
    summary["per_class"] = per_class.to_dict(orient="records")
    paths = {"json": out / "stats.json", "csv": out / "per_class.csv", "plot": out / "long_tail.png"}
    write_json(summary, paths["json"])
    write_csv(per_class, paths["csv"])
    if per_class.empty:
        del paths["plot"]
        return paths
    name = Path(stats["source"]).name if stats["source"] else "table"
    plot_long_tail(
        per_class["count"].to_numpy(),
        per_class["class"].tolist(),
        per_class["group"].tolist(),
        paths["plot"],
        title=f"{name}: {stats['images']} images, {stats['classes']} classes",
    )
    return paths
