"""One benchmark run's set-up: equal configs across losses, data arguments checked early."""

from __future__ import annotations

from pathlib import Path

import pytest

from ral.bench.experiment import BenchData, LossSpec, engine_config, get_budget, user_data
from ral.bench.losses import prepare_data


def test_runs_differ_only_in_loss_and_seed(tmp_path):
    data = BenchData(train="t.csv", val="v.csv", test="s.csv", task="multilabel")
    budget = get_budget("default")
    a = engine_config(data, LossSpec("bce", "bce"), 0, budget, tmp_path / "a")
    b = engine_config(data, LossSpec("ral", "ral", {"lam": 2.0}), 1, budget, tmp_path / "b")
    for config in (a, b):
        assert config.train.epochs == budget.epochs and config.dataset.image_size == budget.image_size
    assert b.loss.model_dump() == {"name": "ral", "params": {"lam": 2.0}} and b.seed == 1
    different = {key for key in type(a).model_fields if getattr(a, key) != getattr(b, key)}
    assert different == {"seed", "output_dir", "loss"}


def test_bad_data_arguments(tmp_path):
    table = tmp_path / "train.csv"
    table.write_text("path,subject_id,A\n")
    with pytest.raises(FileNotFoundError, match="val_data"):
        user_data(table, tmp_path / "out", val_data=tmp_path / "missing.csv", test_data=table)
    with pytest.raises(ValueError, match="both --val-data and --test-data"):
        user_data(table, tmp_path / "out", val_data=table)
    with pytest.raises(ValueError, match="folder table"):
        user_data(tmp_path, tmp_path / "out")
    with pytest.raises(ValueError, match="exactly one of --data"):
        prepare_data(tmp_path, get_budget("quick"))
    with pytest.raises(ValueError, match="exactly one of --data"):
        prepare_data(tmp_path, get_budget("quick"), data=table, simulate=True)


def test_given_tables_are_used_as_they_are(tmp_path):
    from ral.data.simulate import simulate_dataset

    folder = Path(simulate_dataset(tmp_path / "sim", size=16, n_train=200, n_val=200, n_test=200))
    data = prepare_data(
        tmp_path / "bench",
        get_budget("quick"),
        data=folder / "train.csv",
        val_data=folder / "val.csv",
        test_data=folder / "test.csv",
    )
    assert data.task == "multilabel" and data.test == str((folder / "test.csv").resolve())
    assert not (tmp_path / "bench" / "data").exists()  # nothing split or copied
    with pytest.raises(ValueError, match="--task 'single'"):
        prepare_data(
            tmp_path / "bench",
            get_budget("quick"),
            data=folder / "train.csv",
            val_data=folder / "val.csv",
            test_data=folder / "test.csv",
            task="single",
        )


def test_simulated_data_is_reused_and_names_its_simulation(tmp_path, monkeypatch):
    from ral.bench.experiment import budget_with, simulated_data
    from ral.bench.runner import RunStore
    from ral.data import simulate

    budget = budget_with(get_budget("quick"), image_size=16)
    first = simulated_data(tmp_path / "data", budget)
    stamp = (tmp_path / "data" / "train.csv").stat().st_mtime_ns
    assert simulated_data(tmp_path / "data", budget) == first  # same settings and code: reused
    assert (tmp_path / "data" / "train.csv").stat().st_mtime_ns == stamp
    RunStore(tmp_path / "bench", {"data": first.to_dict()})

    monkeypatch.setattr(simulate, "code_hash", lambda: "f" * 64)  # the generator changed
    second = simulated_data(tmp_path / "data", budget)
    assert second.description != first.description and second.train == first.train
    with pytest.raises(ValueError, match=r"other settings \(differs in \['data'\]\)"):
        RunStore(tmp_path / "bench", {"data": second.to_dict()})
