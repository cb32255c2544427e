"""``ral evaluate``: metrics, per-class table, bootstrap intervals and plots of a checkpoint on a table.

The checkpoint may be an ensemble, with flip TTA and study aggregation (:mod:`ral.engine.ensemble`,
:mod:`ral.engine.aggregate`). Output folder::

    metrics.json      headline metrics (+ "ci95": bootstrap 95% intervals, run details; when
                      aggregating, "without_aggregation": the metrics of the image probabilities)
    per_class.csv     class, count (training positives), group, AP, AUC, F1, threshold, n_pos
    predictions.csv   the probabilities (id column + one column per class)
    ap_vs_frequency.png, pr_tail.png
    report.html       the page to look at (ral.report.evalreport; rebuilt by ``ral report``)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ral.data.groups import GROUPS
from ral.data.options import FormatName
from ral.engine.aggregate import Aggregation, aggregate_table, aggregation_keys, check_aggregate
from ral.engine.configfile import config_from_checkpoint
from ral.engine.ensemble import Checkpoints, Member, Tta, check_tta, load_members
from ral.engine.external import OUT_OF_FOLD, eval_tables
from ral.engine.runlock import lock_run_folder, releases_run_locks


def default_eval_dir(
    checkpoint: str | os.PathLike,
    data: str | os.PathLike,
    *,
    ensemble: int = 1,
    tta: Tta = "none",
    aggregate: Aggregation = "none",
) -> Path:
    """``<run>/eval/<table name>`` for ``<run>/checkpoints/<file>.ckpt``; else next to the checkpoint.

    The inference options extend the name: ``test-ensemble3-hflip-study`` for an ensemble of
    three checkpoints with flip TTA and study aggregation (``<run>``: the first checkpoint's).
    """
    checkpoint = Path(checkpoint).resolve()
    run = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
    parts = [
        Path(data).stem,
        f"ensemble{ensemble}" if ensemble > 1 else "",
        *(o for o in (tta, aggregate) if o != "none"),
    ]
    return run / "eval" / "-".join(p for p in parts if p)


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


def _scores(
    y_true: np.ndarray,
    probs: np.ndarray,
    *,
    meta: dict[str, Any],
    thresholds: np.ndarray | None,
    n_boot: int,
    seed: int,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The reported metrics (+ "ci95" when ``n_boot`` > 0) and the per-class table of ``probs`` (N, C).

    ``y_true``: (N, C) 1 / 0 / NaN (multi-label, with per-class ``thresholds``) or (N,) class indices.
    """
    from ral.metrics import bootstrap_ci, metric_names, multilabel_metrics, per_class_table, single_label_metrics

    task, groups, names = meta["task"], meta["groups"], meta["class_names"]
    if task == "multilabel":
        metrics = multilabel_metrics(y_true, probs, groups=groups, thresholds=thresholds)
        per_class = per_class_table(
            y_true, probs, class_names=names, counts=meta["train_counts"], groups=groups, thresholds=thresholds
        )
    else:
        metrics = single_label_metrics(y_true, probs, groups=groups)
        per_class = _single_label_per_class(y_true, probs, meta)
    reported = metric_names(task)
    scores: dict[str, Any] = {name: float(metrics[name]) for name in reported}
    if n_boot > 0 and len(probs) > 0:
        ci = bootstrap_ci(
            y_true, probs, metric_names=list(reported), n_boot=n_boot, seed=seed, groups=groups, thresholds=thresholds
        )
        scores["ci95"] = {name: [float(low), float(high)] for name, (low, high) in ci.items()}
    return scores, per_class


@releases_run_locks
def evaluate(
    checkpoint: Checkpoints,
    data: str | os.PathLike | None = None,
    *,
    val_data: str | os.PathLike | None = None,
    out_dir: str | os.PathLike | None = None,
    format: FormatName | None = None,
    root: str | os.PathLike | None = None,
    allow_outside_root: bool = False,
    tta: Tta = "none",
    aggregate: Aggregation = "none",
    batch_size: int = 128,
    num_workers: int = 0,
    n_boot: int = 1000,
    seed: int = 0,
    device: str | None = "auto",
    cache_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    class_map: str | None = None,
    out_of_fold: bool = False,
) -> dict[str, Any]:
    """Evaluate a ``ral train`` checkpoint (or an ensemble) on the table ``data`` and write the outputs to ``out_dir``.

    Multi-label: per-class F1 thresholds are tuned on ``val_data`` (default: the run's
    ``dataset.val``) and applied to ``data``; without a validation table they are 0.5.
    Head / medium / tail groups and the per-class ``count`` are the TRAINING counts stored
    in the checkpoint.

    Args:
        checkpoint: ``.ckpt`` written by ``ral train``, or several: their ensemble (mean of the
            probabilities; same task and classes). The first one's run gives the defaults of
            ``data`` / ``val_data`` / ``out_dir``, the class order, groups and training counts.
        data: table to evaluate (default: the run's ``dataset.test``).
        val_data: table for threshold tuning (multi-label only).
        out_dir: output folder (default :func:`default_eval_dir`); it must be missing or empty
            unless ``overwrite`` (then its files are replaced). Checked before any prediction.
        format, root: table format / image root (default: auto-detect / the table's folder).
        allow_outside_root: accept image paths that lead out of the image root.
        tta: "none" or "hflip" (mean over each image and its horizontal flip).
        aggregate: "none", "study" or "view-study" (:mod:`ral.engine.aggregate`). When aggregating,
            the headline metrics, per_class.csv and predictions.csv are those of the aggregated
            probabilities (thresholds tuned on the aggregated validation probabilities), and
            ``"without_aggregation"`` holds the metrics of the image probabilities.
        n_boot: bootstrap resamples for the 95% intervals (0 skips them). seed: their seed.
        device: "auto", "cpu", "cuda", ...
        cache_dir: decoded-image cache folder (see :class:`ral.data.ImageDataset`), or None.
        class_map: external validation: "builtin" (the synonyms of :mod:`ral.data.class_map`) or a
            YAML file ``{model_class: data_class}`` (applied first): ``data`` (and ``val_data``) keep
            their own classes; the classes they share with the model are scored, under the model's
            names; metrics.json's ``class_map`` says how each was mapped and lists the others.
        out_of_fold: the checkpoints are those of K fold runs (``ral data split``): each predicts
            its own run's ``dataset.val``, the predictions are concatenated and scored once (no
            ``data`` / ``val_data``; thresholds 0.5; default folder ``<run>/eval/out-of-fold-ensembleK``).

    Returns:
        The content of metrics.json plus ``"out_dir"``.

    Raises:
        FileNotFoundError / ValueError: missing files, tables without the checkpoint's classes
            (or without the study ids ``aggregate`` needs), checkpoints that cannot be ensembled.
        FileExistsError / OSError: ``out_dir`` is not empty (without ``overwrite``) or cannot be written.
    """
    from ral.metrics import tune_thresholds
    from ral.metrics.calibration import calibration_metrics
    from ral.report import plot_ap_vs_frequency, plot_pr_curves, write_csv, write_eval_report, write_json
    from ral.report.files import check_output

    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 0:
        raise ValueError(f"n_boot must be an integer >= 0, got {n_boot!r}")
    check_tta(tta)
    check_aggregate(aggregate)
    if out_dir is not None:  # before anything is read (the default folder needs the run's config)
        lock_run_folder(out_dir, "ral evaluate")  # one evaluation per folder
        check_output(out_dir, folder=True, overwrite=overwrite)
    members = load_members(checkpoint, device)
    lead, meta = members[0].path, members[0].meta
    run_config = config_from_checkpoint(meta, lead)
    if out_of_fold and (data is not None or val_data is not None):
        raise ValueError("out_of_fold: each checkpoint predicts its own run's dataset.val; give no data / val_data")
    if out_of_fold:
        data = OUT_OF_FOLD
    if data is None:
        data = run_config.dataset.test
        if data is None:
            raise ValueError(f"data: no table given and the run of {lead} has no dataset.test")
    if val_data is None and not out_of_fold and run_config.dataset.val and Path(run_config.dataset.val).is_file():
        val_data = run_config.dataset.val
    default_out = default_eval_dir(lead, data, ensemble=len(members), tta=tta, aggregate=aggregate)
    if out_dir is None:
        lock_run_folder(default_out, "ral evaluate")
    out = check_output(out_dir if out_dir is not None else default_out, folder=True, overwrite=overwrite)
    task, names = meta["task"], meta["class_names"]
    tables = {"format": format, "root": root, "allow_outside_root": allow_outside_root}
    options = {"tta": tta, "batch_size": batch_size, "num_workers": num_workers, "cache_dir": cache_dir}

    val_data = val_data if task == "multilabel" else None
    table, val, scored = eval_tables(members, data, val_data, class_map=class_map, out_of_fold=out_of_fold, **tables)
    meta, names = scored.meta, scored.meta["class_names"]  # the scored classes (ral.engine.external)
    keys = aggregation_keys(table, aggregate, key="data")
    if val is not None:
        val_keys = aggregation_keys(val, aggregate, key="val_data")
    image_probs = scored.probabilities(members, table, **options)
    y_true = table.labels.astype(np.float64) if task == "multilabel" else table.targets_single()
    # Image-level thresholds, and those of the aggregated probabilities (the same when not aggregating).
    thresholds = thresholds_aggregated = None
    report: dict[str, Any] = {"thresholds": "argmax"}
    if task == "multilabel":
        thresholds = thresholds_aggregated = np.full(len(names), 0.5)
        report["thresholds"] = "default 0.5 (no validation table)"
        if val is not None:
            val_probs = scored.probabilities(members, val, **options)
            val_y = val.labels.astype(np.float64)
            thresholds = tune_thresholds(val_y, val_probs)
            thresholds_aggregated = tune_thresholds(val_y, aggregate_table(val_probs, val_keys))
            report["thresholds"] = f"tuned on {val_data}"
    probs = aggregate_table(image_probs, keys)
    scores = {"meta": meta, "n_boot": n_boot, "seed": seed}
    final, per_class = _scores(y_true, probs, thresholds=thresholds_aggregated, **scores)
    report = final | report
    if keys is not None:
        report["without_aggregation"] = _scores(y_true, image_probs, thresholds=thresholds, **scores)[0]
    report.update(
        {
            "task": task,
            "n_images": len(table),
            "n_boot": n_boot,
            "tta": tta,
            "aggregate": aggregate,
            "checkpoint": str(lead.resolve()),
            "data": str(Path(data).resolve()),
            "val_data": str(Path(val_data).resolve()) if val_data else None,
            "loss": run_config.loss.name,
            "backbone": meta["backbone"],
            "groups": {g: [n for n, gg in zip(names, meta["groups"]) if gg == g] for g in GROUPS},
        }
    )
    report.update(scored.report or {})
    if keys is not None:
        report["n_studies"] = len(set(keys[0]))
    if len(members) > 1:
        report["ensemble"] = [_member_summary(member) for member in members]

    id_column = "dicom_id" if table.format == "cxrlt" else "id"
    predictions = pd.DataFrame(probs, columns=names)
    predictions.insert(0, id_column, table.ids)
    write_csv(predictions, out / "predictions.csv")
    write_csv(per_class, out / "per_class.csv")
    run_name = (lead.parent.parent if lead.parent.name == "checkpoints" else lead.parent).name
    caption = f"{run_name}, loss {report['loss']}"
    plot_ap_vs_frequency(per_class, out / "ap_vs_frequency.png", title=f"AP vs training frequency ({caption})")
    truth_matrix = y_true if task == "multilabel" else np.eye(len(names))[y_true]
    pr_title = f"Precision-recall, rarest classes ({caption})"
    plot_pr_curves(truth_matrix, probs, names, _tail_classes(meta), out / "pr_tail.png", title=pr_title)
    report.update(calibration_metrics(y_true, probs, task=task, groups=meta["groups"]))  # ECE
    write_json(report, out / "metrics.json")
    if len(members) == 1 and set(run_config.train.logger) - {"csv"}:  # the run's trackers get the metrics too
        from ral.engine.loggers import log_evaluation

        log_evaluation(lead, run_config, out.name, report)
    write_eval_report(out, members=scored.members(members), table=table)  # report.html (ral.report.evalreport)
    return report | {"out_dir": str(out)}


def _member_summary(member: Member) -> dict[str, Any]:
    """Path, loss, backbone and image size of one checkpoint of an ensemble (for metrics.json)."""
    loss = member.meta.get("config", {}).get("loss", {}).get("name")
    return {
        "checkpoint": str(member.path.resolve()),
        "loss": loss,
        "backbone": member.meta["backbone"],
        "image_size": member.meta["image_size"],
    }
