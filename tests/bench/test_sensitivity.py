"""`ral bench sensitivity`: grids, spread statistics, pair matrices, and a tiny run on a user table."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from ral.bench.sensitivity import (
    GRIDS,
    grid_points,
    grid_statistics,
    pair_matrix,
    parse_grid_overrides,
    point_id,
    quick_grid,
    resolve_grids,
)
from ral.cli import main


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


def test_default_grids_cover_the_issue_parameters_and_match_the_losses():
    assert set(GRIDS["ral"]) == {"gamma_neg", "tau", "lam", "eps_pos"}
    assert set(GRIDS["asl"]) == {"gamma_neg", "gamma_pos", "clip"}
    assert len(grid_points(GRIDS["ral"])) == 36 and len(grid_points(GRIDS["asl"])) == 18
    # every default grid names real constructor options (resolve_grids checks overrides the same way)
    from ral.losses import LOSSES

    for loss, grid in GRIDS.items():
        assert set(grid) <= set(LOSSES[loss].option_names()), loss
    with pytest.raises(ValueError, match="no parameter"):
        resolve_grids(["asl"], ["tau=0,0.1"], "multilabel", quick=False)
    with pytest.raises(ValueError, match="exactly one --loss"):
        resolve_grids(["ral", "asl"], ["gamma_neg=1,2"], "multilabel", quick=False)
    with pytest.raises(ValueError, match="single loss"):
        resolve_grids(["ce"], [], "multilabel", quick=False)
    quick = resolve_grids(["ral"], ["lam=1.5,2"], "multilabel", quick=True)["ral"]
    assert quick == {"gamma_neg": [2.0, 6.0], "tau": [0.0, 0.1], "lam": [1.5, 2]}


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


def test_tiny_grid_on_a_user_table_split_by_patient(tmp_path):
    from ral.data.simulate import simulate_dataset

    source = simulate_dataset(tmp_path / "sim", size=32, n_train=400, n_val=200, n_test=200)
    out = tmp_path / "sens"
    code = main(
        [
            "bench",
            "sensitivity",
            "--data",
            str(source / "train.csv"),
            "--quick",
            "--loss",
            "asl",
            "--grid",
            "gamma_neg=2,4",
            "clip=0.05",
            "gamma_pos=0",
            "--noise-seeds",
            "2",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    for split in ("train", "val", "test"):  # the user table split by patient, in its own format
        assert (out / "data" / f"{split}.csv").is_file()
    sizes = [len(pd.read_csv(out / "data" / f"{s}.csv")) for s in ("train", "val", "test")]
    assert sum(sizes) == 400 and sizes[0] > sizes[1] > 0 and sizes[2] > 0
    grid = pd.read_csv(out / "grid.csv")
    assert list(grid["gamma_neg"]) == [2, 4] and grid["mAP"].between(0, 1).all()
    summary = pd.read_csv(out / "summary.csv")
    assert summary.loc[0, "points"] == 2
    assert summary.loc[0, "range"] == pytest.approx(grid["mAP"].max() - grid["mAP"].min())
    noise = pd.read_csv(out / "seed_noise.csv")  # asl at its defaults, seeds 0 and 1
    assert list(noise["seed"]) == [0, 1] and (noise["params"] == "{}").all()
    assert summary.loc[0, "seed_runs"] == 2
    assert summary.loc[0, "seed_std"] == pytest.approx(noise["mAP"].std(ddof=1))
    assert "| asl | 2 |" in (out / "summary.md").read_text()
