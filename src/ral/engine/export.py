"""``ral export``: a checkpoint as a weights-only model with its description, and the model read back.

``export`` writes into one folder::

    model.onnx | model.ts | model.safetensors   the network with its input normalisation inside
                                                (safetensors: the backbone's weights only)
    model.json       classes in output order, thresholds, input (size, channels, normalisation),
                     architecture, loss, training data with counts, metrics, software versions
    model_card.md    the same for a reader

The ONNX / TorchScript model maps float32 pixels (N, channels, S, S) with values in [0, 255] to
logits (N, C); probabilities are their sigmoid (multi-label) or softmax (single-label).
:func:`load_exported` reads the folder back as a model that ``ral predict --model`` runs (ONNX
through onnxruntime).
"""

from __future__ import annotations

import json
import math
import os
import platform
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ral.engine.ensemble import Member
from ral.engine.inference import PixelClassifier

ExportFormat = Literal["onnx", "torchscript", "safetensors"]
MODEL_FILES: dict[str, str] = {"onnx": "model.onnx", "torchscript": "model.ts", "safetensors": "model.safetensors"}
DESCRIPTION, CARD = "model.json", "model_card.md"
EXPORT_FORMAT = 1  # the layout of model.json


def read_thresholds(path: str | os.PathLike, classes: list[str], *, key: str = "thresholds") -> dict[str, float]:
    """Per-class thresholds from a CSV with ``class`` and ``threshold`` columns (``ral evaluate``'s per_class.csv).

    Raises:
        FileNotFoundError: no such file. ValueError: a column, a class or a threshold in [0, 1] missing.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{key}: file not found: {path}")
    frame = pd.read_csv(path)
    if not {"class", "threshold"} <= set(frame.columns):
        raise ValueError(f"{key}: {path} needs the columns 'class' and 'threshold', got {list(frame.columns)}")
    values = dict(zip(frame["class"].astype(str), frame["threshold"]))
    missing = [c for c in classes if c not in values]
    if missing:
        raise ValueError(f"{key}: {path} has no threshold for class(es) {missing}")
    for name in classes:
        value = float(values[name])
        if not 0.0 <= value <= 1.0:  # NaN too: single-label runs have none (their prediction is the argmax)
            raise ValueError(f"{key}: {path}, class {name!r}: threshold must be in [0, 1], got {values[name]!r}")
    return {name: float(values[name]) for name in classes}


def _run_folder(checkpoint: str | os.PathLike) -> Path:
    """``<run>`` of ``<run>/checkpoints/<file>.ckpt``; else the checkpoint's folder."""
    checkpoint = Path(checkpoint).resolve()
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent


def _evaluated(folder: Path) -> tuple[str | None, bool]:
    """The checkpoint an evaluate folder scored and whether it was more than that model on its own classes
    (an ensemble, an out-of-fold run or a class-mapped external table)."""
    report = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    return report.get("checkpoint"), any(key in report for key in ("ensemble", "out_of_fold", "class_map"))


def evaluation_folder(checkpoint: str | os.PathLike) -> Path | None:
    """The newest ``ral evaluate`` output of this checkpoint alone (not of an ensemble) in its run's eval/
    folder (``<run>/eval/*/metrics.json``), or None."""
    found = sorted((_run_folder(checkpoint) / "eval").glob("*/metrics.json"), key=lambda p: p.stat().st_mtime)
    mine = [p.parent for p in found if _evaluated(p.parent) == (str(Path(checkpoint).resolve()), False)]
    return mine[-1] if mine else None


