"""K fold runs: out-of-fold evaluation (each run predicts its own validation fold, scored once) and the
K checkpoints as one ensemble in predict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ral import cli
from ral.data import load_table
from ral.engine import evaluate
from ral.engine.checkpoint import load_checkpoint
from ral.engine.ensemble import ensemble_probabilities, load_members
from ral.engine.external import OUT_OF_FOLD, eval_tables


@pytest.fixture(scope="module")
def fold_runs(trained_run, tiny_data, tmp_path_factory) -> list[Path]:
    """Two copies of the tiny run's checkpoint whose runs validated on the two halves of the tiny val table."""
    base = tmp_path_factory.mktemp("folds")
    val = pd.read_csv(tiny_data["val"])
    val["path"] = [str(Path(tiny_data["val"]).parent / p) for p in val["path"]]
    checkpoints = []
    for k, rows in enumerate((val.iloc[:10], val.iloc[10:])):
        rows.to_csv(base / f"fold{k + 1}_val.csv", index=False)
        checkpoint = load_checkpoint(trained_run["best_checkpoint"])
        checkpoint["ral"]["config"]["dataset"]["val"] = str(base / f"fold{k + 1}_val.csv")
        torch.save(checkpoint, base / f"fold{k + 1}.ckpt")
        checkpoints.append(base / f"fold{k + 1}.ckpt")
    return checkpoints


def test_each_fold_run_predicts_its_own_validation_fold(fold_runs, tiny_data):
    members = load_members(fold_runs, "cpu")
    table, val, scored = eval_tables(members, None, None, out_of_fold=True)
    whole = pd.read_csv(tiny_data["val"])
    assert val is None and len(table) == len(whole) and list(scored.owner) == [0] * 10 + [1] * 11
    assert [Path(p).name for p in table.paths] == [Path(p).name for p in whole["path"]]
    probs = scored.probabilities(members, table)
    np.testing.assert_allclose(probs[:10], ensemble_probabilities(members[:1], table.subset(range(10))))
    np.testing.assert_allclose(probs[10:], ensemble_probabilities(members[1:], table.subset(range(10, 21))))
    assert scored.report["data"] == OUT_OF_FOLD and [r["n_images"] for r in scored.report["out_of_fold"]] == [10, 11]


def test_out_of_fold_needs_disjoint_folds_and_no_tables(fold_runs, tiny_data):
    with pytest.raises(ValueError, match="give no data / val_data"):
        evaluate(fold_runs, tiny_data["test"], out_of_fold=True, device="cpu")
    with pytest.raises(ValueError, match="are not folds of one split"):
        evaluate([fold_runs[0], fold_runs[0]], out_of_fold=True, device="cpu")
    with pytest.raises(ValueError, match="give the checkpoints of the K fold runs"):
        evaluate(fold_runs[:1], out_of_fold=True, device="cpu")


@pytest.mark.slow
def test_k_fold_workflow_split_train_out_of_fold_and_ensemble(tiny_data, tiny_config, tmp_path, capsys):
    """ral data split -> one training per fold (one override each) -> ral evaluate --out-of-fold -> ral predict
    with the K checkpoints."""
    from ral.engine import train

    folds = tmp_path / "folds"
    assert cli.main(["data", "split", str(tiny_data["train"]), "--folds", "2", "--out", str(folds)]) == 0
    root = str(Path(tiny_data["train"]).parent)
    checkpoints = []
    for k in (1, 2):
        dataset = {"train": str(folds / f"fold{k}_train.csv"), "val": str(folds / f"fold{k}_val.csv"), "root": root}
        result = train(tiny_config(tiny_data, tmp_path / f"fold{k}", dataset=dataset))
        checkpoints.append(result["best_checkpoint"])
    args = ["evaluate", *(x for c in checkpoints for x in ("--checkpoint", c)), "--out-of-fold", "--n-boot", "0"]
    assert cli.main([*args, "--device", "cpu"]) == 0
    assert "out-of-fold: 64 images, the validation tables of 2 runs" in capsys.readouterr().out
    out = Path(checkpoints[0]).parent.parent / "eval" / "out-of-fold-ensemble2"
    report = json.loads((out / "metrics.json").read_text())
    assert report["data"] == OUT_OF_FOLD and report["n_images"] == 64
    assert sorted(pd.read_csv(out / "predictions.csv")["id"]) == sorted(pd.read_csv(tiny_data["train"])["path"])
    predicted = tmp_path / "ensemble.csv"
    args = ["predict", *(x for c in checkpoints for x in ("--checkpoint", c)), "--data", str(tiny_data["test"])]
    assert cli.main([*args, "--out", str(predicted), "--device", "cpu"]) == 0
    members = load_members(checkpoints, "cpu")
    frame = pd.read_csv(predicted)
    table = load_table(tiny_data["test"], check_images="none")
    mean = np.mean([ensemble_probabilities([m], table) for m in members], axis=0)  # the mean of the fold models
    np.testing.assert_allclose(frame[list(members[0].meta["class_names"])].to_numpy(), mean, atol=1e-6)
