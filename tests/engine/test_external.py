"""External validation through a class map: a model of CXR-LT classes scored on an NIH ChestX-ray14 table
(``ral evaluate --class-map builtin|my.yaml``), and the class map itself."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ral import cli
from ral.data.class_map import map_classes
from ral.data.classes import CXRLT_CLASSES, NIH_CLASSES, VINDR_CLASSES
from ral.engine import predict
from ral.engine.checkpoint import load_checkpoint
from ral.engine.ensemble import ensemble_probabilities, load_members
from ral.engine.external import eval_tables

#: The tiny model's classes renamed as CXR-LT's, and the NIH names the tiny labels become.
CXRLT_NAMES = {"Alpha": "Pleural Effusion", "Beta": "Pleural Thickening", "Gamma": "Atelectasis"}
NIH_NAMES = {"Alpha": "Effusion", "Beta": "Pleural_Thickening", "Gamma": "Atelectasis"}


def test_builtin_map_of_cxrlt_onto_nih():
    mapping = map_classes(CXRLT_CLASSES, NIH_CLASSES)
    how = {model: (data, kind) for model, data, kind in mapping.pairs}
    assert how["Pleural Effusion"] == ("Effusion", "synonym")
    assert how["Pleural Thickening"] == ("Pleural_Thickening", "synonym")
    assert how["Infiltration"] == ("Infiltration", "identity") and how["No Finding"] == ("No Finding", "identity")
    assert len(mapping.pairs) == 15 and mapping.data_only == []
    assert "Support Devices" in mapping.model_only and "Lung Opacity" in mapping.model_only
    vindr = map_classes(CXRLT_CLASSES, VINDR_CLASSES)
    assert ("Fibrosis", "Pulmonary fibrosis", "synonym") in vindr.pairs
    assert "Nodule/Mass" in vindr.data_only  # broader than Nodule or Mass: not a synonym


def test_user_map_comes_first_and_is_checked(tmp_path):
    user = tmp_path / "map.yaml"
    user.write_text("Tortuous Aorta: aortic elongation\n")
    mapping = map_classes(["Tortuous Aorta", "Pleural Effusion"], ["aortic elongation", "pleural effusion"], user)
    assert mapping.pairs == [
        ("Tortuous Aorta", "aortic elongation", "user"),
        ("Pleural Effusion", "pleural effusion", "synonym"),
    ]
    assert mapping.report()["map"] == str(user)
    user.write_text("Tortuous Aorta: nope\nMass: aortic elongation\n")
    with pytest.raises(ValueError, match=r"\['Mass'\] are not classes of the checkpoint.*\['nope'\] are not classes"):
        map_classes(["Tortuous Aorta"], ["aortic elongation"], user)
    user.write_text("[a, b]\n")
    with pytest.raises(ValueError, match="must be a YAML mapping of model class names to data class names"):
        map_classes(["A"], ["A"], user)
    with pytest.raises(ValueError, match="share no class"):
        map_classes(["A"], ["B"])


@pytest.fixture(scope="module")
def external(trained_run, tiny_data, tmp_path_factory) -> dict[str, Path]:
    """The tiny model with CXR-LT class names (no validation table in its run), and an NIH-format table
    of the tiny test images (Data_Entry columns, ``Finding Labels`` joined by '|')."""
    base = tmp_path_factory.mktemp("external")
    checkpoint = load_checkpoint(trained_run["best_checkpoint"])
    meta = checkpoint["ral"]
    meta["class_names"] = [CXRLT_NAMES.get(c, "Support Devices") for c in meta["class_names"]]
    meta["config"]["dataset"]["val"] = None
    torch.save(checkpoint, base / "cxrlt.ckpt")
    test = pd.read_csv(tiny_data["test"])
    rows = []
    for i, row in test.iterrows():
        name = f"{i + 1:08d}_000.png"
        shutil.copy(Path(tiny_data["test"]).parent / row["path"], base / name)
        found = [nih for tiny, nih in NIH_NAMES.items() if row[tiny] == 1]
        rows.append({"Image Index": name, "Finding Labels": "|".join(found) or "No Finding", "Patient ID": i // 2})
    pd.DataFrame(rows).to_csv(base / "Data_Entry_2017.csv", index=False)
    return {"checkpoint": base / "cxrlt.ckpt", "nih": base / "Data_Entry_2017.csv", "base": base}


def test_the_nih_table_is_read_through_the_map_and_scored_on_the_model_outputs(external, tiny_data):
    members = load_members(external["checkpoint"], "cpu")
    table, val, scored = eval_tables(members, external["nih"], external["nih"], class_map="builtin")
    model = ["Pleural Effusion", "Pleural Thickening", "Atelectasis"]
    assert table.class_names == val.class_names == scored.meta["class_names"] == model
    assert scored.meta["train_counts"] == members[0].meta["train_counts"][:3]
    test = pd.read_csv(tiny_data["test"])
    np.testing.assert_array_equal(table.labels, (test[list(CXRLT_NAMES)] == 1).to_numpy())
    everything = ensemble_probabilities(members, table)
    np.testing.assert_allclose(scored.probabilities(members, table), everything[:, :3])
    assert scored.report["class_map"]["model_only"] == ["Support Devices"]
    lead = scored.members(members)[0]  # what report.html's gallery sees: the scored outputs only
    pixels = torch.zeros(2, 1, 16, 16, dtype=torch.uint8)
    assert lead.meta["class_names"] == model
    with torch.no_grad():
        np.testing.assert_allclose(lead.model(pixels), members[0].model(pixels)[:, :3])


@pytest.mark.slow
def test_a_cxrlt_model_evaluates_on_an_nih_table_through_the_class_map(external, trained_run, tiny_data, capsys):
    args = ["evaluate", "--checkpoint", str(external["checkpoint"]), "--data", str(external["nih"]), "--n-boot", "0"]
    assert cli.main([*args, "--device", "cpu", "--out", str(external["base"] / "refused")]) == 2
    assert "unknown class name" in capsys.readouterr().err  # 13 classes missing without a map
    out = external["base"] / "eval"
    args += ["--val-data", str(external["nih"]), "--device", "cpu", "--out", str(out), "--class-map", "builtin"]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "class map builtin: 3 classes scored (1 identity, 2 synonym)" in printed
    assert "Pleural Effusion = Effusion (synonym)" in printed and "model only: ['Support Devices']" in printed
    report = json.loads((out / "metrics.json").read_text())
    assert report["class_map"]["model_only"] == ["Support Devices"] and report["thresholds"].startswith("tuned on")
    assert set(report["class_map"]["data_only"]) == set(NIH_CLASSES) - set(NIH_NAMES.values())
    per_class = pd.read_csv(out / "per_class.csv").set_index("class")
    assert list(per_class.index) == ["Pleural Effusion", "Pleural Thickening", "Atelectasis"]
    test = pd.read_csv(tiny_data["test"])
    for tiny, model in CXRLT_NAMES.items():
        assert per_class.loc[model, "n_pos"] == (test[tiny] == 1).sum()
    # the scored probabilities are the model's own outputs of those classes on the same images
    expected = predict(trained_run["best_checkpoint"], data=tiny_data["test"], device="cpu")
    scored = pd.read_csv(out / "predictions.csv")
    for tiny, model in CXRLT_NAMES.items():
        np.testing.assert_allclose(scored[model], expected[tiny], atol=1e-6)
    assert report["mAP"] == pytest.approx(per_class["AP"].mean())


@pytest.mark.slow
def test_a_model_of_the_simulated_cxrlt_classes_evaluates_on_an_nih_table(tiny_config, tmp_path, capsys):
    """The issue's check: a model trained on the simulated CXR-LT set (26 classes) evaluates on an
    NIH-format table (the simulated test images under NIH names and labels) through the built-in map."""
    from ral.data import load_table
    from ral.data.simulate import simulate_dataset
    from ral.engine import train

    sim = simulate_dataset(tmp_path / "sim", size=16, n_train=200, n_val=200, n_test=200)
    data = {split: sim / f"{split}.csv" for split in ("train", "val", "test")}
    run = train(tiny_config(data, tmp_path / "run", dataset={"image_size": 16}))
    test = load_table(sim / "test.csv")
    nih = tmp_path / "nih"
    nih.mkdir()
    spelled = {"Pleural Effusion": "Effusion", "Pleural Thickening": "Pleural_Thickening"}
    rows = []
    for i in range(len(test)):
        name = f"{i + 1:08d}_000.png"
        shutil.copy(test.image_path(i), nih / name)
        found = [spelled.get(c, c) for c, y in zip(test.class_names, test.labels[i]) if y == 1]
        found = [c for c in found if c in NIH_CLASSES and c != "No Finding"]
        rows.append({"Image Index": name, "Finding Labels": "|".join(found) or "No Finding", "Patient ID": i})
    pd.DataFrame(rows).to_csv(nih / "Data_Entry_2017.csv", index=False)
    args = ["evaluate", "--checkpoint", run["best_checkpoint"], "--data", str(nih / "Data_Entry_2017.csv")]
    assert cli.main([*args, "--class-map", "builtin", "--n-boot", "0", "--device", "cpu", "--out", str(nih / "e")]) == 0
    assert "class map builtin: 15 classes scored (13 identity, 2 synonym)" in capsys.readouterr().out
    report = json.loads((nih / "e" / "metrics.json").read_text())
    assert len(report["class_map"]["model_only"]) == 11 and 0 <= report["mAP"] <= 1
