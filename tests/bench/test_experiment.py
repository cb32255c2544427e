"""One benchmark run's set-up: equal configs across losses, data arguments checked early."""

from __future__ import annotations

from pathlib import Path

import pytest

from ral.bench.experiment import BenchData, LossSpec, engine_config, get_budget, prepare_data, user_data


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


def test_given_tables_are_used_as_they_are(tmp_path, tiny_tables):
    given = {"data": tiny_tables.train, "val_data": tiny_tables.val, "test_data": tiny_tables.test}
    data = prepare_data(tmp_path / "bench", get_budget("quick"), **given)
    assert data.task == "multilabel" and data.test == tiny_tables.test
    assert not (tmp_path / "bench" / "data").exists()  # nothing split or copied
    with pytest.raises(ValueError, match="--task 'single'"):
        prepare_data(tmp_path / "bench", get_budget("quick"), task="single", **given)


def test_simulated_data_is_reused_and_names_its_simulation(tmp_path, monkeypatch, tiny_budget, tiny_tables):
    import shutil

    from ral.bench.experiment import simulated_data
    from ral.bench.runner import RunStore
    from ral.data import simulate

    budget = tiny_budget
    shutil.copytree(Path(tiny_tables.train).parent, tmp_path / "data")  # the tiny set, simulated before
    first = simulated_data(tmp_path / "data", budget)
    assert first.description == tiny_tables.description
    stamp = (tmp_path / "data" / "train.csv").stat().st_mtime_ns
    assert simulated_data(tmp_path / "data", budget) == first  # same settings and code: reused
    assert (tmp_path / "data" / "train.csv").stat().st_mtime_ns == stamp
    RunStore(tmp_path / "bench", {"data": first.to_dict()})

    monkeypatch.setattr(simulate, "code_hash", lambda: "f" * 64)  # the generator changed
    second = simulated_data(tmp_path / "data", budget)
    assert second.description != first.description and second.train == first.train
    with pytest.raises(ValueError, match=r"other settings \(differs in \['data'\]\)"):
        RunStore(tmp_path / "bench", {"data": second.to_dict()})


def _with_images(table_path: Path, folder: Path) -> None:
    """Empty files at every image path of ``table_path`` (``check_images="exists"`` needs them)."""
    from ral.data import load_table

    table = load_table(table_path, check_images="none")
    for index in range(len(table)):
        path = table.image_path(index)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


@pytest.mark.parametrize("layout", ["vindr", "mimic"])
def test_a_user_table_of_any_layout_is_split_by_patient_into_readable_tables(tmp_path, layout):
    """VinDr-CXR has one row per radiologist finding and MIMIC-CXR-JPG labels per study joined to a metadata
    file: the splits are written per image in the generic layout, and read back to the same labels."""
    import shutil

    import numpy as np

    from ral.data import load_table

    fixtures = Path(__file__).resolve().parents[1] / "data" / "fixtures"
    if layout == "vindr":
        shutil.copy(fixtures / "vindr_train.csv", tmp_path / "train.csv")
        source = tmp_path / "train.csv"
    else:
        shutil.copytree(fixtures / "mimic", tmp_path / "mimic")
        source = tmp_path / "mimic" / "mimic-cxr-2.0.0-chexpert.csv.gz"
    _with_images(source, tmp_path)
    original = load_table(source)
    data = user_data(source, tmp_path / "bench" / "data")
    assert data.format == "generic" and data.task == "multilabel" and data.root == str(original.root.resolve())
    parts = [load_table(p, format=data.format, root=data.root) for p in (data.train, data.val, data.test)]
    assert sum(len(part) for part in parts) == len(original)
    patients = [set(part.subject_ids) for part in parts]
    assert not (patients[0] & patients[1]) and not (patients[0] & patients[2]) and not (patients[1] & patients[2])
    row = {path: i for i, path in enumerate(original.paths)}
    for part in parts:
        assert part.class_names == original.class_names and all(part.image_path(i).is_file() for i in range(len(part)))
        rows = [row[path] for path in part.paths]
        np.testing.assert_array_equal(part.labels, original.labels[rows])  # NaN (uncertain) included
        if original.study_ids is not None:
            assert part.study_ids == [original.study_ids[i] for i in rows]
            assert part.views == [original.views[i] for i in rows]


def test_single_label_splits_keep_class_names(tmp_path):
    from ral.bench.experiment import write_generic_table
    from ral.data import load_table

    fixtures = Path(__file__).resolve().parents[1] / "data" / "fixtures"
    table = load_table(fixtures / "ISIC2018_Task3_Training_GroundTruth.csv", check_images="none")
    back = load_table(write_generic_table(table, tmp_path / "t.csv"), root=table.root, check_images="none")
    assert back.task == "single" and list(back.targets_single()) == [
        back.class_names.index(table.class_names[k]) for k in table.targets_single()
    ]


def test_simulated_fundus_trains_as_single_label(tmp_path):
    from ral.bench.experiment import budget_with, simulated_data

    budget = budget_with(get_budget("quick"), image_size=16)  # a single-label set needs 40 test images per class
    data = simulated_data(tmp_path / "fundus", budget, task="fundus")
    assert (data.task, data.simulated, data.missing_rate) == ("single", "fundus", None)
    assert "simulated fundus set" in data.description
    with pytest.raises(ValueError, match="multilabel simulated set only"):
        simulated_data(tmp_path / "x", budget, task="single", missing_rate=0.3)
    with pytest.raises(ValueError, match="BenchData.task"):
        BenchData(train="a", val="b", test="c", task="fundus")
    with pytest.raises(ValueError, match="--task fundus"):
        prepare_data(tmp_path, budget, data=tmp_path / "t.csv", task="fundus")


def test_one_hot_tables_are_read_as_single_label_with_task_single(tmp_path):
    """Issue 20: `ral bench losses --task single --data onehot.csv` reads a one-hot table (generic layout,
    exactly one 1 per row) as single-label, and every run's config reads it so (dataset.task: single)."""
    tables = {}
    for split in ("train", "val", "test"):
        rows = [f"{split}{i}.png,p{i},{int(i % 3 == 0)},{int(i % 3 == 1)},{int(i % 3 == 2)}" for i in range(6)]
        tables[split] = tmp_path / f"{split}.csv"
        tables[split].write_text("path,subject_id,nevus,melanoma,vascular\n" + "\n".join(rows) + "\n")
    given = {"data": tables["train"], "val_data": tables["val"], "test_data": tables["test"]}
    assert prepare_data(tmp_path / "auto", get_budget("quick"), **given).task == "multilabel"
    data = prepare_data(tmp_path / "bench", get_budget("quick"), task="single", **given)
    assert data.task == "single" and data.read_as == "single"
    config = engine_config(data, LossSpec("ce", "ce"), 0, get_budget("quick"), tmp_path / "run")
    assert config.dataset.task == "single"
