"""``report.html`` of an evaluation folder: what ``ral evaluate`` wrote, as one page to look at.

The page (:mod:`ral.report.html` renders it) holds the headline metrics with their bootstrap
intervals and the ECE, a sortable / filterable per-class table (prevalence, positives, AP with
its bootstrap interval, AUC, F1 at the tuned threshold, the threshold, group, ECE), PR and ROC
curves per class with the chance baselines, the reliability diagram (overall and per group),
a gallery of the most confident true positives, false positives and missed positives of chosen
classes (default: the tail) with their Grad-CAM maps (:mod:`ral.report.gradcam`, on the first
checkpoint without TTA), and the run's config, checkpoints, inference settings and software.

It is rebuilt from the folder's metrics.json, per_class.csv and predictions.csv, the labels of
the evaluated table and the checkpoint(s) named in metrics.json; ``ral evaluate`` passes the
models and the table it already holds.
"""

from __future__ import annotations

import base64
import io
import json
import os
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import Field
from pydantic.dataclasses import dataclass

from ral.data.groups import GROUPS
from ral.data.options import FormatName
from ral.report.plots import GROUP_COLOURS, OTHER_COLOUR
from ral.report.svg import Series, chart

REPORT_NAME = "report.html"
#: Width and height of a gallery picture in the page (pixels).
DISPLAY_SIZE = 160
#: Classes in the default gallery (the rarest tail classes).
GALLERY_CLASSES = 8
KINDS = {
    "tp": "most confident true positives",
    "fp": "most confident false positives",
    "fn": "missed positives (lowest probability first)",
}


