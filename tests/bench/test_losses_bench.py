"""`ral bench losses`: end to end on a tiny simulated set, resumability, loss selection."""

from __future__ import annotations

import pandas as pd
import pytest

import ral.bench.losses as bench_losses
from ral.bench.experiment import BUDGETS, budget_with, get_budget
from ral.bench.losses import loss_specs
from ral.cli import main
from ral.metrics import headline_metric


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "losses"
    code = main(
        ["bench", "losses", "--simulate", "--quick", "--losses", "bce", "ral", "--seeds", "2", "--out", str(out)]
    )
    assert code == 0
    return out


def test_quick_run_writes_every_output(quick_run):
    results = pd.read_csv(quick_run / "results.csv")
    assert sorted(zip(results["loss"], results["seed"])) == [("bce", 0), ("bce", 1), ("ral", 0), ("ral", 1)]
    for column in ("mAP", "mAUC", "mF1", "head_mAP", "medium_mAP", "tail_mAP", "seconds_per_epoch"):
        assert results[column].notna().all(), column
    assert results["mAP"].between(0, 1).all()
    summary = pd.read_csv(quick_run / "summary.csv")
    bce = results[results["loss"] == "bce"]["mAP"]
    row = summary[summary["loss"] == "bce"].iloc[0]
    assert row["mAP_mean"] == pytest.approx(bce.mean())
    assert row["mAP_std"] == pytest.approx(bce.std(ddof=1))
    text = (quick_run / "summary.md").read_text()
    assert f"{bce.mean():.3f} ± {bce.std(ddof=1):.3f}" in text
    # ral minus bce paired by seed, with its t interval and a verdict by the rule
    diff = results[results["loss"] == "ral"]["mAP"].to_numpy() - bce.to_numpy()
    assert f"| bce | 2 | {diff.mean():+.4f} | [" in text and "**Verdict:" in text
    per_class = pd.read_csv(quick_run / "per_class.csv")
    assert len(per_class) == 4 * 26 and set(per_class.columns) >= {"loss", "seed", "class", "count", "AP"}
    for figure in ("metrics.png", "per_class.png"):
        assert (quick_run / figure).stat().st_size > 1000


def test_rerun_reuses_finished_runs_and_repeats_only_the_interrupted_one(quick_run, monkeypatch):
    before = pd.read_csv(quick_run / "results.csv")
    (quick_run / "runs" / "ral__seed1" / "result.json").unlink()  # as if killed during that run
    calls = []
    real = bench_losses.train_and_evaluate

    def counting(data, spec, seed, budget, folder, **kwargs):
        calls.append((spec.label, seed))
        return real(data, spec, seed, budget, folder, **kwargs)

    monkeypatch.setattr(bench_losses, "train_and_evaluate", counting)
    code = main(
        ["bench", "losses", "--simulate", "--quick", "--losses", "bce", "ral", "--seeds", "2", "--out", str(quick_run)]
    )
    assert code == 0 and calls == [("ral", 1)]
    after = pd.read_csv(quick_run / "results.csv")
    kept = after[after["loss"] == "bce"].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, before[before["loss"] == "bce"].reset_index(drop=True))


def test_other_budget_in_the_same_folder_is_refused(quick_run, capsys):
    code = main(
        ["bench", "losses", "--simulate", "--quick", "--epochs", "2", "--losses", "bce", "--out", str(quick_run)]
    )
    assert code == 2 and "other settings" in capsys.readouterr().err


def test_default_loss_lists():
    budget = get_budget("default")
    multilabel = [spec.label for spec in loss_specs("multilabel", None, budget)]
    assert multilabel[:7] == ["bce", "focal", "asl", "apl", "hill", "cb_focal", "db"]
    assert "ral" in multilabel  # ral_paper is dropped only while the default equals the paper preset
    assert {"zlpr", "twoway", "splc", "ral_cb"} <= set(multilabel)
    # the two options decided by measurement stay rows of the default list
    specs = {spec.label: spec for spec in loss_specs("multilabel", None, budget)}
    assert dict(specs["ral_cb_both"].params) == {"balance": "both"}
    assert (specs["ral_prior"].loss, dict(specs["ral_prior"].params)) == ("ral", {"prior_tau": 1.0})
    assert budget.seeds >= 5
    single = loss_specs("single", None, budget)
    assert [s.label for s in single] == [
        "ce",
        "focal_ce",
        "ldam_drw",
        "logit_adjusted",
        "balanced_softmax",
        "poly_ce",
        "ral_single",
        "ral_la",
    ]
    assert single[2].params["drw_epoch"] == int(0.8 * budget.epochs)


