"""Grad-CAM: the target layer found from the network (tiny CNN, MONAI DenseNet / ResNet), maps and overlays."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ral.models import build_model
from ral.report.gradcam import GradCam, overlay, target_layers


def test_tiny_cnn_layer_is_its_last_map_at_least_seven_pixels_wide() -> None:
    torch.manual_seed(0)
    model = build_model("tiny", 3, in_channels=1, width=4, depth=3).eval()
    example = torch.rand(1, 1, 16, 16)
    layers = target_layers(model, example)
    # depth 3 at 16 px: maps of 8, 4, 2 pixels; the 8 x 8 ReLU output first (BatchNorm's is changed in
    # place by it), the coarser maps after; the pooled 1x1 map and the 2-D logits are no candidates
    assert layers[:2] == ["features.2", "features.0"]
    assert layers.index("features") > layers.index("features.0") and "pool" not in layers
    assert "features.1" not in layers
    cam = GradCam(model, example)
    assert cam.layer == "features.2"
    maps = cam(torch.rand(2, 1, 16, 16), 1)
    assert maps.shape == (2, 16, 16) and maps.min() >= 0.0 and maps.max() <= 1.0
    assert all(not m._forward_hooks for m in model.modules())  # the model itself carries no hooks


def test_a_layer_whose_output_is_changed_in_place_later_is_skipped() -> None:
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
            self.norm = torch.nn.BatchNorm2d(4)
            self.act = torch.nn.ReLU(inplace=True)
            self.head = torch.nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.act(self.norm(self.conv(x))).mean(dim=(2, 3)))

    layers = target_layers(Net().eval(), torch.rand(1, 1, 8, 8))
    assert layers == ["act", "conv"]  # norm's output is modified by the in-place ReLU after it


@pytest.mark.slow
@pytest.mark.parametrize(
    ("backbone", "expected", "not_chosen"),
    [("densenet121", "class_layers.relu", "features.norm5"), ("resnet18", "layer4", "avgpool")],
)
def test_monai_backbones(backbone: str, expected: str, not_chosen: str) -> None:
    model = build_model(backbone, 3, in_channels=1).eval()
    example = torch.rand(1, 1, 224, 224)  # 7 x 7 before the pooling
    layers = target_layers(model, example)
    assert not_chosen not in layers
    cam = GradCam(model, example)
    assert cam.layer == expected
    if backbone == "densenet121":
        assert "features.denseblock4" in layers  # the layer the issue found to work
    assert cam(example, 2).shape == (1, 224, 224)


def test_overlay_blends_the_map_over_the_grey_image() -> None:
    image = np.full((1, 4, 4), 100, dtype=np.uint8)
    heat = np.zeros((4, 4))
    heat[0, 0] = 1.0
    rgb = overlay(image, heat, alpha=0.5)
    assert rgb.shape == (4, 4, 3) and rgb.dtype == np.uint8
    assert (rgb[1:, 1:] == 100).all()  # no heat: the grey pixel unchanged
    assert not (rgb[0, 0] == 100).all()
