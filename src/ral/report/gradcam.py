"""Grad-CAM maps (MONAI's :class:`monai.visualize.GradCAM`) with the target layer found from the network.

The target layer is not named per backbone: :func:`target_layers` runs one forward pass with a
hook on every module and keeps the modules whose output is a 4-D feature map with more than one
position (not the 1x1 map of a global pooling) and is not changed in place later. The last such
module in execution order whose map is at least :data:`MIN_SIZE` positions wide is the one
closest to the classifier: ``layer4`` of a ResNet and ``class_layers.relu`` of a MONAI DenseNet
at 224 px (MONAI turns that ReLU's ``inplace`` off), never ``features.norm5``, whose output the
in-place ReLU after it modifies (a full backward hook on it fails with "a view ... is being
modified inplace"); for the tiny CNN at 64 px, its third block (8 x 8). If MONAI's GradCAM
still fails on a layer, the next candidate is tried.

MONAI registers its hooks for good and turns ``inplace`` off on the target module, so the maps
are computed on a copy of the model.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
from torch import nn

#: The smallest feature map side preferred: 7 is the last map of a ResNet / DenseNet at 224 px; a
#: coarser one (4 x 4 of the tiny CNN at 64 px) spreads one value over a quarter of the image, and
#: right before global pooling Grad-CAM equals CAM, which is empty wherever a rare class's logit is
#: negative everywhere (as a multi-label model's usually is).
MIN_SIZE = 7


def target_layers(model: nn.Module, example: torch.Tensor, *, min_size: int = MIN_SIZE) -> list[str]:
    """Names of the modules fit for Grad-CAM, best first (see the module doc): the maps of at least
    ``min_size`` x ``min_size`` positions closest to the output, then the coarser ones.

    Args:
        model: the network (any module mapping ``example`` to logits).
        example: one input batch, e.g. (1, c, S, S).
        min_size: the smallest map side preferred.

    Raises:
        ValueError: no module produces a 4-D feature map larger than 1x1.
    """
    seen: list[tuple[str, torch.Tensor, int]] = []

    def hook(name: str):
        def record(_module: nn.Module, _inputs: tuple, output: object) -> None:
            if isinstance(output, torch.Tensor) and output.ndim == 4 and output.shape[-1] * output.shape[-2] > 1:
                seen.append((name, output, output._version))

        return record

    handles = [module.register_forward_hook(hook(name)) for name, module in model.named_modules() if name]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    # A later in-place operation (an in-place ReLU after a BatchNorm) bumps the tensor's version.
    kept = [(name, min(output.shape[-2:])) for name, output, version in reversed(seen) if output._version == version]
    names = [name for name, side in kept if side >= min_size] + [name for name, side in kept if side < min_size]
    if not names:
        raise ValueError(f"{type(model).__name__} has no module producing a 4-D feature map larger than 1x1")
    return names


class GradCam:
    """Grad-CAM maps of a model's classes, on the last layer where MONAI's GradCAM runs.

    Args:
        model: maps (N, c, S, S) inputs to (N, C) logits (e.g. a
            :class:`ral.engine.inference.PixelClassifier`, which takes uint8 pixels). Copied.
        example: one input batch, to find the layers and try them.

    Attributes:
        layer: the target layer's name.
    """

    def __init__(self, model: nn.Module, example: torch.Tensor) -> None:
        from monai.visualize import GradCAM

        errors = []
        for name in target_layers(model, example):
            cam = GradCAM(nn_module=copy.deepcopy(model), target_layers=name, postprocessing=lambda x: x)
            self.cam = cam
            try:
                self(example, 0)
            except RuntimeError as exc:  # e.g. a hook on a tensor that is modified in place later
                errors.append(f"{name}: {str(exc).splitlines()[0]}")
                continue
            self.layer = name
            return
        raise ValueError(f"Grad-CAM fails on every candidate layer: {'; '.join(errors)}")

    def __call__(self, inputs: torch.Tensor, class_index: int) -> np.ndarray:
        """(N, S, S) float maps in [0, 1] (each divided by its maximum; all 0 where the class's
        score has no positive gradient-weighted activation) for class ``class_index``."""
        with warnings.catch_warnings():  # the inputs (pixels) need no gradient: the hook fires on the outputs
            warnings.filterwarnings("ignore", message="Full backward hook is firing when gradients are computed")
            maps = self.cam(x=inputs, class_idx=int(class_index)).detach().float().cpu().numpy()[:, 0]
        peak = maps.reshape(len(maps), -1).max(axis=1)
        return maps / np.where(peak > 0, peak, 1.0)[:, None, None]


def overlay(image: np.ndarray, heat: np.ndarray, *, alpha: float = 0.45, colormap: str = "jet") -> np.ndarray:
    """RGB uint8 (H, W, 3): the image in grey with the map ``heat`` (H, W, values in [0, 1]) in colour.

    Args:
        image: (H, W) or (c, H, W) uint8 pixels (colour images are shown in grey under the map).
        heat: the Grad-CAM map at the image's size.
        alpha: the map's opacity where it is 1 (it fades out towards 0).
    """
    import matplotlib

    pixels = np.asarray(image, dtype=np.float64)
    grey = pixels.mean(axis=0) if pixels.ndim == 3 else pixels
    base = np.repeat(grey[..., None], 3, axis=2) / 255.0
    colour = matplotlib.colormaps[colormap](np.clip(heat, 0.0, 1.0))[..., :3]
    weight = alpha * np.clip(heat, 0.0, 1.0)[..., None]
    return np.round(255.0 * ((1.0 - weight) * base + weight * colour)).astype(np.uint8)