def _read_eval_folder(folder: Path) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """metrics.json, per_class.csv and predictions.csv of an evaluation folder."""
    missing = [name for name in ("metrics.json", "per_class.csv", "predictions.csv") if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: not an evaluation folder of `ral evaluate` (no {', '.join(missing)})")
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    return metrics, pd.read_csv(folder / "per_class.csv"), pd.read_csv(folder / "predictions.csv")


def checkpoint_list(metrics: dict[str, Any]) -> list[str]:
    """The evaluated checkpoint(s) as metrics.json names them."""
    return (
        [member["checkpoint"] for member in metrics["ensemble"]] if "ensemble" in metrics else [metrics["checkpoint"]]
    )


def png_base64(pixels: np.ndarray) -> str:
    """A ``data:`` URL of an (H, W) grey or (H, W, 3) RGB uint8 picture, shrunk to DISPLAY_SIZE when
    larger (a smaller one is enlarged by the page, pixel by pixel, so what the model saw stays visible)."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(pixels))
    if image.width > DISPLAY_SIZE:
        image = image.resize((DISPLAY_SIZE, DISPLAY_SIZE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _class_truth(y_true: np.ndarray, task: str, num_classes: int) -> np.ndarray:
    """(N, C) 1 / 0 / NaN of both tasks (single-label: one-vs-rest)."""
    return np.asarray(y_true, dtype=np.float64) if task == "multilabel" else np.eye(num_classes)[y_true]


def class_rows(
    per_class: pd.DataFrame, truth: np.ndarray, probs: np.ndarray, *, task: str, n_boot: int, seed: int
) -> list[dict[str, Any]]:
    """The rows of the per-class table (per_class.csv plus prevalence, AP interval and ECE)."""
    from ral.metrics import per_class_ci
    from ral.metrics.calibration import per_class_ece

    known = (~np.isnan(truth)).sum(axis=0)
    positives = np.nansum(truth, axis=0)
    intervals = np.full((truth.shape[1], 2), np.nan)
    if n_boot > 0 and len(probs):
        intervals = per_class_ci(truth, probs, metric="AP", n_boot=n_boot, seed=seed)
    ece = per_class_ece(truth, probs) if task == "multilabel" else np.full(truth.shape[1], np.nan)
    rows = []
    for c, row in enumerate(per_class.to_dict("records")):
        rows.append(
            {
                **row,
                "prevalence": positives[c] / known[c] if known[c] else float("nan"),
                "AP_low": intervals[c, 0],
                "AP_high": intervals[c, 1],
                "ECE": ece[c],
                "colour": GROUP_COLOURS.get(str(row.get("group")), OTHER_COLOUR),
            }
        )
    return rows


def curve_charts(names: list[str], truth: np.ndarray, probs: np.ndarray) -> list[dict[str, str]]:
    """Per class: the PR curve with the prevalence baseline and the ROC curve with the diagonal (SVG)."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    charts = []
    for c, name in enumerate(names):
        known = ~np.isnan(truth[:, c])
        labels, scores = truth[known, c], probs[known, c]
        if labels.sum() == 0 or labels.sum() == labels.size:
            charts.append({"class": name, "pr": "", "roc": "", "note": "no positives or no negatives: no curves"})
            continue
        precision, recall, _ = precision_recall_curve(labels, scores)
        fpr, tpr, _ = roc_curve(labels, scores)
        prevalence = float(labels.mean())
        pr = chart(
            [
                Series(recall[::-1], precision[::-1], "#1f77b4", "model"),
                Series([0, 1], [prevalence, prevalence], "#888", f"chance = prevalence {prevalence:.3f}", dashed=True),
            ],
            title=f"{name}: PR",
            xlabel="recall",
            ylabel="precision",
            step=True,
        )
        roc = chart(
            [Series(fpr, tpr, "#d62728", "model"), Series([0, 1], [0, 1], "#888", "chance", dashed=True)],
            title=f"{name}: ROC",
            xlabel="false positive rate",
            ylabel="true positive rate",
        )
        charts.append({"class": name, "pr": pr, "roc": roc, "note": ""})
    return charts


def reliability(
    y_true: np.ndarray, probs: np.ndarray, *, task: str, groups: list[str], title: str
) -> tuple[str, list[dict[str, Any]]]:
    """The reliability diagram (SVG: overall and per group) and the ECE rows (group, ECE, pairs)."""
    from ral.metrics.calibration import calibration_pairs, expected_calibration_error, reliability_bins

    pairs = calibration_pairs(y_true, probs, task=task, groups=groups)
    series = [Series([0, 1], [0, 1], "#888", "perfect calibration", dashed=True)]
    rows = []
    for name, (truth, prob) in pairs.items():
        bins = reliability_bins(truth, prob)
        filled = bins["count"] > 0
        colour = GROUP_COLOURS.get(name, "#000000")
        series.append(Series(bins["confidence"][filled], bins["frequency"][filled], colour, name))
        radii = 1.5 + 3.0 * np.sqrt(bins["count"][filled] / max(bins["count"].max(), 1))
        series.append(Series(bins["confidence"][filled], bins["frequency"][filled], colour, markers=True, sizes=radii))
        known = int((~np.isnan(np.asarray(truth, dtype=np.float64))).sum())
        rows.append({"group": name, "ECE": expected_calibration_error(truth, prob), "pairs": known})
    what = "all (image, class) pairs" if task == "multilabel" else "top-label confidence"
    svg = chart(
        series,
        title=f"Reliability ({title})",
        xlabel=f"predicted probability ({what})",
        ylabel="observed frequency",
        width=380,
        height=380,
    )
    return svg, rows


def default_gallery_classes(per_class: pd.DataFrame) -> list[str]:
    """The tail classes with positives, rarest (training count) first; the rarest classes if no tail."""
    rows = per_class[per_class["n_pos"] > 0].sort_values("count", kind="stable")
    tail = rows[rows["group"] == "tail"]
    return [str(name) for name in (tail if len(tail) else rows)["class"]][:GALLERY_CLASSES]


def _picks(truth: np.ndarray, prob: np.ndarray, chosen: np.ndarray, per_kind: int) -> dict[str, list[int]]:
    """Row indices of each gallery kind for one class; ``chosen``: predicted positive (``prob >=
    threshold``, or the argmax of a single-label model)."""
    positive, negative = truth == 1, truth == 0
    by_high, by_low = np.argsort(-prob, kind="stable"), np.argsort(prob, kind="stable")
    return {
        "tp": by_high[(positive & chosen)[by_high]][:per_kind].tolist(),
        "fp": by_high[(negative & chosen)[by_high]][:per_kind].tolist(),
        "fn": by_low[(positive & ~chosen)[by_low]][:per_kind].tolist(),
    }


def gallery(
    classes: list[str],
    *,
    names: list[str],
    truth: np.ndarray,
    probs: np.ndarray,
    thresholds: np.ndarray | None,
    table: Any,
    model: Any,
    image_size: int,
    per_kind: int,
    gradcam: bool,
) -> tuple[list[dict[str, Any]], str]:
    """The gallery sections (one per class) and the Grad-CAM layer ("" without Grad-CAM)."""
    import torch

    from ral.data import ImageDataset
    from ral.report.gradcam import GradCam, overlay

    argmax = probs.argmax(axis=1)
    picks = {}
    for name in classes:
        c = names.index(name)
        chosen = probs[:, c] >= thresholds[c] if thresholds is not None else argmax == c
        picks[name] = _picks(truth[:, c], probs[:, c], chosen, per_kind)
    rows = sorted({int(i) for kinds in picks.values() for found in kinds.values() for i in found})
    channels = max((m.image_channels for m in model.modules() if hasattr(m, "image_channels")), default=1)
    images = (
        ImageDataset(table.subset(rows), image_size=image_size, channels=channels, augment="none") if rows else None
    )
    pixels = {row: images.pixels(k) for k, row in enumerate(rows)} if images is not None else {}
    device = next(model.parameters()).device
    cam, layer = None, ""
    if gradcam and rows:
        cam = GradCam(model, torch.from_numpy(pixels[rows[0]][None]).to(device))
        layer = cam.layer
    sections = []
    for name in classes:
        c = names.index(name)
        shown_rows = [int(i) for found in picks[name].values() for i in found]
        maps = {}
        if cam is not None and shown_rows:  # one backward pass per class for all its pictures
            batch = torch.from_numpy(np.stack([pixels[i] for i in shown_rows])).to(device)
            maps = dict(zip(shown_rows, cam(batch, c)))
        kinds = []
        for kind, found in picks[name].items():
            items = []
            for i in map(int, found):
                image = pixels[i]
                shown = image[0] if image.shape[0] == 1 else np.moveaxis(image, 0, -1)
                items.append(
                    {
                        "id": str(table.ids[i]),
                        "prob": float(probs[i, c]),
                        "image": png_base64(shown),
                        "overlay": png_base64(overlay(image, maps[i])) if i in maps else "",
                        "empty": i in maps and not maps[i].any(),
                    }
                )
            kinds.append({"kind": kind, "title": KINDS[kind], "items": items})
        cut = f"threshold {thresholds[c]:.3f}" if thresholds is not None else "predicted = argmax"
        sections.append({"class": name, "rule": cut, "kinds": kinds})
    return sections, layer


@cache
def software_versions() -> dict[str, str]:
    """Python and the versions of the packages behind the numbers."""
    import platform
    from importlib import metadata

    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("ral", "torch", "lightning", "monai", "numpy", "scikit-learn", "pandas", "matplotlib", "jinja2"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


@dataclass(frozen=True)
class ReportOptions:
    """What report.html shows and how its inputs are read (``ral report``'s flags).

    Args:
        classes: classes of the Grad-CAM gallery (default: the tail classes, rarest first, at most 8).
        per_kind: pictures per class of each kind (true positives, false positives, missed positives).
        gradcam: draw each picture's Grad-CAM map (--no-gradcam: the pictures only).
        format: the evaluated table's format, when ``ral evaluate`` was given one (default: auto-detect).
        root: the evaluated table's image root, when ``ral evaluate`` was given one.
        device: where the checkpoints are loaded for Grad-CAM ("cpu", "cuda", ...).
    """

    classes: list[str] | None = None
    per_kind: Annotated[int, Field(ge=0)] = 3
    gradcam: bool = True
    format: FormatName | None = None
    root: str | None = None
    device: str = "cpu"


def write_eval_report(
    eval_dir: str | os.PathLike,
    options: ReportOptions | None = None,
    *,
    allow_outside_root: bool = False,
    members: list[Any] | None = None,
    table: Any = None,
) -> Path:
    """Write ``report.html`` into an evaluation folder of ``ral evaluate`` and return its path.

    Args:
        eval_dir: the folder (metrics.json, per_class.csv, predictions.csv).
        options: the gallery, and how to read the table and load the checkpoints (None: the defaults).
        allow_outside_root: as given to ``ral evaluate``.
        members, table: the loaded checkpoints and the evaluated table (``ral evaluate`` passes them).

    Raises:
        FileNotFoundError / ValueError: not an evaluation folder, a checkpoint or the table is
            missing, the predictions do not match the table, an unknown gallery class.
    """
    from ral.engine.ensemble import load_members
    from ral.engine.inference import load_eval_table
    from ral.metrics import metric_names
    from ral.report.html import render

    options = options or ReportOptions()
    folder = Path(eval_dir)
    metrics, per_class, predictions = _read_eval_folder(folder)
    wanted = default_gallery_classes(per_class) if options.classes is None else list(options.classes)
    evaluated = per_class["class"].astype(str).tolist()
    unknown = [name for name in wanted if name not in evaluated]
    if unknown:  # before any checkpoint is read
        raise ValueError(f"classes: {unknown} are not classes of this evaluation ({evaluated})")
    if members is None:
        members = load_members(checkpoint_list(metrics), options.device)
    meta = members[0].meta
    task, names, groups = metrics["task"], list(meta["class_names"]), list(meta["groups"])
    if table is None and ("class_map" in metrics or "out_of_fold" in metrics):
        kind = "--class-map" if "class_map" in metrics else "--out-of-fold"
        raise ValueError(
            f"{folder}: an evaluation with {kind}; its report.html is written by ral evaluate (run it again with "
            "--overwrite to rebuild the page)"
        )
    if table is None:
        reading = {"format": options.format, "root": options.root, "allow_outside_root": allow_outside_root}
        table = load_eval_table(metrics["data"], meta, key="data", split="test", **reading)
    if len(predictions) != len(table) or list(predictions.columns[1:]) != names:
        raise ValueError(f"{folder / 'predictions.csv'} does not match the table {metrics['data']} and checkpoint")
    probs = predictions[names].to_numpy(dtype=np.float64)
    y_true = table.labels.astype(np.float64) if task == "multilabel" else table.targets_single()
    truth = _class_truth(y_true, task, len(names))
    loss = metrics.get("loss") or meta.get("config", {}).get("loss", {}).get("name", "?")
    lead = Path(checkpoint_list(metrics)[0])
    run = (lead.parent.parent if lead.parent.name == "checkpoints" else lead.parent).name
    title = f"run {run}, loss {loss}, {Path(metrics['data']).name}"
    thresholds = per_class["threshold"].to_numpy(dtype=np.float64) if task == "multilabel" else None
    sections, layer = gallery(
        wanted,
        names=names,
        truth=truth,
        probs=probs,
        thresholds=thresholds,
        table=table,
        model=members[0].model,
        image_size=int(meta["image_size"]),
        per_kind=options.per_kind,
        gradcam=options.gradcam,
    )
    diagram, ece_rows = reliability(y_true, probs, task=task, groups=groups, title=f"run {run}, loss {loss}")
    n_boot = int(metrics.get("n_boot", 0))
    headline = [
        {"name": name, "value": metrics.get(name), "ci": metrics.get("ci95", {}).get(name)}
        for name in metric_names(task)
    ]
    context = {
        "title": f"Evaluation: {title}",
        "folder": str(folder.resolve()),
        "metrics": metrics,
        "headline": headline,
        "without_aggregation": metrics.get("without_aggregation"),
        "rows": class_rows(per_class, truth, probs, task=task, n_boot=n_boot, seed=int(metrics.get("seed", 0))),
        "task": task,
        "groups": [g for g in GROUPS if g in groups],
        "curves": curve_charts(names, truth, probs),
        "reliability": diagram,
        "ece_rows": ece_rows,
        "gallery": sections,
        "gradcam_layer": layer,
        "checkpoints": checkpoint_list(metrics),
        "config": meta.get("config", {}),
        "versions": software_versions(),
    }
    return render("eval.html.j2", context, folder / REPORT_NAME)
