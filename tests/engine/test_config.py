"""Config parsing, overrides and validation: every bad value fails before training starts."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pandas as pd
import pytest
import yaml

from conftest import tiny_config
from ral.demo import DEMO_CONFIG
from ral.engine import Config, apply_overrides, config_from_dict, load_config, train, validate_config

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
        ("optimizer.lr=-1", "'optimizer.lr' must be a finite number > 0, got -1"),
        ("loss.name=focal_bce", "'loss.name' must be one of"),
        ("model.backbone=vgg16", "unknown model.backbone 'vgg16'"),
        ("train.epochs=0", "'train.epochs' must be an integer >= 1, got 0"),
        ("train.precision=8", "'train.precision'"),
        ("dataset.format=xml", "'dataset.format'"),
        ("dataset.uncertain=maybe", "'dataset.uncertain'"),
        ("schedule.name=step", "'schedule.name'"),
        ("train.devices=0", "'train.devices'"),
        ("train.batch_size=abc", "'train.batch_size' must be an integer, got 'abc'"),
        ("optimizer.weight_decay=-0.1", "'optimizer.weight_decay'"),
        ("train.early_stopping_patience=2", "dataset.val is not given"),
    ],
)
def test_bad_values_name_key_and_value(override, fragment):
    with pytest.raises(ValueError) as info:
        load_config(None, ["dataset.train=t.csv", override])
    assert fragment in str(info.value)


def test_unknown_key_suggests_the_right_one():
    with pytest.raises(ValueError, match=r"unknown config key 'train.epoch' \(did you mean 'train.epochs'\?\)"):
        load_config(None, ["dataset.train=t.csv", "train.epoch=3"])
    with pytest.raises(ValueError, match="override must look like"):
        apply_overrides({}, ["train.epochs"])
    with pytest.raises(ValueError, match="dataset.train"):
        validate_config(config_from_dict({}))


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
def test_bad_config_fails_before_training(tiny_data, tmp_path, no_fit, change, error, fragment):
    config = tiny_config(tiny_data, tmp_path / "run", **change)
    with pytest.raises(error, match=fragment):
        train(config)


def test_val_table_without_a_training_column(tiny_data, tmp_path, no_fit):
    frame = pd.read_csv(tiny_data["val"]).drop(columns=["Delta"])
    bad_val = tiny_data["val"].parent / "val_missing_delta.csv"
    frame.to_csv(bad_val, index=False)
    config = tiny_config(tiny_data, tmp_path / "run", dataset={"val": str(bad_val)})
    with pytest.raises(ValueError, match=r"dataset.val.*Delta"):
        train(config)


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "configs").glob("*.yaml")))
def test_shipped_configs_are_valid(name):
    config = load_config(REPO / "configs" / name)
    assert config.dataset.train


def test_demo_yaml_matches_the_demo_module():
    shipped = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    assert config_from_dict(shipped) == config_from_dict(DEMO_CONFIG)