def _software(format: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    names = ["ral", "torch", "numpy"] + (["onnx", "onnxruntime"] if format == "onnx" else ["safetensors"])
    found = {"python": platform.python_version()}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def _evaluation(folder: Path | None) -> dict[str, Any] | None:
    """The headline metrics of an evaluate folder, with their intervals, table and thresholds."""
    if folder is None:
        return None
    report = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    from ral.metrics import metric_names

    names = metric_names(report["task"])
    return {
        "folder": str(folder),
        "data": report.get("data"),
        "n_images": report.get("n_images"),
        "tta": report.get("tta"),
        "aggregate": report.get("aggregate"),
        "thresholds": report.get("thresholds"),
        "metrics": {name: report.get(name) for name in names},
        "ci95": {name: report["ci95"][name] for name in names if name in report.get("ci95", {})},
    }


def describe(
    meta: dict[str, Any],
    *,
    checkpoint: str | os.PathLike,
    format: str,
    thresholds: dict[str, float] | None,
    thresholds_from: str | None,
    evaluation: Path | None,
) -> dict[str, Any]:
    """The content of model.json for a checkpoint's ``ral`` metadata."""
    from ral.engine.inference import input_metadata

    config = meta.get("config", {})
    result = _run_folder(checkpoint) / "result.json"
    validation = None
    if result.is_file() and Path(checkpoint).name == "best.ckpt":  # result.json: the best epoch's metrics
        validation = json.loads(result.read_text(encoding="utf-8")).get("val_metrics")
    model_channels, image_channels, normalize = input_metadata(meta)
    size = int(meta["image_size"])
    return {
        "export_format": EXPORT_FORMAT,
        "model_file": MODEL_FILES[format],
        "format": format,
        "task": meta["task"],
        "classes": list(meta["class_names"]),
        "outputs": "logits (N, C) in the order of `classes`; probabilities: "
        + ("sigmoid (multi-label)" if meta["task"] == "multilabel" else "softmax (single-label)"),
        "thresholds": thresholds,
        "thresholds_from": thresholds_from,
        "input": {
            "name": "pixels",
            "dtype": "float32",
            "shape": ["N", image_channels, size, size],
            "values": "pixels in [0, 255] (the image resized to a square, as ral reads it)",
            "image_size": size,
            "image_channels": image_channels,
            "model_channels": model_channels,
            "normalize": normalize,
            "normalization_inside_model": format != "safetensors",
        },
        "architecture": {
            "backbone": meta["backbone"],
            "options": dict(meta.get("model_options", {})),
            "num_classes": int(meta["num_classes"]),
        },
        "loss": {"name": config.get("loss", {}).get("name"), "params": config.get("loss", {}).get("params", {})},
        "training_data": {
            "train": config.get("dataset", {}).get("train"),
            "format": meta.get("dataset_format"),
            "num_train_images": meta.get("num_train_images"),
            "uncertain": meta.get("uncertain"),
            "class_counts": dict(zip(meta["class_names"], meta["train_counts"])),
            "groups": dict(zip(meta["class_names"], meta["groups"])),
        },
        "validation": validation,
        "evaluation": _evaluation(evaluation),
        "checkpoint": str(Path(checkpoint).resolve()),
        "software": _software(format),
    }


def _number(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def model_card(description: dict[str, Any]) -> str:
    """model_card.md: what the model predicts, its input, training data, metrics and limits."""
    d, inp, data = description, description["input"], description["training_data"]
    lines = [
        f"# Model card: {d['architecture']['backbone']} trained with {d['loss']['name']} ({d['task']})",
        "",
        f"Exported by `ral export` as `{d['model_file']}` ({d['format']}); machine-readable: `{DESCRIPTION}`.",
        "",
        "## Outputs",
        "",
        f"{d['outputs']}.",
        "",
        "| # | class | training positives | group | threshold |",
        "| ---: | --- | ---: | --- | ---: |",
    ]
    thresholds = d["thresholds"] or {}
    for i, name in enumerate(d["classes"]):
        count, group = data["class_counts"][name], data["groups"][name]
        lines.append(f"| {i} | {name} | {count} | {group} | {_number(thresholds.get(name))} |")
    source = d["thresholds_from"] or "none (0.5, or the argmax for a single-label model)"
    lines += ["", f"Thresholds from: {source}.", "", "## Input", ""]
    lines += [
        f"- shape {' x '.join(map(str, inp['shape']))}, {inp['dtype']}, {inp['values']}",
        f"- normalisation `{inp['normalize'].get('name')}`: (pixel / 255 - mean) / std with mean "
        f"{inp['normalize']['mean']}, std {inp['normalize']['std']}"
        + (" (inside the model)" if inp["normalization_inside_model"] else " (apply it before the network)"),
        "",
        "## Training",
        "",
        f"- data: `{data['train']}` (format {data['format']}), {data['num_train_images']} images; "
        f"uncertain labels: {data['uncertain']}",
        f"- loss: `{d['loss']['name']}` with parameters {d['loss']['params'] or 'the defaults'}",
        f"- architecture: `{d['architecture']['backbone']}` options {d['architecture']['options']}",
        "",
        "## Metrics",
        "",
    ]
    if d["validation"]:
        shown = ", ".join(f"{k} {_number(v)}" for k, v in d["validation"].items() if isinstance(v, float))
        lines += [f"Validation (best epoch of training): {shown}.", ""]
    evaluation = d["evaluation"]
    if evaluation:
        lines += [f"Evaluation on `{evaluation['data']}` ({evaluation['n_images']} images, TTA {evaluation['tta']}, "]
        lines[-1] += f"aggregation {evaluation['aggregate']}; thresholds {evaluation['thresholds']}):"
        lines += ["", "| metric | value | 95% CI (bootstrap) |", "| --- | ---: | --- |"]
        for name, value in evaluation["metrics"].items():
            ci = evaluation["ci95"].get(name)
            interval = f"{_number(ci[0])} - {_number(ci[1])}" if ci else "n/a"
            lines.append(f"| {name} | {_number(value)} | {interval} |")
        lines.append("")
    if not d["validation"] and not evaluation:
        lines += ["None recorded (run `ral evaluate` on the checkpoint before exporting).", ""]
    software = ", ".join(f"{k} {v}" for k, v in d["software"].items())
    lines += [
        "## Limits",
        "",
        "A research model: not validated for clinical use. Its metrics hold for data like its test table; "
        "classes with few training positives (the tail group) are the least reliable.",
        "",
        f"Software: {software}.",
        "",
    ]
    return "\n".join(lines)


def _write_model(model: PixelClassifier, description: dict[str, Any], path: Path) -> None:
    """The network file of one format (written to ``path``, a temporary name of the target)."""
    size, channels = description["input"]["image_size"], description["input"]["image_channels"]
    example = torch.rand(2, channels, size, size) * 255
    if description["format"] == "safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in model.backbone.state_dict().items()}, str(path))
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the normaliser's shape check: constant here
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript (deprecated by torch, read by deployments)
        if description["format"] == "torchscript":
            torch.jit.save(torch.jit.trace(model, example), str(path))
            return
        # the TorchScript-based exporter: about 1 s for a small CNN, against 5 s and more for dynamo's
        axes = {"pixels": {0: "N"}, "logits": {0: "N"}}
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=["pixels"],
            output_names=["logits"],
            dynamic_axes=axes,
            dynamo=False,
        )


def export(
    checkpoint: str | os.PathLike,
    *,
    format: ExportFormat = "onnx",
    out: str | os.PathLike,
    thresholds: str | os.PathLike | None = None,
    evaluation: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Export a ``ral train`` checkpoint as a weights-only model with model.json and model_card.md.

    Args:
        checkpoint: ``.ckpt`` written by ``ral train`` (its moving-average weights when it kept them).
        format: "onnx" (model.onnx), "torchscript" (model.ts) or "safetensors" (model.safetensors: the
            backbone's weights, rebuilt from model.json by ``ral predict --model``).
        out: output folder; files of an earlier export there are replaced only with ``overwrite``.
        thresholds: per-class thresholds, a CSV with class and threshold columns (default: the
            per_class.csv of ``evaluation`` for a multi-label model).
        evaluation: a ``ral evaluate`` output folder whose metrics (with intervals) and thresholds the
            card reports (default: the newest one under the run's eval/ folder, if any).
        overwrite: replace model files, model.json and model_card.md already in ``out``.

    Returns:
        ``{"model": path, "description": path, "card": path}``.

    Raises:
        FileNotFoundError / ValueError: a missing or unreadable checkpoint, thresholds or evaluation folder.
        FileExistsError: ``out`` holds files this export would replace (without ``overwrite``).
    """
    from ral.engine.inference import load_trained_model
    from ral.report.files import atomic_path, check_writable, write_json, write_text

    if format not in MODEL_FILES:
        raise ValueError(f"format must be one of {list(MODEL_FILES)}, got {format!r}")
    folder = check_writable(out, folder=True)
    targets = {"model": folder / MODEL_FILES[format], "description": folder / DESCRIPTION, "card": folder / CARD}
    present = [p.name for p in targets.values() if p.exists()]
    if present and not overwrite:
        raise FileExistsError(f"{folder} already holds {present}; give --overwrite to replace them")
    if evaluation is not None:
        evaluation = Path(evaluation)
        if not (evaluation / "metrics.json").is_file():
            raise FileNotFoundError(f"evaluation: {evaluation} holds no metrics.json of `ral evaluate`")
        scored, ensemble = _evaluated(evaluation)
        if scored != str(Path(checkpoint).resolve()) or ensemble:
            what = "an ensemble led by " if ensemble else ""
            raise ValueError(f"evaluation: {evaluation} scored {what}{scored}, not the checkpoint {checkpoint}")
    model, meta = load_trained_model(checkpoint, "cpu")
    if evaluation is None:
        evaluation = evaluation_folder(checkpoint)
    classes = list(meta["class_names"])
    source = thresholds
    if source is None and evaluation is not None and meta["task"] == "multilabel":
        source = evaluation / "per_class.csv"
    values = read_thresholds(source, classes) if source is not None else None
    description = describe(
        meta,
        checkpoint=checkpoint,
        format=format,
        thresholds=values,
        thresholds_from=str(source) if source is not None else None,
        evaluation=evaluation,
    )
    with atomic_path(targets["model"]) as temp:
        _write_model(model, description, Path(temp))
    write_json(description, targets["description"])
    write_text(model_card(description), targets["card"])
    return targets


class OnnxRuntimeModel(nn.Module):
    """An exported model.onnx run by onnxruntime (CPU): float pixels (N, c, S, S) -> logits (N, C) tensor."""

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__()
        try:
            import onnxruntime
        except ImportError:
            raise ValueError("model: reading model.onnx needs onnxruntime (pip install 'ral[export]')") from None
        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        # predict_probabilities takes the device from a model's parameters: this one's is the CPU
        self.anchor = nn.Parameter(torch.empty(0), requires_grad=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        (logits,) = self.session.run(None, {"pixels": pixels.float().cpu().numpy()})
        return torch.from_numpy(np.asarray(logits))


def load_exported(folder: str | os.PathLike) -> tuple[PixelClassifier, dict[str, Any]]:
    """The model of an export folder (on the CPU, eval mode) and checkpoint-like metadata for prediction.

    model.onnx runs through onnxruntime; otherwise model.ts through TorchScript, otherwise
    model.safetensors in the architecture model.json names.

    Raises:
        FileNotFoundError: no model.json or no model file. ValueError: an unreadable model.json.
    """
    from ral.data.transforms import InputNormalizer

    folder = Path(folder)
    if not (folder / DESCRIPTION).is_file():
        raise FileNotFoundError(f"model: {folder} holds no {DESCRIPTION} (a folder written by `ral export`)")
    try:
        d = json.loads((folder / DESCRIPTION).read_text(encoding="utf-8"))
        inp, arch = d["input"], d["architecture"]
        meta = {"task": d["task"], "class_names": list(d["classes"]), "image_size": int(inp["image_size"])}
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"model: {folder / DESCRIPTION} is not a ral export description ({exc!r})") from None
    meta["dataset_format"] = d.get("training_data", {}).get("format")
    channels = int(inp["image_channels"])
    if (folder / MODEL_FILES["onnx"]).is_file():
        network: nn.Module = OnnxRuntimeModel(folder / MODEL_FILES["onnx"])
    elif (folder / MODEL_FILES["torchscript"]).is_file():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            network = torch.jit.load(str(folder / MODEL_FILES["torchscript"]), map_location="cpu")
    elif (folder / MODEL_FILES["safetensors"]).is_file():
        from safetensors.torch import load_file

        from ral.models import build_model

        backbone = build_model(
            arch["backbone"], arch["num_classes"], in_channels=int(inp["model_channels"]), **arch["options"]
        )
        backbone.load_state_dict(load_file(str(folder / MODEL_FILES["safetensors"])))
        normalize = InputNormalizer(inp["normalize"]["mean"], inp["normalize"]["std"])
        return PixelClassifier(backbone, normalize, channels).eval(), meta
    else:
        raise FileNotFoundError(f"model: {folder} holds none of {sorted(MODEL_FILES.values())}")
    return PixelClassifier(network, nn.Identity(), channels).eval(), meta


def exported_member(folder: str | os.PathLike) -> Member:
    """An export folder as a member of :func:`ral.engine.ensemble.ensemble_probabilities` (``ral predict --model``)."""
    model, meta = load_exported(folder)
    return Member(Path(folder), model, meta)


def threshold_values(path: str | os.PathLike, meta: dict[str, Any]) -> np.ndarray:
    """(C,) thresholds of a multi-label model's classes, in its order, from :func:`read_thresholds`'s CSV.

    Raises:
        ValueError: a single-label model (its prediction is the argmax), or a bad file.
    """
    if meta["task"] != "multilabel":
        raise ValueError("thresholds: only multi-label models take per-class thresholds (single-label: the argmax)")
    values = read_thresholds(path, list(meta["class_names"]))
    return np.array([values[name] for name in meta["class_names"]])
