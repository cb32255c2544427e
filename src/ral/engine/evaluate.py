"""``ral evaluate``: metrics, per-class table, bootstrap intervals and plots of a checkpoint on a table.

Output folder::

    metrics.json      headline metrics (+ "ci95": bootstrap 95% intervals, run details)
    per_class.csv     class, count (training positives), group, AP, AUC, F1, threshold, n_pos
    predictions.csv   the probabilities (id column + one column per class)
    ap_vs_frequency.png, pr_tail.png
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ral.engine.config import config_from_checkpoint
from ral.engine.inference import load_eval_table, load_trained_model, predict_probabilities


def default_eval_dir(checkpoint: str | os.PathLike, data: str | os.PathLike) -> Path:
    """``<run>/eval/<table name>`` for ``<run>/checkpoints/<file>.ckpt``; else next to the checkpoint."""
    checkpoint = Path(checkpoint).resolve()
    run = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
    return run / "eval" / Path(data).stem


def _single_label_per_class(y: np.ndarray, probs: np.ndarray, meta: dict[str, Any]) -> pd.DataFrame:
    """Per-class one-vs-rest AP / AUC, F1 and recall of argmax predictions (threshold: argmax)."""
    from sklearn.metrics import f1_score, recall_score

    from ral.metrics import per_class_metrics

    num_classes = probs.shape[1]
    onehot = np.eye(num_classes)[y]
    ovr = per_class_metrics(onehot, probs)
    predicted = probs.argmax(axis=1)
    labels = np.arange(num_classes)
    return pd.DataFrame(
        {
            "class": meta["class_names"],
            "count": meta["train_counts"],
            "group": meta["groups"],
            "AP": ovr["AP"],
            "AUC": ovr["AUC"],
            "F1": f1_score(y, predicted, labels=labels, average=None, zero_division=0),
            "recall": np.where(
                ovr["n_pos"] > 0, recall_score(y, predicted, labels=labels, average=None, zero_division=0), np.nan
            ),
            "threshold": np.nan,
            "n_pos": ovr["n_pos"],
        }
    )


def _tail_classes(meta: dict[str, Any], limit: int = 8) -> list[str]:
    """Tail-group classes (at most ``limit``, rarest first); the rarest classes if none."""
    order = np.argsort(meta["train_counts"], kind="stable")
    names = [meta["class_names"][i] for i in order if meta["groups"][i] == "tail"]
    return (names or [meta["class_names"][i] for i in order])[:limit]


def evaluate(
    checkpoint: str | os.PathLike,
    data: str | os.PathLike | None = None,
    *,
    val_data: str | os.PathLike | None = None,
    out_dir: str | os.PathLike | None = None,
    format: str | None = None,
    root: str | os.PathLike | None = None,
    allow_outside_root: bool = False,
    batch_size: int = 128,
    num_workers: int = 0,
    n_boot: int = 1000,
    seed: int = 0,
    device: str | None = "auto",
    cache_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Evaluate a ``ral train`` checkpoint on the table ``data`` and write the outputs to ``out_dir``.

    Multi-label: per-class F1 thresholds are tuned on ``val_data`` (default: the run's
    ``dataset.val``) and applied to ``data``; without a validation table they are 0.5.
    Head / medium / tail groups and the per-class ``count`` are the TRAINING counts stored
    in the checkpoint.

    Args:
        checkpoint: ``.ckpt`` written by ``ral train``.
        data: table to evaluate (default: the run's ``dataset.test``).
        val_data: table for threshold tuning (multi-label only).
        out_dir: output folder (default :func:`default_eval_dir`); it must be missing or empty
            unless ``overwrite`` (then its files are replaced). Checked before any prediction.
        format, root: table format / image root (default: auto-detect / the table's folder).
        allow_outside_root: accept image paths that lead out of the image root.
        n_boot: bootstrap resamples for the 95% intervals (0 skips them). seed: their seed.
        device: "auto", "cpu", "cuda", ...
        cache_dir: decoded-image cache folder (see :class:`ral.data.ImageDataset`), or None.

    Returns:
        The content of metrics.json plus ``"out_dir"``.

    Raises:
        FileNotFoundError / ValueError: missing files, tables without the checkpoint's classes.
        FileExistsError / OSError: ``out_dir`` is not empty (without ``overwrite``) or cannot be written.
    """
    from ral.metrics import (
        bootstrap_ci,
        metric_names,
        multilabel_metrics,
        per_class_table,
        single_label_metrics,
        tune_thresholds,
    )
    from ral.report import plot_ap_vs_frequency, plot_pr_curves, write_csv, write_json
    from ral.report.files import check_output

    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 0:
        raise ValueError(f"n_boot must be an integer >= 0, got {n_boot!r}")
    if out_dir is not None:  # before anything is read (the default folder needs the run's config)
        check_output(out_dir, folder=True, overwrite=overwrite)
    model, meta = load_trained_model(checkpoint, device)
    run_config = config_from_checkpoint(meta, checkpoint)
    if data is None:
        data = run_config.dataset.test
        if data is None:
            raise ValueError(f"data: no table given and the run of {checkpoint} has no dataset.test")
    if val_data is None and run_config.dataset.val and Path(run_config.dataset.val).is_file():
        val_data = run_config.dataset.val
    out = check_output(
        out_dir if out_dir is not None else default_eval_dir(checkpoint, data), folder=True, overwrite=overwrite
    )
    task, size = meta["task"], meta["image_size"]
    tables = {"format": format, "root": root, "allow_outside_root": allow_outside_root}

    table = load_eval_table(data, meta, key="data", split="test", **tables)
    probs = predict_probabilities(
        model, table, task=task, image_size=size, batch_size=batch_size, num_workers=num_workers, cache_dir=cache_dir
    )
    groups, names = meta["groups"], meta["class_names"]
    report: dict[str, Any] = {}
    thresholds: np.ndarray | None = None
    if task == "multilabel":
        y_true = table.labels.astype(np.float64)
        thresholds, source = np.full(len(names), 0.5), "default 0.5 (no validation table)"
        if val_data is not None:
            val = load_eval_table(val_data, meta, key="val_data", split="validate", **tables)
            val_probs = predict_probabilities(
                model,
                val,
                task=task,
                image_size=size,
                batch_size=batch_size,
                num_workers=num_workers,
                cache_dir=cache_dir,
            )
            thresholds, source = tune_thresholds(val.labels.astype(np.float64), val_probs), f"tuned on {val_data}"
        metrics = multilabel_metrics(y_true, probs, groups=groups, thresholds=thresholds)
        per_class = per_class_table(
            y_true, probs, class_names=names, counts=meta["train_counts"], groups=groups, thresholds=thresholds
        )
        report["thresholds"] = source
    else:
        y_true = table.targets_single()
        metrics = single_label_metrics(y_true, probs, groups=groups)
        per_class = _single_label_per_class(y_true, probs, meta)
        report["thresholds"] = "argmax"
    reported = metric_names(task)
    report = {name: float(metrics[name]) for name in reported} | report
    if n_boot > 0 and len(table) > 0:
        ci = bootstrap_ci(
            y_true, probs, metric_names=list(reported), n_boot=n_boot, seed=seed, groups=groups, thresholds=thresholds
        )
        report["ci95"] = {name: [float(low), float(high)] for name, (low, high) in ci.items()}
    report.update(
        {
            "task": task,
            "n_images": len(table),
            "n_boot": n_boot,
            "checkpoint": str(Path(checkpoint).resolve()),
            "data": str(Path(data).resolve()),
            "val_data": str(Path(val_data).resolve()) if val_data else None,
            "loss": run_config.loss.name,
            "backbone": meta["backbone"],
            "groups": {g: [n for n, gg in zip(names, groups) if gg == g] for g in ("head", "medium", "tail")},
        }
    )

    id_column = "dicom_id" if table.format == "cxrlt" else "id"
    predictions = pd.DataFrame(probs, columns=names)
    predictions.insert(0, id_column, table.ids)
    write_csv(predictions, out / "predictions.csv")
    write_csv(per_class, out / "per_class.csv")
    plot_ap_vs_frequency(per_class, out / "ap_vs_frequency.png")
    truth_matrix = y_true if task == "multilabel" else np.eye(len(names))[y_true]
    plot_pr_curves(truth_matrix, probs, names, _tail_classes(meta), out / "pr_tail.png")
    write_json(report, out / "metrics.json")
    return report | {"out_dir": str(out)}
