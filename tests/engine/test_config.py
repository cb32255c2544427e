"""Config parsing, overrides and validation: every bad value fails before training starts."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pandas as pd
import pytest
import yaml
from pydantic import BaseModel

from ral.bench.experiment import budget_with, get_budget
from ral.data.images import MIN_IMAGE_SIZE
from ral.demo import DEMO_CONFIG
from ral.engine import (
    Config,
    apply_overrides,
    config_from_checkpoint,
    config_from_dict,
    load_config,
    train,
    validate_config,
)
from ral.engine.reference import config_reference, with_reference

REPO = Path(__file__).resolve().parents[2]


def test_defaults_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("dataset: {train: t.csv}\noptimizer: {lr: 1e-3}\ntrain: {precision: 32}\n")
    config = load_config(path, ["train.epochs=3", "loss.name=asl", "loss.params.gamma_neg=2", "train.devices=auto"])
    assert isinstance(config, Config)
    assert config.optimizer.lr == pytest.approx(1e-3)  # YAML reads 1e-3 as a string
    assert config.train.precision == "32"
    assert config.train.epochs == 3 and config.train.devices == "auto"
    assert config.loss.name == "asl" and config.loss.params == {"gamma_neg": 2}
    assert config.model.backbone == "tiny" and config.optimizer.name == "adamw"
    assert config_from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("optimizer.lr=-1", "config key 'optimizer.lr': input should be greater than 0, got -1"),
        ("loss.name=focal_bce", "config key 'loss.name': one of"),
        ("model.backbone=vgg16", "unknown model.backbone 'vgg16'"),
        ("train.epochs=0", "config key 'train.epochs': input should be greater than or equal to 1, got 0"),
        ("train.precision=8", "'train.precision'"),
        ("dataset.format=xml", "config key 'dataset.format': input should be 'cxrlt', 'nih'"),
        ("dataset.uncertain=maybe", "'dataset.uncertain'"),
        ("schedule.name=step", "'schedule.name'"),
        ("train.devices=0", "'train.devices'"),
        ("train.batch_size=abc", "config key 'train.batch_size': input should be a valid integer, got 'abc'"),
        ("optimizer.weight_decay=-0.1", "'optimizer.weight_decay'"),
        ("train.early_stopping_patience=2", "dataset.val is not given"),
        ("train.progress_bar=1", "config key 'train.progress_bar': input should be a valid boolean, got 1"),
        ("train.epochs=true", "config key 'train.epochs': input should be a valid integer, got True"),
        ("optimizer.lr=true", "config key 'optimizer.lr': input should be a valid number, got True"),
        ("optimizer.lr=.inf", "config key 'optimizer.lr': input should be a finite number, got inf"),
        ("optimizer.momentum=1", "config key 'optimizer.momentum': input should be less than 1, got 1"),
        ("train.eval_batch_size=0", "config key 'train.eval_batch_size': input should be greater than or equal to 1"),
        ("train.devices=[0, -1]", "'train.devices': an integer >= 1, 'auto' or a non-empty list"),
        ("schedule.warmup_epochs=11", "schedule.warmup_epochs must be at most train.epochs (10), got 11"),
        ("dataset.image_size=15", f"'dataset.image_size': input should be greater than or equal to {MIN_IMAGE_SIZE}"),
        ("dataset.classes=[a, [b]]", "config key 'dataset.classes[1]': input should be a valid string, got ['b']"),
        ("dataset.group_thresholds=[0.1]", "'dataset.group_thresholds': list should have at least 2 items"),
        ("dataset.channels=true", "config key 'dataset.channels': an integer expected, got True"),
        ("dataset=5", "config key 'dataset': input should be a valid dictionary or instance of DatasetConfig, got 5"),
        ("train.epochs.max=3", "config key 'train.epochs': input should be a valid integer, got {'max': 3}"),
        ("loss.params.gama_neg=2", "'ral' takes no parameter 'gama_neg' (did you mean 'gamma_neg'?)"),
        ("dataset.max_classes=3", "config key 'dataset': give classes or max_classes, not both"),
    ],
)
def test_bad_values_name_key_and_value(override, fragment):
    extra = ["dataset.classes=[a]"] if override.startswith("dataset.max_classes") else []
    with pytest.raises(ValueError) as info:
        load_config(None, ["dataset.train=t.csv", *extra, override])
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_key_suggests_the_right_one():
    with pytest.raises(ValueError, match=r"unknown config key 'train.epoch' \(did you mean 'train.epochs'\?\)"):
        load_config(None, ["dataset.train=t.csv", "train.epoch=3"])
    with pytest.raises(ValueError, match="override must look like"):
        apply_overrides({}, ["train.epochs"])
    with pytest.raises(ValueError, match=r"unknown config key 'trian' \(did you mean 'train'\?\)"):
        load_config(None, ["trian.epochs=3"])
    with pytest.raises(ValueError, match="config key 'dataset.train' is missing"):
        config_from_dict({})


def test_yaml_file_quirks_and_empty_sections(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("dataset:\n  train: t.csv\n  classes: [0, 1]\nmodel:\ntrain: {devices: [0, 1]}\n")
    config = load_config(path)
    assert config.dataset.classes == ["0", "1"]  # numeric column names stay strings
    assert config.model.backbone == "tiny" and config.train.devices == [0, 1]
    path.write_text("dataset: {train: t.csv}\ntrain: {epoch: 3}\n")
    with pytest.raises(ValueError, match=r"unknown config key 'train.epoch' \(did you mean 'train.epochs'\?\)"):
        load_config(path)


def test_validate_config_checks_changes_made_in_python():
    config = load_config(None, ["dataset.train=t.csv", "train.epochs=3"])
    assert validate_config(config) is config
    config.schedule.warmup_epochs = 5
    with pytest.raises(ValueError, match=r"schedule.warmup_epochs must be at most train.epochs \(3\)"):
        validate_config(config)


def test_config_from_checkpoint_reads_the_stored_plain_data():
    config = load_config(None, ["dataset.train=t.csv", "loss.name=asl", "train.devices=[1]"])
    assert config_from_checkpoint({"config": config.to_dict()}) == config
    renamed = config.to_dict() | {"loss": {"name": "a_loss_not_registered_here", "params": {}}}
    assert config_from_checkpoint({"config": renamed}).loss.name == "a_loss_not_registered_here"
    with pytest.raises(ValueError, match=r"run.ckpt: stored config key 'train.epochs': input should be greater"):
        config_from_checkpoint({"config": config.to_dict() | {"train": {"epochs": 0}}}, "run.ckpt")
    with pytest.raises(ValueError, match="holds no stored config"):
        config_from_checkpoint({}, "run.ckpt")


def test_one_minimum_image_size_everywhere(tiny_data):
    import torch

    from ral.data import ImageDataset, load_table, simulate_dataset
    from ral.models import build_model

    assert load_config(None, ["dataset.train=t.csv", f"dataset.image_size={MIN_IMAGE_SIZE}"])
    with pytest.raises(ValueError, match=f"image_size must be an int >= {MIN_IMAGE_SIZE}"):
        ImageDataset(load_table(tiny_data["train"]), image_size=MIN_IMAGE_SIZE - 1)
    with pytest.raises(ValueError, match=f"--image-size must be an integer >= {MIN_IMAGE_SIZE}"):
        budget_with(get_budget("quick"), image_size=MIN_IMAGE_SIZE - 1)
    with pytest.raises(ValueError, match=f"size must be an int >= {MIN_IMAGE_SIZE}"):
        simulate_dataset("unused", size=MIN_IMAGE_SIZE - 1)
    model = build_model("tiny", 3)  # the default depth halves the side 4 times
    assert model(torch.zeros(2, 1, MIN_IMAGE_SIZE, MIN_IMAGE_SIZE)).shape == (2, 3)


def test_every_key_is_documented_and_the_usage_docs_are_generated():
    reference = config_reference()
    for name, info in Config.model_fields.items():
        assert info.description, name
        section = info.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            assert f"**`{name}`**: {info.description}" in reference
            for key, field in section.model_fields.items():
                assert field.description and f"| `{key}` |" in reference, f"{name}.{key}"
        else:
            assert f"| `{name}` |" in reference
    usage = (REPO / "docs" / "usage.md").read_text(encoding="utf-8")
    assert with_reference(usage) == usage, (
        "docs/usage.md's config reference differs from the schema; regenerate it with "
        "`python -m ral.engine.reference docs/usage.md`"
    )
    with pytest.raises(ValueError, match="config-reference:start"):
        with_reference("no markers")


@pytest.fixture
def no_fit(monkeypatch):
    """Fail the test if Lightning's training loop is ever entered."""

    def refuse(*args, **kwargs):
        raise AssertionError("training started although the config is invalid")

    monkeypatch.setattr(L.Trainer, "fit", refuse)


