"""GPU-scale settings, checked on the CPU: inputs that match the weights (channels, normalisation,
pretrained-load report), the moving average of the weights, loader settings, caches built once."""

from __future__ import annotations

import importlib.machinery
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from ral import cli
from ral.data import ImageDataset, load_table
from ral.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from ral.engine import train
from ral.engine.inference import PixelClassifier, load_trained_model, predict_probabilities
from ral.engine.module import ClassifierModule
from ral.models import TinyCNN, build_model


def _rgb_weights(tmp_path: Path, **options) -> Path:
    """A 3-channel tiny CNN's state dict, for 7 classes (its classifier does not fit the 4-class runs)."""
    torch.manual_seed(1)
    path = tmp_path / "rgb.pt"
    torch.save(build_model("tiny", 7, in_channels=3, **options).state_dict(), path)
    return path


def test_a_three_channel_imagenet_run_trains_and_its_checkpoint_predicts_with_the_same_normalisation(
    tiny_config, tiny_data, tmp_path, capsys
):
    weights = _rgb_weights(tmp_path, width=8, depth=3)
    config = tiny_config(
        tiny_data,
        tmp_path / "run",
        dataset={"channels": 3},  # normalize: null follows the pretrained weights -> imagenet
        model={"backbone": "tiny", "options": {"width": 8, "depth": 3}, "pretrained_path": str(weights)},
    )
    result = train(config)
    out = capsys.readouterr().out
    assert "ral train: pretrained weights: " in out and "2 skipped" in out  # the classifier's weight and bias
    report = json.loads((tmp_path / "run" / "pretrained_load.json").read_text())
    assert report["skipped"] == ["classifier.weight", "classifier.bias"] and report["matched"] > 0.9

    model, meta = load_trained_model(result["best_checkpoint"])
    assert meta["in_channels"] == 3 and meta["image_channels"] == 1  # gray images, repeated on the device
    assert meta["normalize"] == {"name": "imagenet", "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    assert isinstance(model, PixelClassifier) and model.normalize.mean == list(IMAGENET_MEAN)

    table = load_table(tiny_data["val"])
    probs = predict_probabilities(model, table, task="multilabel", image_size=16)
    gray = torch.stack([ImageDataset(table, image_size=16)[i][0] for i in range(len(table))]).float() / 255
    rgb = (gray.expand(-1, 3, -1, -1) - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(
        1, 3, 1, 1
    )
    with torch.no_grad():
        expected = torch.sigmoid(model.backbone(rgb)).double().numpy()
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)
    reported = result["val_metrics"]["mAP"]
    from ral.engine.module import compute_metrics

    assert compute_metrics("multilabel", table.labels, probs, meta["groups"])["mAP"] == pytest.approx(reported)


def test_a_pretrained_load_below_the_threshold_is_refused_naming_the_reason(tiny_config, tiny_data, tmp_path):
    weights = _rgb_weights(tmp_path, width=8, depth=3)  # another width: only shapes that do not fit
    other = build_model("tiny", 4, width=4, depth=3)
    torch.save({**other.state_dict(), **{"classifier.weight": torch.zeros(1)}}, tmp_path / "part.pt")
    config = tiny_config(
        tiny_data,
        tmp_path / "run",
        model={"options": {"width": 8, "depth": 3}, "pretrained_path": str(tmp_path / "part.pt")},
    )
    with pytest.raises(ValueError, match=r"fill only \d+\.\d% of the model's values, less than the 90% required"):
        train(config)
    assert not (tmp_path / "run" / "checkpoints").exists()
    config["model"]["pretrained_path"] = str(weights)
    config["model"]["pretrained_min_match"] = 1.0  # the classifier is not loaded: below 100%
    with pytest.raises(ValueError, match=r"model.pretrained_min_match.*first unmatched: \['classifier.weight'\]"):
        train(config)


def test_timm_backbones_take_the_mean_and_std_of_timms_own_pretrained_config(
    tiny_config, tiny_data, tmp_path, monkeypatch
):
    """A stand-in timm module: its models carry a ``pretrained_cfg`` as timm's do."""
    fake = types.ModuleType("timm")
    fake.__spec__ = importlib.machinery.ModuleSpec("timm", None)

    def create_model(name, pretrained, num_classes, in_chans, **options):
        assert name == "tinynet" and pretrained is False
        model = TinyCNN(num_classes, in_chans, width=4, depth=2)
        model.pretrained_cfg = {"mean": (0.2, 0.3, 0.4), "std": (0.1, 0.2, 0.3), "input_size": (3, 224, 224)}
        return model

    fake.create_model = create_model
    monkeypatch.setitem(sys.modules, "timm", fake)
    weights = tmp_path / "timm.pt"
    torch.save(create_model("tinynet", False, 4, 3).state_dict(), weights)
    config = tiny_config(
        tiny_data,
        tmp_path / "run",
        dataset={"channels": 3},
        model={"backbone": "timm:tinynet", "options": {}, "pretrained_path": str(weights)},
    )
    result = train(config)
    model, meta = load_trained_model(result["best_checkpoint"])
    assert meta["normalize"] == {"name": "timm", "mean": [0.2, 0.3, 0.4], "std": [0.1, 0.2, 0.3]}
    assert model.normalize.std == [0.1, 0.2, 0.3]
    one = tiny_config(tiny_data, tmp_path / "gray", model=config["model"])  # one channel: their averages
    gray = load_trained_model(train(one)["best_checkpoint"])[1]["normalize"]
    assert gray["name"] == "timm" and gray["mean"] == pytest.approx([0.3]) and gray["std"] == pytest.approx([0.2])


def test_the_moving_average_is_validated_saved_restored_and_used_for_prediction(
    tiny_config, tiny_data, tmp_path, monkeypatch
):
    sections = {
        "train": {"epochs": 2, "checkpoint_every_n_steps": 3, "ema_decay": 0.9},
        "dataset": {"augment": "light"},
    }
    straight = train(tiny_config(tiny_data, tmp_path / "straight", **sections))
    last = torch.load(tmp_path / "straight" / "checkpoints" / "last.ckpt", weights_only=True)
    averaged = {k[len("ema.module.") :]: v for k, v in last["state_dict"].items() if k.startswith("ema.module.")}
    trained = {k[len("model.") :]: v for k, v in last["state_dict"].items() if k.startswith("model.")}
    assert averaged.keys() == trained.keys() and any(not torch.equal(averaged[k], trained[k]) for k in trained)
    model, meta = load_trained_model(tmp_path / "straight" / "checkpoints" / "last.ckpt")
    assert all(torch.equal(model.backbone.state_dict()[k], averaged[k]) for k in averaged)
    raw, _ = load_trained_model(tmp_path / "straight" / "checkpoints" / "last.ckpt", average=False)
    assert all(torch.equal(raw.backbone.state_dict()[k], trained[k]) for k in trained)

    from ral.engine.module import compute_metrics

    val = load_table(tiny_data["val"])
    probs = predict_probabilities(model, val, task="multilabel", image_size=16)
    assert compute_metrics("multilabel", val.labels, probs, meta["groups"])["mAP"] == pytest.approx(
        straight["history"][-1]["val_mAP"]
    )  # validation scored the averaged weights

    original = ClassifierModule.training_step

    def crash(self, batch, batch_idx):
        if self.global_step == 6:  # after the second epoch's mid-epoch checkpoint
            raise RuntimeError("simulated crash")
        return original(self, batch, batch_idx)

    config = tiny_config(tiny_data, tmp_path / "resumed", **sections)
    monkeypatch.setattr(ClassifierModule, "training_step", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(config)
    monkeypatch.undo()
    train(config, resume=True)
    resumed = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)
    for key, value in last["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key  # the average too, bit for bit


def test_switching_the_moving_average_on_or_off_when_resuming(tiny_config, tiny_data, tmp_path):
    config = tiny_config(tiny_data, tmp_path / "run", train={"epochs": 1})
    train(config)
    config["train"].update(epochs=2, ema_decay=0.5)
    with pytest.warns(UserWarning, match="differs from the stored one"):
        train(config, resume=True)  # the average starts from the resumed weights
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert any(k.startswith("ema.module.") for k in state)
    config["train"].update(epochs=3, ema_decay=None)
    with pytest.warns(UserWarning, match="differs from the stored one"):
        train(config, resume=True)
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert not any(k.startswith("ema.") for k in state)


def test_training_logs_its_step_loss_without_a_sync_and_feeds_normalised_channels_last_inputs(
    tiny_config, tiny_data, tmp_path, monkeypatch
):
    calls, inputs = [], []
    original_log = ClassifierModule.log

    def log(self, name, value, *args, **kwargs):
        calls.append((name, kwargs.get("sync_dist")))
        return original_log(self, name, value, *args, **kwargs)

    monkeypatch.setattr(ClassifierModule, "log", log)
    original_forward = TinyCNN.forward

    def forward(self, x):
        inputs.append((x.dtype, x.is_contiguous(memory_format=torch.channels_last), float(x.min()), float(x.max())))
        return original_forward(self, x)

    monkeypatch.setattr(TinyCNN, "forward", forward)
    train(tiny_config(tiny_data, tmp_path / "run", train={"channels_last": True}))
    assert ("train_loss", False) in calls and ("train_loss", True) not in calls
    assert all(dtype == torch.float32 and last for dtype, last, _, _ in inputs)
    assert all(low >= -1.0 - 1e-6 and high <= 1.0 + 1e-6 for _, _, low, high in inputs)  # "unit" normalisation


def test_compile_and_loader_settings_reach_the_module_and_the_loaders(tiny_config, tiny_data, tmp_path, monkeypatch):
    from ral.engine import config_from_dict
    from ral.engine.build import prepare_run
    from ral.engine.datamodule import TableDataModule, default_num_workers

    config = config_from_dict(tiny_config(tiny_data, tmp_path / "run", train={"compile": True}))
    run = prepare_run(config)
    module = ClassifierModule(run.model, run.loss, task="multilabel", config=config, meta=run.meta)
    assert module.model._compiled_call_impl is not None  # compiled in place: the state-dict names stay
    assert all(key.startswith(("model.", "loss_fn.")) for key in module.state_dict())

    data = TableDataModule(run.train_images, None, batch_size=8, eval_batch_size=8, num_workers=None, seed=0)
    settings = data.loader_settings()
    assert settings["num_workers"] == default_num_workers(1) and settings["pin_memory"] is False
    assert settings["persistent_workers"] is False  # asked for only with workers
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert default_num_workers(1) == 8 and default_num_workers(4) == 3 and default_num_workers(32) == 1


def test_persistent_workers_get_each_epochs_keys(tiny_data):
    from ral.engine.datamodule import IndexedDataset, make_loader

    data = IndexedDataset(ImageDataset(load_table(tiny_data["train"]), image_size=16, augment="light", seed=1))

    def epochs(loader, numbers):
        out = []
        for epoch in numbers:
            loader.sampler.set_epoch(epoch)
            out.append([images for _, images, _ in loader])
        return out

    reference = epochs(make_loader(data, batch_size=16, shuffle=True, seed=1, num_workers=0), [0, 1])
    persistent = make_loader(data, batch_size=16, shuffle=True, seed=1, num_workers=2, persistent_workers=True)
    for a, b in zip(reference, epochs(persistent, [0, 1])):
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    resumed = make_loader(data, batch_size=16, shuffle=True, seed=1, num_workers=2, persistent_workers=True)
    epochs(resumed, [0])
    resumed.load_state_dict({"epoch": 1, "samples": 32})  # a restored loader keeps its workers
    rest = [images for _, images, _ in resumed]
    assert all(torch.equal(x, y) for x, y in zip(rest, reference[1][2:]))


def test_a_cluster_run_needs_its_cache_built_beforehand_with_ral_data_cache(tiny_config, tiny_data, tmp_path, capsys):
    config = tiny_config(
        tiny_data, tmp_path / "run", dataset={"cache_dir": str(tmp_path / "cache"), "cache_must_exist": True}
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    assert cli.main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "does not exist and dataset.cache_must_exist is set; build it first with `ral data cache" in err
    assert not (tmp_path / "run" / "checkpoints").exists()
    assert cli.main(["data", "cache", "--config", str(path)]) == 0
    lines = [line.removeprefix("image cache ").split(": ", 1) for line in capsys.readouterr().out.splitlines()]
    built = [path for path, action in lines if action == "built"]
    assert len(built) == 2 and all(Path(p).is_file() for p in built)  # train and val
    assert cli.main(["train", "--config", str(path)]) == 0
    assert cli.main(["data", "cache", "--config", str(path), "dataset.cache_dir=null"]) == 2
    assert "dataset.cache_must_exist must be false" in capsys.readouterr().err


def test_predict_with_autocast_on_the_cpu_stays_close_to_float32(trained_run, tiny_data):
    model, meta = load_trained_model(trained_run["best_checkpoint"])
    table = load_table(tiny_data["test"])
    exact = predict_probabilities(model, table, task="multilabel", image_size=16)
    autocast = predict_probabilities(model, table, task="multilabel", image_size=16, amp=True)
    assert autocast.dtype == np.float64 and np.abs(autocast - exact).max() < 0.02


@pytest.mark.slow
def test_a_compiled_model_trains_and_its_checkpoint_loads_into_a_plain_one(tiny_config, tiny_data, tmp_path):
    plain = train(tiny_config(tiny_data, tmp_path / "plain"))
    compiled = train(tiny_config(tiny_data, tmp_path / "compiled", train={"compile": True}))
    model, _ = load_trained_model(compiled["best_checkpoint"])  # the state-dict names of the plain model
    reference, _ = load_trained_model(plain["best_checkpoint"])
    assert model.backbone.state_dict().keys() == reference.backbone.state_dict().keys()
    assert compiled["val_metrics"]["mAP"] == pytest.approx(plain["val_metrics"]["mAP"], abs=0.05)
