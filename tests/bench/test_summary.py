"""Aggregation over seeds: mean ± sample std from a hand-made results table."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from ral.bench.summary import format_mean_std, mean_std_table, paired_differences, summarize
from ral.report import markdown_table


@pytest.fixture
def results() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "loss": ["bce", "ral", "bce", "ral", "bce", "asl"],
            "seed": [0, 0, 1, 1, 2, 0],
            "mAP": [0.30, 0.40, 0.32, 0.44, 0.34, 0.35],
            "tail_mAP": [0.1, 0.2, float("nan"), 0.3, 0.2, 0.15],
        }
    )


def test_mean_and_sample_std_per_loss(results):
    summary = summarize(results, ["mAP", "tail_mAP"])
    assert list(summary["loss"]) == ["bce", "ral", "asl"]  # first-appearance order
    assert list(summary["n"]) == [3, 2, 1]
    bce = summary.iloc[0]
    assert bce["mAP_mean"] == pytest.approx(0.32)
    # sample std of 0.30, 0.32, 0.34: sqrt(((-0.02)^2 + 0 + 0.02^2) / 2) = 0.02
    assert bce["mAP_std"] == pytest.approx(0.02)
    ral = summary.iloc[1]
    assert ral["mAP_mean"] == pytest.approx(0.42)
    assert ral["mAP_std"] == pytest.approx(math.sqrt(2 * 0.02**2))
    # NaN values are skipped: bce tail = mean(0.1, 0.2), std over the two
    assert bce["tail_mAP_mean"] == pytest.approx(0.15)
    assert bce["tail_mAP_std"] == pytest.approx(math.sqrt(2 * 0.05**2))
    # one seed: no std
    assert math.isnan(summary.iloc[2]["mAP_std"])


def test_display_table_and_markdown(results):
    summary = summarize(results, ["mAP"])
    table = mean_std_table(summary, ["mAP"], best=["mAP"])
    assert list(table["mAP"]) == ["0.320 ± 0.020", "**0.420 ± 0.028**", "0.350"]
    text = markdown_table(table)
    assert text.splitlines()[0] == "| loss | seeds | mAP |"
    assert "| ral | 2 | **0.420 ± 0.028** |" in text


def test_format_and_missing_columns(results):
    assert format_mean_std(float("nan"), float("nan")) == "–"
    assert format_mean_std(1.23456, 0.0012, digits=2) == "1.23 ± 0.00"
    with pytest.raises(ValueError, match="mF1"):
        summarize(results, ["mF1"])


def test_paired_differences_by_seed(results):
    diffs = paired_differences(results, "mAP", "ral").set_index("loss")
    # ral - bce on seeds 0 and 1: 0.10 and 0.12; seed 2 has no ral run; asl only shares seed 0
    assert diffs.loc["bce", "pairs"] == 2 and diffs.loc["bce", "wins"] == 2
    assert diffs.loc["bce", "mean_diff"] == pytest.approx(0.11)
    assert diffs.loc["bce", "min_diff"] == pytest.approx(0.10) and diffs.loc["bce", "max_diff"] == pytest.approx(0.12)
    assert diffs.loc["asl", "pairs"] == 1 and diffs.loc["asl", "mean_diff"] == pytest.approx(0.05)
    with pytest.raises(ValueError, match="reference 'hill'"):
        paired_differences(results, "mAP", "hill")
