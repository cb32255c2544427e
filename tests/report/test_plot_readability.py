"""Plots people can read: point labels apart, chance baselines, intervals drawn as error bars, titles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text

import ral.report.plots as plots


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plot functions draw (kept instead of written to files)."""
    figures = []

    def keep(figure, path, dpi=150):
        figures.append(figure)
        return path

    monkeypatch.setattr(plots, "_save", keep)
    return figures


def _boxes_overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_ap_vs_frequency_labels_do_not_overlap(drawn, tmp_path) -> None:
    # a crowded tail: eight classes of nearly equal count and AP, with long names
    names = [f"Finding number {i} with a long name" for i in range(8)] + ["Cardiomegaly", "Edema"]
    table = pd.DataFrame(
        {
            "class": names,
            "count": [6, 7, 7, 8, 8, 9, 10, 12, 5000, 3000],
            "AP": [0.09, 0.1, 0.095, 0.1, 0.11, 0.09, 0.1, 0.105, 0.8, 0.7],
            "group": ["tail"] * 8 + ["head"] * 2,
        }
    )
    plots.plot_ap_vs_frequency(table, tmp_path / "ap.png", title="AP vs training frequency (run x, loss ral)")
    (figure,) = drawn
    figure.canvas.draw()  # the layout: text extents in pixels
    axes = figure.axes[0]
    renderer = figure.canvas.get_renderer()
    labels = [text for text in axes.texts if text.get_text() in names]
    assert sorted(text.get_text() for text in labels) == sorted(names)
    boxes = [Text.get_window_extent(text, renderer) for text in labels]  # the text alone, not its leader line
    overlapping = [
        (labels[i].get_text(), labels[j].get_text())
        for i in range(len(boxes))
        for j in range(i + 1, len(boxes))
        if _boxes_overlap(boxes[i], boxes[j])
    ]
    assert overlapping == []
    assert axes.get_title() == "AP vs training frequency (run x, loss ral)"


def test_pr_curves_draw_each_class_prevalence(drawn, tmp_path) -> None:
    truth = np.zeros((40, 2))
    truth[:4, 0], truth[:10, 1] = 1, 1
    score = np.linspace(0, 1, 40)[:, None].repeat(2, axis=1)
    plots.plot_pr_curves(truth, score, ["A", "B"], ["A", "B"], tmp_path / "pr.png")
    (figure,) = drawn
    levels = sorted(
        round(float(line.get_ydata()[0]), 3)
        for line in figure.axes[0].lines
        if line.get_linestyle() == ":" and len(line.get_ydata())
    )
    assert levels == [0.1, 0.25]  # 4 / 40 and 10 / 40


def test_metric_bars_draw_the_given_intervals(drawn, tmp_path) -> None:
    table = pd.DataFrame({"mAP": [0.30, 0.35], "mAUC": [0.7, 0.72]}, index=["bce", "ral"])
    intervals = {"mAP": [(0.25, 0.33), (0.31, 0.40)], "mAUC": [(0.68, 0.71), (0.70, 0.75)]}
    plots.plot_metric_bars(table, tmp_path / "bars.png", intervals=intervals)
    (figure,) = drawn
    segments = [
        sorted((round(float(s[0][1]), 3), round(float(s[1][1]), 3)) for s in container.lines[2][0].get_segments())
        for container in figure.axes[0].containers
        if hasattr(container, "has_yerr") and container.has_yerr
    ]
    assert segments == [[(0.25, 0.33), (0.68, 0.71)], [(0.31, 0.4), (0.7, 0.75)]]
    drawn.clear()
    plots.plot_metric_bars(table, tmp_path / "plain.png")  # no std, no interval: no zero-length bars
    assert not [c for c in drawn[0].axes[0].containers if getattr(c, "has_yerr", False)]