@pytest.mark.parametrize(
    "change, error, fragment",
    [
        ({"loss": {"name": "nope"}}, ValueError, "loss.name"),
        ({"loss": {"name": "asl", "params": {"gamma_neg": -1}}}, ValueError, "gamma_neg"),
        ({"loss": {"name": "ce"}}, ValueError, "single loss but the dataset is multilabel"),
        ({"model": {"backbone": "unknown-net"}}, ValueError, "unknown-net"),
        ({"model": {"backbone": "tiny", "options": {"wdith": 4}}}, ValueError, "wdith"),
        ({"model": {"backbone": "tiny", "pretrained_path": "/no/weights.pt"}}, FileNotFoundError, "weights.pt"),
        ({"optimizer": {"lr": -0.1}}, ValueError, "optimizer.lr"),
        ({"dataset": {"classes": ["Alpha", "Omega"]}}, ValueError, "Omega"),
        ({"dataset": {"train": "/no/such/train.csv"}}, FileNotFoundError, "dataset.train"),
    ],
)
def test_bad_config_fails_before_training(tiny_data, tiny_config, tmp_path, no_fit, change, error, fragment):
    config = tiny_config(tiny_data, tmp_path / "run", **change)
    with pytest.raises(error, match=fragment):
        train(config)


def test_val_table_without_a_training_column(tiny_data, tiny_config, tmp_path, no_fit):
    frame = pd.read_csv(tiny_data["val"]).drop(columns=["Delta"])
    bad_val = tiny_data["val"].parent / "val_missing_delta.csv"
    frame.to_csv(bad_val, index=False)
    config = tiny_config(tiny_data, tmp_path / "run", dataset={"val": str(bad_val)})
    with pytest.raises(ValueError, match=r"dataset.val.*Delta"):
        train(config)


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "configs").glob("*.yaml")))
def test_shipped_configs_are_valid(name):
    if "backbone: timm:" in (REPO / "configs" / name).read_text():  # without timm: tests/test_configs_bundled.py
        pytest.importorskip("timm")
    config = load_config(REPO / "configs" / name)
    assert config.dataset.train


