"""Aggregation over seeds: mean ± sample std from a hand-made results table."""

from __future__ import annotations

import math

import numpy as np
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


def test_t_interval_and_direction():
    from ral.bench.summary import direction, t_interval

    low, high = t_interval([1.0, 2.0, 3.0])  # mean 2, sd 1, n 3: t(0.975, 2) = 4.3027
    assert low == pytest.approx(2 - 4.302653 / math.sqrt(3), abs=1e-5) and high == pytest.approx(4 - low)
    assert all(math.isnan(v) for v in t_interval([1.0]))
    assert [direction(0.1, 0.2), direction(-0.2, -0.1), direction(-0.1, 0.1), direction(math.nan, 1)] == [
        "higher",
        "lower",
        "level",
        "untested",
    ]
    assert t_interval([0.1, 0.1, 0.1]) == (pytest.approx(0.1), pytest.approx(0.1))  # equal on every seed: exact


def test_paired_differences_carry_a_t_interval(results):
    diffs = paired_differences(results, "mAP", "ral").set_index("loss")
    # ral - bce: 0.10, 0.12 -> mean 0.11, sd 0.01414, t(0.975, 1) = 12.706
    half = 12.7062 * 0.0141421 / math.sqrt(2)
    assert diffs.loc["bce", "ci_low"] == pytest.approx(0.11 - half, rel=1e-4)
    assert diffs.loc["bce", "verdict"] == "level" and diffs.loc["asl", "verdict"] == "untested"


def test_seed_bootstrap_resamples_seeds():
    from ral.bench.summary import seed_bootstrap

    steady = np.tile([0.1, 0.2, 0.4], (4, 1))  # every seed alike: the interval is the point
    point, low, high = seed_bootstrap(steady, lambda m: m.max(axis=-1) - m.min(axis=-1))
    assert point == pytest.approx(0.3) and low == pytest.approx(0.3) and high == pytest.approx(0.3)
    noisy = steady + np.array([[0.0], [0.1], [-0.1], [0.05]]) * np.array([1.0, 0.0, -1.0])
    point, low, high = seed_bootstrap(noisy, lambda m: m.max(axis=-1) - m.min(axis=-1))
    assert low < point < high
    one = seed_bootstrap(steady[:1], lambda m: m.mean(axis=-1))
    assert one[0] == pytest.approx(0.7 / 3) and math.isnan(one[1]) and math.isnan(one[2])
