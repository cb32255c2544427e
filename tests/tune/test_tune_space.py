"""ral tune's search space: the loss's declaration changed by tune.space, sampled, applied to a config."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from ral.engine.configfile import config_from_dict, load_config
from ral.losses import FloatRange
from ral.tune.report import best_config_text
from ral.tune.space import grid, sample, search_space, starting_point, stored_params, trial_config


def _config(loss: str = "ral", space: dict | None = None, **params):
    return config_from_dict(
        {
            "dataset": {"train": "train.csv", "val": "val.csv"},
            "loss": {"name": loss, "params": params},
            "tune": {"space": space or {}},
        }
    )


def test_tune_space_changes_the_declared_space() -> None:
    space = search_space(
        _config(
            space={
                "gamma_neg": {"low": 1, "high": 6},
                "beta": None,
                "optimizer.lr": {"low": 1e-4, "high": 1e-2, "log": True},
            }
        )
    )
    assert space["gamma_neg"] == FloatRange(low=1.0, high=6.0)
    assert "beta" not in space and "tau" in space
    assert space["optimizer.lr"].log


@pytest.mark.parametrize(
    ("loss", "space", "message"),
    [
        ("ral", {"gama_neg": {"low": 1, "high": 2}}, "'gama_neg' is no option of loss 'ral'"),
        ("ral", {"eps_pos.5": {"low": 1, "high": 2}}, "no such element"),
        ("bce", {}, "declares no search space"),
    ],
)
def test_bad_spaces_name_the_key(loss: str, space: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        search_space(_config(loss, space))


def test_tune_params_picks_entries() -> None:
    config = config_from_dict(
        {"dataset": {"train": "t.csv", "val": "v.csv"}, "loss": {"name": "asl"}, "tune": {"params": ["clip"]}}
    )
    assert list(search_space(config)) == ["clip"]
    with pytest.raises(ValueError, match=r"tune.params: \['tau'\] not in the search space of loss 'asl'"):
        search_space(config.model_copy(update={"tune": config.tune.model_copy(update={"params": ["tau"]})}))


def test_samples_stay_in_range_and_list_choices_come_back_as_lists() -> None:
    config = _config(space={"optimizer.weight_decay": {"low": 1e-5, "high": 1e-3, "log": True}})
    space = search_space(config)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(12):
        values = sample(study.ask(), space)
        assert 0 <= values["gamma_neg"] <= 8 and 1e-5 <= values["optimizer.weight_decay"] <= 1e-3
        seen.add(repr(values["beta"]))
        made = trial_config(config, values, "runs/t/0001")
        assert made.loss.params["eps_pos"] == [values["eps_pos.0"], values["eps_pos.1"]]
        assert made.optimizer.weight_decay == values["optimizer.weight_decay"] and made.output_dir == "runs/t/0001"
    assert seen == {"None", "[1.0]", "[1.0, 0.5]"}


def test_starting_point_is_the_configs_values_within_range() -> None:
    config = _config(gamma_neg=20.0, space={"optimizer.lr": {"low": 1e-4, "high": 1e-2}})
    point = starting_point(config, search_space(config))
    assert "gamma_neg" not in point  # outside its range: left to the sampler
    assert point["eps_pos.1"] == 1.25 and point["beta"] is None and point["optimizer.lr"] == 1e-3
    assert stored_params({"beta": "[1.0, 0.5]", "tau": 0.1}, search_space(config)) == {"beta": [1.0, 0.5], "tau": 0.1}


def test_grid_points() -> None:
    space = {"a": FloatRange(low=0.0, high=1.0), "b": FloatRange(low=1e-4, high=1e-2, log=True)}
    assert grid(space, 3) == {"a": [0.0, 0.5, 1.0], "b": [1e-4, 1e-3, 1e-2]}


def test_best_yaml_is_a_training_config(tmp_path: Path) -> None:
    config = _config(space={"gamma_neg": {"low": 1, "high": 6}})
    text = best_config_text(config, {"gamma_neg": 2.5, "eps_pos.0": 0.5}, tmp_path, "best trial 3\nval_mAP 0.5")
    assert text.startswith("# best trial 3\n# val_mAP 0.5\n")
    (tmp_path / "best.yaml").write_text(text)
    best = load_config(tmp_path / "best.yaml")
    assert best.loss.params == {"gamma_neg": 2.5, "eps_pos": [0.5, 1.25]}
    assert best.output_dir == str(tmp_path / "best") and best.tune.space == {}
    assert "tune:" not in text
