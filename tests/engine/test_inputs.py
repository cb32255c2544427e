"""Bad input in runs (undecodable images, validation sets without positives, paths outside the
root) and what `ral predict` accepts (image folders, tables without labels)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ral import cli
from ral.data import TableError
from ral.engine import predict, train


@pytest.fixture(scope="module")
def checkpoint(copy_trained_run, tmp_path_factory) -> Path:
    return copy_trained_run(tmp_path_factory.mktemp("inputs")) / "checkpoints" / "best.ckpt"


def _copy_split(source: Path, folder: Path) -> Path:
    """The table ``source`` and its images copied into ``folder`` (free to be broken)."""
    frame = pd.read_csv(source)
    for rel in frame["path"]:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source.parent / rel, folder / rel)
    frame.to_csv(folder / source.name, index=False)
    return folder / source.name


@pytest.mark.parametrize("cached", [True, False])
def test_skip_bad_drops_undecodable_training_images_and_lists_them(tiny_config, tiny_data, tmp_path, cached):
    train_csv = _copy_split(tiny_data["train"], tmp_path / "data")
    broken = pd.read_csv(train_csv)["path"][5]
    (tmp_path / "data" / broken).write_bytes(b"\x89PNG\r\n\x1a\n cut off")
    data = {"train": train_csv, "val": tiny_data["val"]}
    dataset = {"skip_bad": True, "cache_dir": str(tmp_path / "cache") if cached else None}
    with pytest.warns(UserWarning, match=r"skipped 1 of 64 image\(s\) that cannot be read"):
        result = train(tiny_config(data, tmp_path / "run", dataset=dataset))
    assert result["num_train_images"] == 63 and result["skipped_images"] == 1
    listed = pd.read_csv(tmp_path / "run" / "skipped_images.csv")
    assert listed[["table", "row", "id"]].values.tolist() == [["train", 5, broken]]
    assert "cannot decode image file" in listed["reason"][0]
    if cached:  # without skip_bad the cache build fails before any training, naming the file
        with pytest.raises(ValueError, match=rf"cannot decode image file .*{broken}"):
            train(tiny_config(data, tmp_path / "strict", dataset={"cache_dir": str(tmp_path / "cache2")}))
        assert not (tmp_path / "strict" / "checkpoints").exists()


def test_a_validation_table_without_positives_is_refused_before_training(tiny_config, classes, tiny_data, tmp_path):
    val = pd.read_csv(tiny_data["val"])
    val[classes] = 0
    val.to_csv(tiny_data["val"].parent / "val_negative.csv", index=False)
    data = {"train": tiny_data["train"], "val": tiny_data["val"].parent / "val_negative.csv"}
    with pytest.raises(ValueError, match=r"dataset.val .*val_negative.csv: no class has a positive label in its 21"):
        train(tiny_config(data, tmp_path / "run"))
    assert not (tmp_path / "run").exists()

    val[classes] = pd.read_csv(tiny_data["val"])[classes]
    val["Delta"] = 0
    val.to_csv(tiny_data["val"].parent / "val_no_delta.csv", index=False)
    data["val"] = tiny_data["val"].parent / "val_no_delta.csv"
    with pytest.warns(UserWarning, match=r"dataset.val .*: 1 class\(es\) have no positive label: \['Delta'\]"):
        train(tiny_config(data, tmp_path / "run", train={"epochs": 1}))


def test_training_classes_without_positives_are_named(tiny_config, tiny_data, tmp_path):
    frame = pd.read_csv(tiny_data["train"])
    frame["Gamma"] = 0
    frame.to_csv(tiny_data["train"].parent / "train_no_gamma.csv", index=False)
    data = {"train": tiny_data["train"].parent / "train_no_gamma.csv", "val": tiny_data["val"]}
    with pytest.warns(
        UserWarning, match=r"dataset.train .*: 1 class\(es\) have no positive label in 64 rows: \['Gamma'\]"
    ):
        train(tiny_config(data, tmp_path / "run"))


def test_paths_outside_the_root_need_the_config_key(tiny_config, tiny_data, tmp_path):
    (tmp_path / "tables").mkdir()
    frame = pd.read_csv(tiny_data["train"])
    frame["path"] = [str(Path("..") / Path(tiny_data["train"]).parent.name / p) for p in frame["path"]]
    shutil.copytree(tiny_data["train"].parent / "images", tmp_path / tiny_data["train"].parent.name / "images")
    frame.to_csv(tmp_path / "tables" / "train.csv", index=False)
    data = {"train": tmp_path / "tables" / "train.csv", "val": tiny_data["val"]}
    with pytest.raises(TableError, match=r"dataset.train: .* lead out of the image root") as info:
        train(tiny_config(data, tmp_path / "run"))
    assert info.value.option == "allow_outside_root"  # the command line names it as its own option
    result = train(tiny_config(data, tmp_path / "run", dataset={"allow_outside_root": True}))
    assert result["num_train_images"] == 64


def test_predict_a_folder_of_images_recursively_in_sorted_order(classes, checkpoint, tiny_data, tmp_path):
    folder = tmp_path / "scans"
    sources = sorted((tiny_data["test"].parent / "images").glob("test_*.png"))[:3]
    for target, source in zip(["b.png", "a/c.png", "a/b/d.png"], sources):
        (folder / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, folder / target)
    (folder / "notes.txt").write_text("not an image")
    with pytest.warns(UserWarning, match=r"left out 1 file\(s\) that are not images"):
        frame = predict(checkpoint, images=[folder], out=tmp_path / "p.csv")
    assert frame["id"].tolist() == ["a/b/d", "a/c", "b"]
    same = predict(checkpoint, data=folder, out=tmp_path / "q.csv")  # --data accepts a folder too
    np.testing.assert_array_equal(same[classes].to_numpy(), frame[classes].to_numpy())
    single = predict(checkpoint, images=[folder / "b.png"], out=tmp_path / "r.csv")
    np.testing.assert_allclose(single[classes].to_numpy()[0], frame[classes].to_numpy()[2], rtol=1e-6)


def test_predict_reads_tables_of_any_format_without_labels(classes, checkpoint, tiny_data, tmp_path):
    labelled = predict(checkpoint, data=tiny_data["test"], out=tmp_path / "labelled.csv")
    frame = pd.read_csv(tiny_data["test"])
    cxrlt = pd.DataFrame({"dicom_id": [f"d{i}" for i in range(len(frame))], "fpath": frame["path"]})
    cxrlt.to_csv(tiny_data["test"].parent / "cxrlt_list.csv", index=False)
    by_ids = predict(checkpoint, data=tiny_data["test"].parent / "cxrlt_list.csv", out=tmp_path / "ids.csv")
    assert by_ids["id"].tolist() == cxrlt["dicom_id"].tolist()
    np.testing.assert_allclose(by_ids[classes].to_numpy(), labelled[classes].to_numpy(), rtol=1e-6)


def test_inference_hints_name_only_options_the_command_has(checkpoint, tiny_data, tmp_path, capsys):
    listed = tiny_data["test"].parent / "with_missing.csv"
    listed.write_text("path\nimages/test_000.png\nimages/not_there.png\n")
    for command in (
        ["predict", "--data", str(listed), "--out", str(tmp_path / "p.csv")],
        ["evaluate", "--data", str(tiny_data["test"].parent / "eval_missing.csv"), "--out", str(tmp_path / "ev")],
    ):
        if command[0] == "evaluate":
            frame = pd.read_csv(tiny_data["test"])
            frame.loc[3, "path"] = "images/not_there.png"
            frame.to_csv(tiny_data["test"].parent / "eval_missing.csv", index=False)
        assert cli.main([command[0], "--checkpoint", str(checkpoint), *command[1:]]) == 2
        err = capsys.readouterr().err
        assert "image file not found" in err and "skip" not in err, err
    escaping = tiny_data["test"].parent / "escaping.csv"
    escaping.write_text("path\n../elsewhere.png\n")
    assert (
        cli.main(
            ["predict", "--checkpoint", str(checkpoint), "--data", str(escaping), "--out", str(tmp_path / "x.csv")]
        )
        == 2
    )
    assert "--allow-outside-root allows them" in capsys.readouterr().err


def test_evaluate_and_predict_replace_their_outputs_only_with_overwrite(checkpoint, tiny_data, tmp_path, capsys):
    ckpt = str(checkpoint)
    evaluate = ["evaluate", "--checkpoint", ckpt, "--data", str(tiny_data["test"]), "--n-boot", "0"]
    assert cli.main([*evaluate, "--out", str(tmp_path / "ev")]) == 0
    first = (tmp_path / "ev" / "metrics.json").read_text()
    assert cli.main([*evaluate, "--out", str(tmp_path / "ev")]) == 2
    assert "the folder is not empty; pass --overwrite" in capsys.readouterr().err
    assert cli.main([*evaluate, "--out", str(tmp_path / "ev"), "--overwrite"]) == 0
    assert (tmp_path / "ev" / "metrics.json").read_text() == first
    default = checkpoint.parent.parent / "eval" / "test"  # <run>/eval/<table>: refused the second time too
    assert cli.main(evaluate) == 0 and (default / "metrics.json").is_file()
    assert cli.main(evaluate) == 2

    out = tmp_path / "p.csv"
    predict = ["predict", "--checkpoint", ckpt, "--data", str(tiny_data["test"]), "--out", str(out)]
    assert cli.main(predict) == 0
    out.write_text("earlier")
    assert cli.main(predict) == 2 and out.read_text() == "earlier"
    assert "the file exists; pass --overwrite" in capsys.readouterr().err
    assert cli.main([*predict, "--overwrite"]) == 0 and len(pd.read_csv(out)) == 24
