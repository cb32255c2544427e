"""Every plot writes a valid image atomically and leaves no figure open."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ral.metrics import per_class_table
from ral.report import (
    metric_columns,
    plot_ap_vs_frequency,
    plot_heatmap,
    plot_long_tail,
    plot_metric_bars,
    plot_pr_curves,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NAMES = ["Cardiomegaly", "Edema", "Hernia", "Fibrosis"]
GROUPS = ["head", "medium", "tail", "tail"]
COUNTS = [76900, 38574, 4049, 1158]


def _predictions(n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y_true = (rng.random((n, 4)) < [0.5, 0.3, 0.1, 0.0]).astype(float)  # Fibrosis: no positive
    y_true[0, 2] = 1.0
    y_true[rng.random((n, 4)) < 0.1] = np.nan
    return y_true, np.clip(0.4 * np.nan_to_num(y_true) + 0.6 * rng.random((n, 4)), 0, 1)


def _assert_png(path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


@pytest.fixture(autouse=True)
def _no_open_pyplot_figures():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before


def test_ap_vs_frequency_and_pr_curves(tmp_path):
    y_true, y_score = _predictions()
    table = per_class_table(y_true, y_score, class_names=NAMES, counts=COUNTS, groups=GROUPS)
    _assert_png(plot_ap_vs_frequency(table, tmp_path / "ap_vs_frequency.png"))
    tail = [n for n, g in zip(NAMES, GROUPS) if g == "tail"]
    _assert_png(plot_pr_curves(y_true, y_score, NAMES, tail, tmp_path / "pr_tail.png"))
    _assert_png(plot_pr_curves(y_true, y_score, NAMES, [], tmp_path / "pr_none.png"))


def test_pr_curves_reject_unknown_class(tmp_path):
    y_true, y_score = _predictions()
    with pytest.raises(ValueError, match="'Mass', which is not in class_names"):
        plot_pr_curves(y_true, y_score, NAMES, ["Mass"], tmp_path / "pr.png")
    with pytest.raises(ValueError, match="index 9, outside"):
        plot_pr_curves(y_true, y_score, NAMES, [9], tmp_path / "pr.png")
    assert not (tmp_path / "pr.png").exists()


def test_long_tail_png_and_svg(tmp_path):
    _assert_png(plot_long_tail(COUNTS, NAMES, GROUPS, tmp_path / "long_tail.png"))
    svg = plot_long_tail(COUNTS, NAMES, None, tmp_path / "long_tail.svg")
    assert b"<svg" in svg.read_bytes()[:500]
    with pytest.raises(ValueError, match="counts must have one value per class"):
        plot_long_tail(COUNTS[:2], NAMES, GROUPS, tmp_path / "bad.png")


def test_metric_bars_accepts_multiindex_and_flat_summaries(tmp_path):
    results = pd.DataFrame(
        {
            "loss": ["bce", "bce", "ral", "ral"],
            "mAP": [0.20, 0.24, 0.25, 0.27],
            "tail_mAP": [0.05, 0.07, 0.10, 0.12],
            "seconds_per_epoch": [3.0, 3.2, 3.1, 3.3],
        }
    )
    nested = results.groupby("loss").agg(["mean", "std"])
    flat = nested.copy()
    flat.columns = [f"{metric}_{stat}" for metric, stat in nested.columns]
    flat = flat.reset_index()
    assert metric_columns(flat)["mAP"] == ("mAP_mean", "mAP_std")
    assert metric_columns(nested)["tail_mAP"] == (("tail_mAP", "mean"), ("tail_mAP", "std"))
    flat.insert(1, "seeds", 1)  # a count column is not a metric once _mean columns exist
    assert list(metric_columns(flat)) == ["mAP", "tail_mAP", "seconds_per_epoch"]
    plain = pd.DataFrame({"mAP": [0.2, 0.3], "mAP_std": [0.01, 0.02]}, index=["bce", "ral"])
    assert metric_columns(plain) == {"mAP": ("mAP", "mAP_std")}
    _assert_png(plot_metric_bars(nested, tmp_path / "bars_nested.png"))
    _assert_png(plot_metric_bars(flat, tmp_path / "bars_flat.png", metrics=["mAP"]))
    with pytest.raises(ValueError, match=r"metrics \['mAUC'\] are not in summary_df"):
        plot_metric_bars(flat, tmp_path / "bars_bad.png", metrics=["mAUC"])


def test_heatmap_with_nan_and_sorted_columns(tmp_path):
    matrix = np.array([[0.1, np.nan, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]])
    path = plot_heatmap(
        matrix, ["bce", "ral"], NAMES, tmp_path / "ap_heatmap.png", title="AP", fmt=".2f", sort_cols_by=COUNTS[::-1]
    )
    _assert_png(path)
    with pytest.raises(ValueError, match=r"matrix must have shape .* \(2, 3\), got \(2, 4\)"):
        plot_heatmap(matrix, ["bce", "ral"], NAMES[:3], tmp_path / "bad.png")


def test_bad_input_leaves_an_existing_plot_untouched(tmp_path):
    path = plot_long_tail(COUNTS, NAMES, GROUPS, tmp_path / "long_tail.png")
    before = path.read_bytes()
    with pytest.raises(ValueError, match="lacks columns"):
        plot_ap_vs_frequency(pd.DataFrame({"AP": [0.1]}), path)
    assert path.read_bytes() == before
