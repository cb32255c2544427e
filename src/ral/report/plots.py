"""Figures of an evaluation or benchmark, written atomically with matplotlib.

Each function builds its own :class:`matplotlib.figure.Figure` on an Agg canvas (no pyplot,
no global backend switch, nothing left open), saves it through :func:`atomic_write` in the
format named by the file suffix (".png" by default), and returns the path.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ral.report.files import atomic_write

GROUP_COLOURS = {"head": "#1f77b4", "medium": "#ff7f0e", "tail": "#d62728"}
OTHER_COLOUR = "#7f7f7f"


def _new_figure(width: float, height: float):
    """A Figure on its own Agg canvas (imported here: importing ral.report loads no backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: str | os.PathLike, dpi: int = 150) -> Path:
    """Save ``figure`` atomically (format from the suffix) and release its contents."""
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    try:
        return atomic_write(path, lambda handle: figure.savefig(handle, format=fmt, dpi=dpi))
    finally:
        figure.clear()


def _group_colour(group: object) -> str:
    return GROUP_COLOURS.get(str(group), OTHER_COLOUR)


def plot_ap_vs_frequency(
    per_class_df: pd.DataFrame, path: str | os.PathLike, *, title: str = "AP vs training frequency"
) -> Path:
    """Scatter of per-class AP against training count (log x), coloured by group.

    Args:
        per_class_df: :func:`ral.metrics.per_class_table` output; needs columns "count" and
            "AP", uses "group" and "class" when present. Rows with NaN AP or count <= 0
            are not drawn.
        path: output image (".png", ".svg", ".pdf").
    """
    missing = {"count", "AP"} - set(per_class_df.columns)
    if missing:
        raise ValueError(f"per_class_df lacks columns {sorted(missing)}; has {list(per_class_df.columns)}")
    rows = per_class_df[np.isfinite(per_class_df["AP"].astype(float))]
    rows = rows[rows["count"].astype(float) > 0]
    groups = rows["group"] if "group" in rows else pd.Series([""] * len(rows), index=rows.index)
    figure = _new_figure(7, 4.5)
    axes = figure.add_subplot()
    for group in dict.fromkeys(groups):
        part = rows[groups == group]
        axes.scatter(part["count"], part["AP"], color=_group_colour(group), label=str(group) or "classes")
    if "class" in rows and len(rows) <= 40:
        _label_points(axes, rows["count"].to_numpy(float), rows["AP"].to_numpy(float), rows["class"].astype(str))
    if len(rows):
        axes.axhline(
            rows["AP"].mean(), color="black", linestyle="--", linewidth=0.8, label=f"mAP {rows['AP'].mean():.3f}"
        )
        axes.set_xscale("log")
        axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the labelled points
    else:
        axes.text(0.5, 0.5, "no class with positives and a training count", ha="center", transform=axes.transAxes)
    axes.set_xlabel("training images with the finding (log)")
    axes.set_ylabel("average precision")
    axes.set_ylim(0, 1.02)
    axes.set_title(title)
    return _save(figure, path)


def _label_points(axes, x: np.ndarray, y: np.ndarray, labels: Sequence[str]) -> None:
    """Label each point (log x axis) where its label overlaps no other label and no marker: the
    labels are placed one by one (highest point first) at the free height nearest to their point,
    with a thin line back to a point whose label had to move. (A few lines of greedy placement
    instead of a dependency such as adjustText; positions in axes fractions, text 6 pt.)"""
    if not len(x):
        return
    logs = np.log10(x)
    span = max(float(logs.max() - logs.min()), 1e-9)
    fx = (logs - logs.min() + 0.05 * span) / (1.1 * span)  # matplotlib's default 5% margins
    fy = np.asarray(y, dtype=np.float64) / 1.02
    width = np.array([0.0095 * len(label) + 0.01 for label in labels])  # ~6 pt characters, 7-inch figure
    # a label starts right of its point, or ends left of it where it would run out of the axes
    left = np.where(fx + 0.008 + width > 1.0, fx - 0.008 - width, fx + 0.008)
    height, marker = 0.04, 0.035
    placed: list[int] = []
    ly = np.empty(len(fy))
    heights = np.arange(0.015, 0.99, 0.005)
    for i in np.argsort(-fy, kind="stable"):
        lane = (left[i] < left[placed] + width[placed]) & (left[placed] < left[i] + width[i])
        taken = ly[placed][lane]
        others = np.array(
            [k for k in range(len(fx)) if k != i and left[i] - 0.012 < fx[k] < left[i] + width[i] + 0.012]
        )
        free = [
            h
            for h in heights
            if np.all(np.abs(taken - h) >= height) and (not others.size or np.all(np.abs(fy[others] - h) >= marker))
        ]
        wanted = fy[i] + 0.02
        ly[i] = min(free, key=lambda h: abs(h - wanted)) if free else wanted
        placed.append(int(i))
    for i, label in enumerate(labels):
        moved_away = abs(ly[i] - fy[i] - 0.02) > 0.012
        axes.annotate(
            label,
            (float(x[i]), float(y[i])),
            xytext=(float(left[i]), float(ly[i])),
            textcoords="axes fraction",
            fontsize=6,
            va="center",
            arrowprops={"arrowstyle": "-", "color": "#999", "linewidth": 0.5, "shrinkB": 3} if moved_away else None,
        )