def test_cxrlt2024_config_is_a_gpu_run_of_the_task1_tables_with_placeholder_paths():
    from ral.data import CXRLT2024_TASK1_CLASSES, CXRLT2024_TASK2_CLASSES

    path = REPO / "configs" / "cxrlt2024-task1.yaml"
    overrides = ["dataset.train=/d/train.csv", "dataset.val=/d/val.csv", "dataset.root=/d/mimic-cxr-jpg"]
    config = load_config(path, [*overrides, "model.pretrained_path=/models/densenet121.pth"])
    assert (config.dataset.train, config.dataset.val, config.dataset.root) == (
        "/d/train.csv",
        "/d/val.csv",
        "/d/mimic-cxr-jpg",
    )
    assert config.dataset.format == "cxrlt" and config.dataset.classes == CXRLT2024_TASK1_CLASSES
    assert config.dataset.image_size == 512 and config.train.precision == "bf16-mixed"
    assert config.model.backbone == "densenet121" and config.model.pretrained_path == "/models/densenet121.pth"
    assert config.train.accelerator == "gpu" and config.loss.name == "ral"
    task2 = load_config(path, [*overrides, "dataset.classes=cxrlt2024-task2"])  # the comment's task-2 line
    assert task2.dataset.classes == CXRLT2024_TASK2_CLASSES
    placeholders = [line for line in path.read_text().splitlines() if line.startswith(("  train:", "  val:"))]
    assert (
        len(placeholders) == 2
        and all("data/cxr-lt-2024/" in line for line in placeholders)
        and "PLACEHOLDERS" in path.read_text()
    )


def test_demo_yaml_matches_the_demo_module():
    shipped = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    assert config_from_dict(shipped) == config_from_dict(DEMO_CONFIG)
