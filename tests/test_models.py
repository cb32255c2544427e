"""Backbone factory: shapes, grayscale input, local pretrained weights, clear errors."""

from __future__ import annotations

import re

import pytest
import torch
from safetensors.torch import save_file

from ral.models import (
    BACKBONES,
    TinyCNN,
    build_model,
    check_backbone,
    load_pretrained,
    load_summary,
    pretrained_normalization,
    read_state_dict,
    timm_available,
)


class NotATensor:
    """Pickled into a file to check that weights are never unpickled."""

    def __init__(self) -> None:
        self.value = 1


def test_tiny_maps_grayscale_images_to_logits():
    model = build_model("tiny", 26)
    assert isinstance(model, TinyCNN)
    assert model(torch.zeros(3, 1, 64, 64)).shape == (3, 26)
    assert model(torch.zeros(2, 1, 16, 16)).shape == (2, 26)
    assert sum(p.numel() for p in model.parameters()) < 200_000


@pytest.mark.parametrize("name", ["densenet121", "resnet18", "efficientnet-b0"])
def test_monai_backbones_take_one_channel(name):
    torch.manual_seed(0)
    model = build_model(name, 5).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 32, 32)).shape == (2, 5)


def test_every_registered_name_is_checked():
    for name in BACKBONES:
        assert check_backbone(name) == name
    with pytest.raises(ValueError, match="unknown model.backbone 'vgg'"):
        build_model("vgg", 3)


@pytest.mark.skipif(timm_available(), reason="timm is installed here")
def test_timm_backbone_without_timm_says_so():
    with pytest.raises(ValueError, match="timm"):
        build_model("timm:convnext_tiny", 3)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"width": 0}, "width"), ({"depth": 0}, "depth"), ({"dropout": 1.0}, "dropout"), ({"colour": 3}, "colour")],
)
def test_bad_options_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_model("tiny", 3, **kwargs)


@pytest.mark.parametrize("num_classes", [0, -1, 2.5, True])
def test_bad_num_classes(num_classes):
    with pytest.raises(ValueError, match="num_classes"):
        build_model("tiny", num_classes)


def test_rgb_weights_are_adapted_to_grayscale(tmp_path):
    torch.manual_seed(0)
    rgb = build_model("resnet18", 4, in_channels=3).eval()
    path = tmp_path / "rgb.pt"
    torch.save(rgb.state_dict(), path)
    gray = build_model("resnet18", 4, in_channels=1, pretrained_path=path).eval()
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():  # a gray image is R = G = B: summing the stem's channels keeps the output
        torch.testing.assert_close(gray(x), rgb(x.repeat(1, 3, 1, 1)), rtol=1e-4, atol=1e-5)
    report = load_pretrained(build_model("resnet18", 7), path)
    assert report["adapted"] == ["conv1.weight"]
    assert set(report["skipped"]) == {"fc.weight", "fc.bias"}  # another number of classes: keep init


def test_safetensors_and_lightning_checkpoints(tmp_path):
    torch.manual_seed(0)
    source = build_model("tiny", 3)
    save_file(source.state_dict(), str(tmp_path / "w.safetensors"))
    torch.save(
        {"state_dict": {f"model.{k}": v for k, v in source.state_dict().items()}, "epoch": 3},
        tmp_path / "lightning.ckpt",
    )
    for name in ("w.safetensors", "lightning.ckpt"):
        loaded = build_model("tiny", 3, pretrained_path=tmp_path / name)
        for key, value in source.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value), (name, key)


def test_torchvision_densenet_keys_are_renamed(tmp_path):
    torch.manual_seed(0)
    source = build_model("densenet121", 3)
    to_torchvision = re.compile(r"^(.*denselayer\d+)\.layers\.(norm|relu|conv)([12])\.(.*)$")
    state = {to_torchvision.sub(r"\1.\2\3.\4", k): v for k, v in source.state_dict().items()}
    assert "features.denseblock1.denselayer1.norm1.weight" in state
    torch.save(state, tmp_path / "tv.pth")
    loaded = build_model("densenet121", 3, pretrained_path=tmp_path / "tv.pth")
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"conv.weight": torch.zeros(1), "payload": NotATensor()}, path)
    with pytest.raises(ValueError, match=r"holds pickled objects that are not weights; refused \(it could run code\)"):
        read_state_dict(path)


def test_missing_or_unrelated_weights(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        build_model("tiny", 3, pretrained_path=tmp_path / "nope.pt")
    torch.save({"something.else": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="no parameter"):
        build_model("tiny", 3, pretrained_path=tmp_path / "other.pt")


def test_a_load_reports_what_it_matched_and_refuses_too_little(tmp_path):
    torch.manual_seed(0)
    source = build_model("tiny", 3, width=8)
    torch.save(source.state_dict(), tmp_path / "w.pt")
    report = load_pretrained(build_model("tiny", 5, width=8), tmp_path / "w.pt")
    assert report["skipped"] == ["classifier.weight", "classifier.bias"] and not report["missing"]
    classifier = sum(p.numel() for n, p in build_model("tiny", 5, width=8).named_parameters() if "classifier" in n)
    values = sum(t.numel() for t in build_model("tiny", 5, width=8).state_dict().values() if t.is_floating_point())
    assert report["matched"] == pytest.approx(1 - classifier / values)
    assert load_summary(report).startswith("24 loaded, 0 adapted, 2 skipped, 0 missing tensors; 98.7% of the model")
    stem_only = {"features.0.weight": source.state_dict()["features.0.weight"]}
    torch.save(stem_only, tmp_path / "stem.pt")
    with pytest.raises(
        ValueError, match=r"fill only 0\.\d% .* less than the 90% required .*first unmatched: \['features.1"
    ):
        load_pretrained(build_model("tiny", 3, width=8), tmp_path / "stem.pt")
    assert load_pretrained(build_model("tiny", 3, width=8), tmp_path / "stem.pt", min_match=0.0)["loaded"] == [
        "features.0.weight"
    ]


def test_timm_pretrained_statistics_are_read_from_the_models_config():
    model = build_model("tiny", 3)
    assert pretrained_normalization(model) is None
    model.pretrained_cfg = {"mean": (0.5, 0.4, 0.3), "std": (0.2, 0.2, 0.2)}
    assert pretrained_normalization(model) == ([0.5, 0.4, 0.3], [0.2, 0.2, 0.2])