def test_bad_selections_are_rejected():
    budget = BUDGETS["quick"]
    with pytest.raises(ValueError, match="unknown loss 'nope'"):
        loss_specs("multilabel", ["nope"], budget)
    with pytest.raises(ValueError, match="single loss"):
        loss_specs("multilabel", ["ce"], budget)
    with pytest.raises(ValueError, match="budget must be one of"):
        get_budget("huge")
    with pytest.raises(ValueError, match="--epochs"):
        budget_with(budget, epochs=0)
    assert budget_with(budget, epochs=3).name == "quick+epochs=3"
    assert budget_with(budget, epochs=3).epochs == 3


def test_losses_with_parameters_on_the_command_line():
    budget = BUDGETS["quick"]
    (spec,) = loss_specs("multilabel", ['ral_g6=ral:{"gamma_neg": 6, "eps_pos": []}'], budget)
    assert (spec.label, spec.loss, dict(spec.params)) == ("ral_g6", "ral", {"gamma_neg": 6, "eps_pos": []})
    for bad, message in [
        ("ral:{}", "LABEL=NAME"),
        ("x=ral:[1]", "JSON object"),
        ("x=nope:{}", "unknown loss"),
        ("a b=ral:{}", "label may hold"),
    ]:
        with pytest.raises(ValueError, match=message):
            loss_specs("multilabel", [bad], budget)


@pytest.mark.slow
@pytest.mark.parametrize(
    "task, expected",
    [
        (
            "multilabel",
            [
                *("bce", "focal", "asl", "apl", "hill", "cb_focal", "db", "zlpr", "twoway", "splc"),
                *("ral", "ral_cb", "ral_cb_both", "ral_prior"),
            ],
        ),
        (
            "single",
            ["ce", "focal_ce", "ldam_drw", "logit_adjusted", "balanced_softmax", "poly_ce", "ral_single", "ral_la"],
        ),
        (
            "fundus",
            ["ce", "focal_ce", "ldam_drw", "logit_adjusted", "balanced_softmax", "poly_ce", "ral_single", "ral_la"],
        ),
    ],
)
def test_full_quick_benchmark_of_each_task(tmp_path, task, expected):
    assert main(["bench", "losses", "--simulate", "--quick", "--task", task, "--out", str(tmp_path)]) == 0
    results = pd.read_csv(tmp_path / "results.csv")
    assert list(results["loss"]) == expected
    metric = headline_metric("multilabel" if task == "multilabel" else "single")
    assert results[metric].between(0, 1).all()
    assert "**Verdict: not tested** — one seed gives no interval" in (tmp_path / "summary.md").read_text()


def test_a_simulated_fundus_benchmark_resumes_and_other_sets_are_refused(tmp_path):
    import json

    from ral.bench.runner import open_bench_folder

    budget = get_budget("quick")
    folder = tmp_path / "fundus"
    folder.mkdir()
    stored = {"simulated": "fundus", "task": "single", "train": "t", "val": "v", "test": "s"}  # as a bench writes it
    (folder / "bench.json").write_text(json.dumps({"benchmark": "losses", "budget": budget.__dict__, "data": stored}))
    fundus = bench_losses.known_settings("losses", budget, {"simulate": True, "task": "fundus"})
    assert open_bench_folder(folder, settings=fundus) == folder
    single = bench_losses.known_settings("losses", budget, {"simulate": True, "task": "single"})
    with pytest.raises(ValueError, match=r"differs in \['data.simulated'\]"):
        open_bench_folder(folder, settings=single)
