"""`ral bench sensitivity`: arms and grids, spread statistics, pair matrices, and tiny runs."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from ral.bench.experiment import get_budget
from ral.bench.sensitivity import (
    ARMS,
    GRIDS,
    MATCHED,
    benchmark_sensitivity,
    grid_points,
    loss_options,
    parse_grid_overrides,
    point_id,
    quick_grid,
    resolve_arms,
    resolve_grids,
)
from ral.bench.sensitivity_report import grid_statistics, matched_statistics, pair_matrix


def test_grid_parsing_and_points():
    assert parse_grid_overrides(["gamma_neg=1,2.5", "alpha=0.25,null", "eps_pos=[];[-1,1.25]"]) == {
        "gamma_neg": [1, 2.5],
        "alpha": [0.25, None],
        "eps_pos": [[], [-1, 1.25]],
    }
    with pytest.raises(ValueError, match="PARAM=V1"):
        parse_grid_overrides(["gamma_neg"])
    with pytest.raises(ValueError, match="numbers"):
        parse_grid_overrides(["gamma_neg=a,b"])
    points = grid_points({"a": [1, 2], "b": [3, 4, 5]})
    assert len(points) == 6 and points[0] == {"a": 1, "b": 3} and points[-1] == {"a": 2, "b": 5}
    assert quick_grid({"a": [1, 2, 3], "b": [4], "c": [5, 6]}) == {"a": [1, 3], "b": [4]}
    assert point_id("ral", {"tau": 0.05, "lam": 1.5}) == point_id("ral", {"lam": 1.5, "tau": 0.05})
    assert point_id("ral", {"tau": 0.05}) != point_id("ral", {"tau": 0.1})


def test_default_arms_isolate_the_hill_weight_and_grids_match_the_losses():
    # ASL vs ASL + Hill and APL vs RAL: same gamma_neg x margin values, same fixed terms but the Hill weight
    for without, with_hill in MATCHED:
        a, b = ARMS[without], ARMS[with_hill]
        assert list(a.grid.values()) == list(b.grid.values()) and len(a.points()) == 9
        assert (a.loss, b.loss) in {("asl", "ral"), ("apl", "ral")}
        assert a.fixed.get("eps_pos", []) == b.fixed["eps_pos"] and a.fixed["gamma_pos"] == b.fixed["gamma_pos"] == 0
    assert ARMS["asl_hill"].fixed["eps_pos"] == [] and ARMS["ral"].fixed["eps_pos"] == [-1.0, 1.25]
    for arm in ARMS.values():  # every parameter is a real constructor option
        assert set(arm.fixed) | set(arm.grid) <= loss_options(arm.loss), arm.label
    for loss, grid in GRIDS.items():
        assert set(grid) <= loss_options(loss), loss
    with pytest.raises(ValueError, match="no parameter"):
        resolve_grids(["asl"], ["tau=0,0.1"], "multilabel", quick=False)
    with pytest.raises(ValueError, match="exactly one --loss"):
        resolve_grids(["ral", "asl"], ["gamma_neg=1,2"], "multilabel", quick=False)
    with pytest.raises(ValueError, match="single loss"):
        resolve_grids(["ce"], [], "multilabel", quick=False)
    with pytest.raises(ValueError, match="no default grid"):
        resolve_grids(["zlpr"], [], "multilabel", quick=False)
    quick = resolve_grids(["ral"], ["lam=1.5,2"], "multilabel", quick=True)["ral"]
    assert quick == {"gamma_neg": [2.0, 6.0], "tau": [0.0, 0.1], "lam": [1.5, 2]}
    # RAL's own full grid (lam and eps_pos too) through --grid; the fixed values named there become grid values
    (full,) = resolve_arms(["ral"], ["lam=1.5,3", "eps_pos=[];[-1,1.25]"], "multilabel", quick=False)
    assert len(full.points()) == 36 and "lam" not in full.fixed and full.fixed == {"gamma_pos": 0.0}


def test_statistics_and_pair_matrix_from_a_hand_made_grid():
    frame = pd.DataFrame(
        {
            "a": ["1", "1", "2", "2"],
            "b": ["x", "y", "x", "y"],
            "mAP": [0.30, 0.34, 0.20, 0.28],
        }
    )
    stats = grid_statistics(frame, "mAP", ["a", "b"])
    assert stats["points"] == 4
    assert stats["mean"] == pytest.approx(0.28)
    # sample std of (0.02, 0.06, -0.08, 0.00): sqrt(0.0104 / 3)
    assert stats["std"] == pytest.approx(math.sqrt(0.0104 / 3))
    assert stats["worst"] == pytest.approx(0.20) and stats["best"] == pytest.approx(0.34)
    assert stats["range"] == pytest.approx(0.14)
    assert stats["worst_params"] == "a=2, b=x" and stats["best_params"] == "a=1, b=y"
    assert stats["effect_a"] == pytest.approx(0.32 - 0.24)  # marginal means of a: 0.32, 0.24
    assert stats["effect_b"] == pytest.approx(0.31 - 0.25)  # marginal means of b: 0.25, 0.31
    matrix = pair_matrix(frame, "mAP", "a", "b")
    assert list(matrix.index) == ["1", "2"] and list(matrix.columns) == ["x", "y"]
    assert matrix.loc["2", "y"] == pytest.approx(0.28)


@pytest.mark.slow
def test_tiny_grid_on_a_user_table_split_by_patient(tmp_path):
    from ral.data.simulate import simulate_dataset

    source = simulate_dataset(tmp_path / "sim", size=32, n_train=400, n_val=200, n_test=200)
    out = tmp_path / "sens"
    grid = ["gamma_neg=2,4", "clip=0.05", "gamma_pos=0"]
    budget = get_budget("quick")
    benchmark_sensitivity(out, budget, losses=["asl"], grid_overrides=grid, seeds=2, data=source / "train.csv")
    for split in ("train", "val", "test"):  # the user table split by patient, written in the generic layout
        assert (out / "data" / f"{split}.csv").is_file()
    sizes = [len(pd.read_csv(out / "data" / f"{s}.csv")) for s in ("train", "val", "test")]
    assert sum(sizes) == 400 and sizes[0] > sizes[1] > 0 and sizes[2] > 0
    grid = pd.read_csv(out / "grid.csv")
    assert sorted(zip(grid["gamma_neg"], grid["seed"])) == [(2, 0), (2, 1), (4, 0), (4, 1)]
    assert grid["mAP"].between(0, 1).all() and grid["missing_rate"].isna().all()
    summary = pd.read_csv(out / "summary.csv")
    assert summary.loc[0, "points"] == 2 and summary.loc[0, "seeds"] == 2
    point_means = grid.groupby("gamma_neg")["mAP"].mean()
    assert summary.loc[0, "range"] == pytest.approx(point_means.max() - point_means.min())
    assert summary.loc[0, "range_low"] <= summary.loc[0, "range_high"]
    assert "| asl | asl | 2 | 2 |" in (out / "summary.md").read_text()


def test_a_tiny_grid_writes_its_tables(tmp_path, tiny_budget, tiny_tables, no_evaluate_figures):
    given = {"data": tiny_tables.train, "val_data": tiny_tables.val, "test_data": tiny_tables.test}
    arms = {"losses": ["asl"], "grid_overrides": ["gamma_neg=2,6", "clip=0.05"]}
    text = benchmark_sensitivity(tmp_path, tiny_budget, **arms, **given)
    grid = pd.read_csv(tmp_path / "grid.csv")
    assert list(grid["gamma_neg"]) == [2, 6] and grid["mAP"].between(0, 1).all() and grid["missing_rate"].isna().all()
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert (summary.loc[0, "points"], summary.loc[0, "seeds"]) == (2, 1)
    assert summary.loc[0, "range"] == pytest.approx(grid["mAP"].max() - grid["mAP"].min())
    assert text == (tmp_path / "summary.md").read_text() and "| asl | asl | 2 | 1 |" in text
    with pytest.raises(ValueError, match="other settings"):  # another budget: refused before any run
        benchmark_sensitivity(tmp_path, get_budget("quick"), **arms, **given)


@pytest.mark.slow
def test_missing_rates_are_datasets_of_one_benchmark(tmp_path, tiny_budget):
    out = tmp_path / "sens"
    arms = {"losses": ["asl"], "grid_overrides": ["gamma_neg=2,6", "clip=0.05"], "simulate": True}
    text = benchmark_sensitivity(out, tiny_budget, missing_rate=[0, 0.5], **arms)
    grid = pd.read_csv(out / "grid.csv")
    assert sorted(set(grid["missing_rate"])) == [0.0, 0.5] and len(grid) == 4
    for rate in ("0", "0.5"):  # one simulated set per rate, same seed and sizes
        info = (out / "data" / f"missing-{rate}" / "dataset.json").read_text()
        assert f'"missing_rate": {float(rate)}' in info
    summary = pd.read_csv(out / "summary.csv", dtype={"dataset": str})
    assert list(summary["dataset"]) == ["0", "0.5"]
    assert text == (out / "summary.md").read_text()
    assert "Missing rate 0 (share" in text and "Missing rate 0.5 (share" in text
    with pytest.raises(ValueError, match="other settings"):  # another rate list
        benchmark_sensitivity(out, tiny_budget, missing_rate=[0, 0.3], **arms)


def test_bad_missing_rates(tmp_path, capsys):
    from ral.bench.sensitivity import missing_rates

    assert missing_rates(None, simulate=True, task=None, quick=False) == [0.0, 0.15, 0.3, 0.5]
    assert missing_rates(None, simulate=True, task="fundus", quick=False) == [None]
    assert missing_rates(None, simulate=False, task=None, quick=True) == [None]
    for rates, kwargs, message in [
        ([0.1], dict(simulate=False, task=None), "simulated multi-label set only"),
        ([0.1], dict(simulate=True, task="single"), "simulated multi-label set only"),
        ([0.95], dict(simulate=True, task=None), "distinct numbers in"),
        ([0.1, 0.1], dict(simulate=True, task=None), "distinct numbers in"),
    ]:
        with pytest.raises(ValueError, match=message):
            missing_rates(rates, quick=False, **kwargs)


def _hand_made_grid(spread_with_hill: float, seeds=(0, 1, 2)) -> pd.DataFrame:
    """asl (no Hill) over 3 points spread 0.1 apart; asl_hill spread ``spread_with_hill``; small seed noise."""
    rows = []
    for seed in seeds:
        noise = 0.002 * (seed - 1)
        for arm, loss, spread in (("asl", "asl", 0.1), ("asl_hill", "ral", spread_with_hill)):
            for index, gamma in enumerate((2, 4, 6)):
                rows.append(
                    {
                        "missing_rate": 0.3,
                        "arm": arm,
                        "loss": loss,
                        "seed": seed,
                        "gamma_neg": str(gamma),
                        "params": f'{{"gamma_neg": {gamma}}}',
                        "mAP": 0.3 + spread * (index - 1) / 2 + noise * (1 + index),
                    }
                )
    return pd.DataFrame(rows)


def test_matched_statistics_and_the_verdict_rule(scripts):
    from ral.bench.sensitivity_report import arm_statistics, sensitivity_verdict

    frame = _hand_made_grid(0.02)
    stats = arm_statistics(frame, "mAP").set_index("arm")
    means = frame[frame["arm"] == "asl"].groupby("gamma_neg")["mAP"].mean()
    assert stats.loc["asl", "range"] == pytest.approx(means.max() - means.min())
    assert stats.loc["asl", "std"] == pytest.approx(means.std(ddof=1))
    assert stats.loc["asl", "worst"] == pytest.approx(means.min())
    assert stats.loc["asl", "range_low"] <= stats.loc["asl", "range"] <= stats.loc["asl", "range_high"]
    assert stats.loc["asl", "worst_params"] == "gamma_neg=2" and stats.loc["asl", "seeds"] == 3
    matched = matched_statistics(frame, "mAP", MATCHED).iloc[0]
    assert (matched["without"], matched["with"], matched["seeds"]) == ("asl", "asl_hill", 3)
    assert matched["d_range"] == pytest.approx(stats.loc["asl_hill", "range"] - stats.loc["asl", "range"])
    assert matched["d_range_high"] < 0 and matched["d_std_high"] < 0 and matched["verdict"] == "less sensitive"
    assert "**supported**" in scripts.claims.claim2_verdict(frame, "multilabel")

    same = matched_statistics(_hand_made_grid(0.1), "mAP", MATCHED).iloc[0]  # equal spreads: the intervals hold 0
    assert same["d_range_low"] <= 0 <= same["d_range_high"] and same["verdict"] == "not shown"
    wider = matched_statistics(_hand_made_grid(0.3), "mAP", MATCHED).iloc[0]
    assert wider["verdict"] == "more sensitive"
    one_seed = matched_statistics(_hand_made_grid(0.02, seeds=(0,)), "mAP", MATCHED).iloc[0]
    assert one_seed["verdict"] == "untested" and math.isnan(one_seed["d_std_low"])
    # the rule needs both intervals below 0
    assert sensitivity_verdict(-0.02, -0.01, -0.05, 0.01) == "not shown"
    assert sensitivity_verdict(-0.02, -0.01, -0.05, -0.01) == "less sensitive"
