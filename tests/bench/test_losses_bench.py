"""`ral bench losses`: end to end on a tiny simulated set, resumability, loss selection."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import ral.bench.losses as bench_losses
from ral.bench.experiment import BUDGETS, budget_with, get_budget, known_settings
from ral.bench.losses import benchmark_losses, loss_specs
from ral.metrics import headline_metric


def _tiny_run(out, budget, tables):
    """Two losses, one seed, on the tiny tables as given (no split)."""
    given = {"data": tables.train, "val_data": tables.val, "test_data": tables.test}
    return benchmark_losses(out, budget, seeds=1, losses=["bce", "ral"], **given)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, tiny_budget, tiny_tables, no_evaluate_figures):
    out = tmp_path_factory.mktemp("bench") / "losses"
    assert "# Loss comparison" in _tiny_run(out, tiny_budget, tiny_tables)
    return out


def test_quick_run_writes_every_output(quick_run):
    results = pd.read_csv(quick_run / "results.csv")
    assert list(zip(results["loss"], results["seed"])) == [("bce", 0), ("ral", 0)]
    for column in ("mAP", "mAUC", "mF1", "head_mAP", "medium_mAP", "tail_mAP", "seconds_per_epoch"):
        assert results[column].notna().all(), column
    assert results["mAP"].between(0, 1).all()
    summary = pd.read_csv(quick_run / "summary.csv").set_index("loss")
    assert summary.loc["bce", "mAP_mean"] == pytest.approx(results["mAP"].iloc[0])
    text = (quick_run / "summary.md").read_text()
    bce_row = next(line for line in text.splitlines() if line.startswith("| bce | 1 | "))
    assert f"{results['mAP'].iloc[0]:.3f}" in bce_row and "±" not in bce_row  # one seed: no std
    # ral minus bce paired by seed: one pair gives no interval
    assert f"| bce | 1 | {results['mAP'].iloc[1] - results['mAP'].iloc[0]:+.4f} | n/a |" in text
    per_class = pd.read_csv(quick_run / "per_class.csv")
    assert len(per_class) == 2 * 26 and set(per_class.columns) >= {"loss", "seed", "class", "count", "AP"}
    for figure in ("metrics.png", "per_class.png"):
        assert (quick_run / figure).stat().st_size > 1000
    page = (quick_run / "report.html").read_text()
    assert 'data-loss="bce"' in page and 'data-loss="ral"' in page and "data:image/png;base64," in page


def test_rerun_reuses_finished_runs_and_repeats_only_the_interrupted_one(
    quick_run, tiny_budget, tiny_tables, monkeypatch
):
    before = pd.read_csv(quick_run / "results.csv")
    interrupted = quick_run / "runs" / "ral__seed0" / "result.json"
    stored = json.loads(interrupted.read_text())
    interrupted.unlink()  # as if killed during that run
    calls = []

    def counting(data, spec, seed, budget, folder, **kwargs):
        calls.append((spec.label, seed))
        return {key: value for key, value in stored.items() if key not in ("run_id", "spec")}

    monkeypatch.setattr(bench_losses, "train_and_evaluate", counting)
    monkeypatch.setattr(bench_losses, "plot_losses", lambda *args, **kwargs: None)  # drawn by the first run
    _tiny_run(quick_run, tiny_budget, tiny_tables)
    assert calls == [("ral", 0)]
    pd.testing.assert_frame_equal(pd.read_csv(quick_run / "results.csv"), before)


def test_other_budget_in_the_same_folder_is_refused(quick_run, tiny_budget):
    with pytest.raises(ValueError, match="other settings"):
        benchmark_losses(quick_run, budget_with(tiny_budget, epochs=2), losses=["bce"], simulate=True)


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
    benchmark_losses(tmp_path, get_budget("quick"), simulate=True, task=task)
    results = pd.read_csv(tmp_path / "results.csv")
    assert list(results["loss"]) == expected
    metric = headline_metric("multilabel" if task == "multilabel" else "single")
    assert results[metric].between(0, 1).all()
    assert "| seeds |" in (tmp_path / "summary.md").read_text()


def test_a_simulated_fundus_benchmark_resumes_and_other_sets_are_refused(tmp_path):
    import json

    from ral.bench.runner import open_bench_folder

    budget = get_budget("quick")
    folder = tmp_path / "fundus"
    folder.mkdir()
    stored = {"simulated": "fundus", "task": "single", "train": "t", "val": "v", "test": "s"}  # as a bench writes it
    (folder / "bench.json").write_text(json.dumps({"benchmark": "losses", "budget": budget.__dict__, "data": stored}))
    fundus = known_settings("losses", budget, {"simulate": True, "task": "fundus"})
    assert open_bench_folder(folder, settings=fundus) == folder
    single = known_settings("losses", budget, {"simulate": True, "task": "single"})
    with pytest.raises(ValueError, match=r"differs in \['data.simulated'\]"):
        open_bench_folder(folder, settings=single)
