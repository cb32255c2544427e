"""timm backbones: local weights through timm's own checkpoint filter, with ral's load report."""

from __future__ import annotations

import sys
import types

import pytest
import torch
from torch import nn

from ral.models import load_pretrained


def _fake_timm_module(monkeypatch) -> type[nn.Module]:
    """A module named like timm's with a model class and a checkpoint filter renaming a released file's keys."""
    module = types.ModuleType("timm.models.fake")

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(1, 4, 3)
            self.head = nn.Linear(4, 2)

    def checkpoint_filter_fn(state, model):
        return {key.replace("downsample_layers.0.", "stem."): value for key, value in state.items()}

    Net.__module__ = module.__name__
    module.Net, module.checkpoint_filter_fn = Net, checkpoint_filter_fn
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return Net


def test_a_timm_models_released_weights_are_renamed_by_its_filter_and_reported(monkeypatch, tmp_path):
    Net = _fake_timm_module(monkeypatch)
    source = Net()
    released = {"downsample_layers.0." + k.removeprefix("stem."): v for k, v in source.state_dict().items()}
    released |= {"head.weight": torch.zeros(1000, 4), "head.bias": torch.zeros(1000)}  # ImageNet's classifier
    torch.save({"model": released}, tmp_path / "convnext_release.pth")
    model = Net()
    report = load_pretrained(model, tmp_path / "convnext_release.pth", min_match=0.5)
    assert report["loaded"] == ["stem.weight", "stem.bias"] and report["skipped"] == ["head.weight", "head.bias"]
    torch.testing.assert_close(model.stem.weight, source.stem.weight)


def test_other_models_keep_the_files_names(tmp_path):
    model = nn.Sequential(nn.Linear(2, 2))
    torch.save({"downsample_layers.0.weight": torch.ones(2, 2)}, tmp_path / "w.pth")
    with pytest.raises(ValueError, match="no parameter of"):
        load_pretrained(model, tmp_path / "w.pth")