def plot_pr_curves(
    y_true: np.ndarray,
    y_score: np.ndarray,
    class_names: Sequence[str],
    classes: Sequence[str | int],
    path: str | os.PathLike,
    *,
    title: str = "Precision-recall curves (tail classes)",
) -> Path:
    """Precision-recall curves of the chosen classes (typically the tail group).

    Args:
        y_true: (N, C) with 1 / 0 / NaN (NaN rows of a class are left out of its curve).
        y_score: (N, C) scores. class_names: the C names.
        classes: names or column indices of the classes to draw; a class without positives
            is listed in the legend as such. An empty list gives a figure saying so.
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve  # imported here: light ral.report

    truth = np.asarray(y_true, dtype=np.float64)
    score = np.asarray(y_score, dtype=np.float64)
    names = [str(name) for name in class_names]
    if truth.ndim != 2 or truth.shape != score.shape or truth.shape[1] != len(names):
        raise ValueError(
            f"y_true and y_score must both have shape (N, {len(names)}), got {truth.shape} and {score.shape}"
        )
    figure = _new_figure(6, 5)
    axes = figure.add_subplot()
    for wanted in classes:
        if isinstance(wanted, (int, np.integer)):
            if not 0 <= wanted < len(names):
                raise ValueError(f"classes holds index {wanted}, outside [0, {len(names) - 1}]")
            column = int(wanted)
        elif str(wanted) in names:
            column = names.index(str(wanted))
        else:
            raise ValueError(f"classes holds {wanted!r}, which is not in class_names {names}")
        known = ~np.isnan(truth[:, column])
        labels, scores = truth[known, column], score[known, column]
        if labels.sum() == 0:
            axes.plot([], [], label=f"{names[column]} (no positives)")
            continue
        precision, recall, _ = precision_recall_curve(labels, scores)
        ap = average_precision_score(labels, scores)
        (line,) = axes.step(
            recall, precision, where="post", label=f"{names[column]} (AP {ap:.3f}, n={int(labels.sum())})"
        )
        # chance level of a PR curve: the class's prevalence among the evaluated images
        axes.axhline(labels.mean(), color=line.get_color(), linestyle=":", linewidth=0.9)
    if len(classes):
        axes.plot([], [], color="black", linestyle=":", linewidth=0.9, label="dotted: chance (prevalence)")
        axes.legend(fontsize=7, loc="upper right")
    else:
        axes.text(0.5, 0.5, "no classes to plot", ha="center", transform=axes.transAxes)
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.set_title(title)
    return _save(figure, path)


def plot_long_tail(
    counts: Sequence[float],
    class_names: Sequence[str],
    groups: Sequence[str] | None,
    path: str | os.PathLike,
    *,
    title: str = "Label distribution",
) -> Path:
    """Bar chart of per-class counts sorted from most to least frequent (log y), by group.

    Args:
        counts: (C,) images per class. class_names: C names.
        groups: (C,) "head" / "medium" / "tail" (bar colours), or None.
    """
    values = np.asarray(counts, dtype=np.float64)
    names = [str(name) for name in class_names]
    if values.ndim != 1 or values.shape[0] != len(names):
        raise ValueError(f"counts must have one value per class ({len(names)}), got shape {values.shape}")
    labels = [""] * len(names) if groups is None else [str(g) for g in groups]
    if len(labels) != len(names):
        raise ValueError(f"groups must have one entry per class ({len(names)}), got {len(labels)}")
    order = np.argsort(-values, kind="stable")
    figure = _new_figure(max(6.0, 0.3 * len(names) + 2), 4.5)
    axes = figure.add_subplot()
    axes.bar(np.arange(len(order)), values[order], color=[_group_colour(labels[i]) for i in order])
    axes.set_xticks(np.arange(len(order)), [names[i] for i in order], rotation=90, fontsize=7)
    if np.any(values > 0):
        axes.set_yscale("log")
    if groups is not None:
        from matplotlib.patches import Patch

        present = [group for group in GROUP_COLOURS if group in labels]
        axes.legend(handles=[Patch(color=GROUP_COLOURS[g], label=g) for g in present], fontsize=8)
    axes.set_ylabel("images (log)")
    axes.set_title(title)
    return _save(figure, path)


def metric_columns(summary_df: pd.DataFrame) -> dict[str, tuple[str, str | None]]:
    """Map metric name -> (mean column, std column or None) in a summary table.

    Recognised layouts: MultiIndex columns ``(metric, "mean")`` / ``(metric, "std")`` (what
    ``df.groupby("loss")[metrics].agg(["mean", "std"])`` gives), flat ``<metric>_mean`` /
    ``<metric>_std``, or, only in a table without any ``_mean`` column, plain numeric
    ``<metric>`` columns (std from ``<metric>_std`` when present).
    """
    columns = list(summary_df.columns)
    found: dict[str, tuple[str, str | None]] = {}
    if isinstance(summary_df.columns, pd.MultiIndex):
        for column in columns:
            if column[-1] == "mean":
                std = (*column[:-1], "std")
                found[" ".join(map(str, column[:-1]))] = (column, std if std in columns else None)
        return found
    for column in columns:
        name = str(column)
        if name.endswith("_mean"):
            stem = name[: -len("_mean")]
            found[stem] = (column, f"{stem}_std" if f"{stem}_std" in columns else None)
    if found:
        return found
    for column in columns:
        name = str(column)
        if not name.endswith("_std") and pd.api.types.is_numeric_dtype(summary_df[column]):
            found[name] = (column, f"{name}_std" if f"{name}_std" in columns else None)
    return found


def plot_metric_bars(
    summary_df: pd.DataFrame,
    path: str | os.PathLike,
    *,
    metrics: Sequence[str] | None = None,
    title: str = "Mean over seeds (error bars: std)",
    intervals: Mapping[str, Sequence[Sequence[float]]] | None = None,
) -> Path:
    """Grouped bars: one group per metric, one bar per row (loss), std (or intervals) as error bars.

    Args:
        summary_df: one row per loss; the index (or a first non-numeric column such as
            "loss") gives the bar labels; columns in a layout of :func:`metric_columns`.
        metrics: metrics to draw; None draws every metric whose means lie in [0, 1]
            (scores such as mAP, not seconds per epoch).
        intervals: ``{metric: [(low, high) per row]}``, e.g. bootstrap 95% intervals: drawn as
            the error bars of those metrics instead of a std. A bar without std or interval
            gets no error bar.

    Raises:
        ValueError: a requested metric is not in the table, or no metric is left to draw.
    """
    available = metric_columns(summary_df)
    if metrics is None:
        chosen = [
            name
            for name, (mean, _) in available.items()
            if summary_df[mean].notna().any() and summary_df[mean].dropna().between(0.0, 1.0).all()
        ]
    else:
        chosen = [str(name) for name in metrics]
        unknown = [name for name in chosen if name not in available]
        if unknown:
            raise ValueError(f"metrics {unknown} are not in summary_df; available: {list(available)}")
    if not chosen:
        raise ValueError(f"summary_df has no metric columns to plot; columns: {list(summary_df.columns)}")
    text_columns = [c for c in summary_df.columns if not pd.api.types.is_numeric_dtype(summary_df[c])]
    label_source = summary_df[text_columns[0]] if text_columns else summary_df.index
    labels = label_source.astype(str).tolist()
    num_rows = len(labels)
    width = 0.8 / max(num_rows, 1)
    figure = _new_figure(max(7.0, 1.2 * len(chosen) + 0.3 * num_rows + 1.5), 4.5)
    axes = figure.add_subplot()
    positions = np.arange(len(chosen))
    import matplotlib

    palette = matplotlib.colormaps["tab10" if num_rows <= 10 else "tab20"]  # no two rows in one colour
    for row, label in enumerate(labels):
        means = [float(summary_df[available[m][0]].iloc[row]) for m in chosen]
        errors = np.full((2, len(chosen)), np.nan)  # below, above the mean
        for k, m in enumerate(chosen):
            if intervals is not None and m in intervals:
                low, high = intervals[m][row]
                errors[:, k] = means[k] - float(low), float(high) - means[k]
            elif available[m][1] is not None:
                errors[:, k] = float(summary_df[available[m][1]].iloc[row])
        yerr = None if np.isnan(errors).all() else np.nan_to_num(errors)
        colour = palette(row % palette.N)
        axes.bar(positions - 0.4 + width * (row + 0.5), means, width, yerr=yerr, capsize=2, label=label, color=colour)
    axes.set_xticks(positions, chosen)
    axes.set_ylabel("score")
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, never over them
    axes.set_title("\n".join(textwrap.wrap(title, 90)), fontsize=10)
    return _save(figure, path)


def plot_heatmap(
    matrix: np.ndarray,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    path: str | os.PathLike,
    title: str = "",
    fmt: str = ".2f",
    *,
    sort_cols_by: Sequence[float] | None = None,
    cmap: str = "viridis",
    colorbar_label: str = "",
) -> Path:
    """Heat map of a (rows, cols) matrix with values written in the cells (up to 600 cells).

    Used for per-class AP (rows = losses, cols = classes sorted by training frequency via
    ``sort_cols_by=counts``) and for sensitivity grids (rows / cols = parameter values).
    NaN cells are drawn grey.

    Args:
        matrix: (R, K) values. row_labels: R labels. col_labels: K labels.
        title: figure title. fmt: format spec of the cell values.
        sort_cols_by: (K,) values; columns are reordered from the largest to the smallest.
    """
    values = np.asarray(matrix, dtype=np.float64)
    rows, cols = [str(r) for r in row_labels], [str(c) for c in col_labels]
    if values.ndim != 2 or values.shape != (len(rows), len(cols)):
        raise ValueError(
            f"matrix must have shape (len(row_labels), len(col_labels)) = ({len(rows)}, "
            f"{len(cols)}), got {values.shape}"
        )
    if sort_cols_by is not None:
        keys = np.asarray(sort_cols_by, dtype=np.float64)
        if keys.shape != (len(cols),):
            raise ValueError(f"sort_cols_by must have shape ({len(cols)},), got {keys.shape}")
        order = np.argsort(-keys, kind="stable")
        values, cols = values[:, order], [cols[i] for i in order]
    import matplotlib

    colours = matplotlib.colormaps[cmap].with_extremes(bad="#d9d9d9")
    figure = _new_figure(max(4.0, 0.45 * len(cols) + 2.5), max(3.0, 0.4 * len(rows) + 1.8))
    axes = figure.add_subplot()
    finite = values[np.isfinite(values)]
    low, high = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    image = axes.imshow(
        np.ma.masked_invalid(values), cmap=colours, aspect="auto", vmin=low, vmax=high if high > low else low + 1e-12
    )
    axes.set_xticks(np.arange(len(cols)), cols, rotation=90, fontsize=7)
    axes.set_yticks(np.arange(len(rows)), rows, fontsize=7)
    if values.size <= 600:
        middle = (low + high) / 2
        for (i, j), value in np.ndenumerate(values):
            text = "n/a" if np.isnan(value) else format(value, fmt)
            axes.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=6,
                color="white" if np.isfinite(value) and value < middle else "black",
            )
    figure.colorbar(image, ax=axes, label=colorbar_label)
    axes.set_title(title)
    return _save(figure, path)
