"""Backbone factory: a tiny CPU-friendly CNN, MONAI networks, and timm models when installed.

Every model maps a batch of images (N, in_channels, H, W) to logits (N, num_classes).
Pretrained weights are only ever read from a local file (safetensors, or a state dict loaded
with ``torch.load(weights_only=True)``); nothing is downloaded.

    >>> model = build_model("tiny", num_classes=26)
    >>> model(torch.zeros(2, 1, 64, 64)).shape
    torch.Size([2, 26])
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

TIMM_PREFIX = "timm:"


class TinyCNN(nn.Module):
    """A small all-convolutional CNN for demos and tests (about 0.1 M parameters at width 16).

    ``depth`` blocks of conv3x3 (stride 2) -> BatchNorm -> ReLU, channels doubling per block
    from ``width`` (strided convolutions are much cheaper on a CPU than full-resolution ones
    followed by pooling; a 64x64 image ends as a 4x4 map after 4 blocks); then global average
    pooling, dropout and a linear classifier.

    Args:
        num_classes: C, number of outputs.
        in_channels: channels of the input images (1 for grayscale).
        width: channels of the first block (> 0).
        depth: number of conv blocks (>= 1).
        dropout: dropout probability before the classifier, in [0, 1).

    Shapes: input (N, in_channels, H, W) -> logits (N, C).
    """

    def __init__(
        self, num_classes: int, in_channels: int = 1, *, width: int = 16, depth: int = 4, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if not isinstance(width, int) or width <= 0:
            raise ValueError(f"model option width must be a positive integer, got {width!r}")
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"model option depth must be an integer >= 1, got {depth!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"model option dropout must be in [0, 1), got {dropout!r}")
        layers: list[nn.Module] = []
        channels = in_channels
        for block in range(depth):
            out = width * 2**block
            layers += [
                nn.Conv2d(channels, out, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
            ]
            channels = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(float(dropout))
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """(N, in_channels, H, W) -> (N, C) logits."""
        features = self.pool(self.features(x)).flatten(1)
        return self.classifier(self.dropout(features))


def _tiny(num_classes: int, in_channels: int, **options: Any) -> nn.Module:
    return TinyCNN(num_classes, in_channels, **options)


def _monai_densenet(arch: str) -> Callable[..., nn.Module]:
    def build(num_classes: int, in_channels: int, **options: Any) -> nn.Module:
        from monai.networks import nets

        cls = {"densenet121": nets.DenseNet121, "densenet169": nets.DenseNet169, "densenet201": nets.DenseNet201}[arch]
        return cls(spatial_dims=2, in_channels=in_channels, out_channels=num_classes, pretrained=False, **options)

    return build


def _monai_resnet(arch: str) -> Callable[..., nn.Module]:
    def build(num_classes: int, in_channels: int, **options: Any) -> nn.Module:
        from monai.networks.nets import resnet

        # torchvision's 2-D layout (7x7 stride-2 stem) unless the user overrides it; MONAI's
        # default stride 1 is meant for 3-D volumes and quadruples the cost on 2-D images.
        options.setdefault("conv1_t_stride", 2)
        factory = getattr(resnet, arch)
        return factory(
            pretrained=False, spatial_dims=2, n_input_channels=in_channels, num_classes=num_classes, **options
        )

    return build


def _monai_efficientnet(arch: str) -> Callable[..., nn.Module]:
    def build(num_classes: int, in_channels: int, **options: Any) -> nn.Module:
        from monai.networks.nets import EfficientNetBN

        return EfficientNetBN(
            arch, pretrained=False, spatial_dims=2, in_channels=in_channels, num_classes=num_classes, **options
        )

    return build


BACKBONES: dict[str, Callable[..., nn.Module]] = {
    "tiny": _tiny,
    **{name: _monai_densenet(name) for name in ("densenet121", "densenet169", "densenet201")},
    **{name: _monai_resnet(name) for name in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")},
    **{f"efficientnet-b{i}": _monai_efficientnet(f"efficientnet-b{i}") for i in range(8)},
}
"""Built-in backbone names -> builder(num_classes, in_channels, **options). timm models are
named ``"timm:<model name>"`` (e.g. ``"timm:convnext_tiny"``) and need timm installed."""


def timm_available() -> bool:
    """Whether the optional timm package is importable."""
    return importlib.util.find_spec("timm") is not None


def check_backbone(name: str) -> str:
    """Return ``name`` if :func:`build_model` knows it; raise ``ValueError`` otherwise."""
    if not isinstance(name, str):
        raise ValueError(f"model.backbone must be a string, got {name!r}")
    if name.startswith(TIMM_PREFIX):
        if not name[len(TIMM_PREFIX) :]:
            raise ValueError(f"model.backbone {name!r} needs a timm model name after 'timm:'")
        if not timm_available():
            raise ValueError(
                f"model.backbone {name!r} needs the optional package timm, which is not installed "
                "(pip install 'ral[timm]')"
            )
        return name
    if name not in BACKBONES:
        raise ValueError(f"unknown model.backbone {name!r}; choose one of {sorted(BACKBONES)} or 'timm:<name>'")
    return name


def build_model(
    name: str = "tiny",
    num_classes: int = 26,
    *,
    in_channels: int = 1,
    pretrained_path: str | os.PathLike | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a classifier mapping (N, in_channels, H, W) images to (N, num_classes) logits.

    Args:
        name: a key of :data:`BACKBONES` ("tiny", "densenet121", "resnet50", "efficientnet-b0",
            ...) or ``"timm:<model>"`` (requires timm; built with ``pretrained=False``).
        num_classes: C, number of outputs (>= 1).
        in_channels: image channels (1 for the grayscale images of ``ral.data``).
        pretrained_path: optional local weights file (``.safetensors``, or a ``torch.save``d state
            dict / Lightning checkpoint loaded with ``weights_only=True``), see :func:`load_pretrained`
            (which refuses weights that fill less than :data:`DEFAULT_MIN_MATCH` of the model).
        **kwargs: backbone options (e.g. ``width``/``depth``/``dropout`` for "tiny",
            ``dropout_prob`` for DenseNets).

    Raises:
        ValueError: unknown backbone, bad ``num_classes`` / ``in_channels`` / options, or
            weights that match too little of the model.
        FileNotFoundError: ``pretrained_path`` does not exist.
    """
    check_backbone(name)
    for arg, value in (("num_classes", num_classes), ("in_channels", in_channels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{arg} must be a positive integer, got {value!r}")
    try:
        if name.startswith(TIMM_PREFIX):
            import timm

            model = timm.create_model(
                name[len(TIMM_PREFIX) :], pretrained=False, num_classes=num_classes, in_chans=in_channels, **kwargs
            )
        else:
            model = BACKBONES[name](num_classes, in_channels, **dict(kwargs))
    except TypeError as exc:  # unknown keyword option
        raise ValueError(f"bad model.options {kwargs!r} for backbone {name!r}: {exc}") from None
    except RuntimeError as exc:  # e.g. timm: unknown model name
        raise ValueError(f"cannot build model.backbone {name!r}: {exc}") from None
    if pretrained_path is not None:
        load_pretrained(model, pretrained_path)
    return model


# torchvision DenseNet keys ("denselayer1.norm1.weight", older "norm.1") -> MONAI ("denselayer1.layers.norm1.weight").
_TORCHVISION_DENSELAYER = re.compile(
    r"^(.*denselayer\d+)\.(norm|relu|conv)\.?([12])\.(weight|bias|running_mean|running_var|num_batches_tracked)$"
)


def read_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read a state dict of tensors from a local file, never unpickling arbitrary objects.

    Accepts ``.safetensors`` files and ``torch.save`` files loaded with ``weights_only=True``:
    a plain state dict, a dict with a ``"state_dict"`` (Lightning checkpoint) or ``"model"``
    entry. Prefixes ``"model."`` (Lightning module attribute) and ``"module."`` (DataParallel)
    are removed.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file holds no tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            raw: Any = load_file(str(path), device="cpu")
        except Exception as exc:  # SafetensorError (truncated, bad header) and friends
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise ValueError(f"cannot read pretrained weights file {path} as safetensors: {reason}") from None
    else:
        from ral.engine.checkpoint import read_error

        try:
            raw = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # UnpicklingError and friends: refuse, do not fall back to full pickle
            raise ValueError(read_error(path, exc, "pretrained weights")) from None
    for key in ("state_dict", "model"):
        if isinstance(raw, Mapping) and isinstance(raw.get(key), Mapping):
            raw = raw[key]
            break
    if not isinstance(raw, Mapping):
        raise ValueError(f"{path} does not hold a state dict (got {type(raw).__name__})")
    state = {}
    for key, value in raw.items():
        if not isinstance(value, Tensor):
            continue
        for prefix in ("model.", "module."):
            if key.startswith(prefix):
                key = key[len(prefix) :]
        state[_TORCHVISION_DENSELAYER.sub(r"\1.layers.\2\3.\4", key)] = value
    if not state:
        raise ValueError(f"{path} holds no tensors")
    return state


def _adapt_input_channels(weight: Tensor, channels: int) -> Tensor | None:
    """Convert a first-conv weight (O, c, k, k) to ``channels`` input channels, or None.

    c -> 1: sum over the input channels (a gray image is R = G = B, so the response is kept);
    1 -> c: repeat and divide by c (same argument in reverse).
    """
    if weight.ndim < 3:
        return None
    have = weight.shape[1]
    if channels == 1:
        return weight.sum(dim=1, keepdim=True)
    if have == 1:
        return weight.repeat(1, channels, *([1] * (weight.ndim - 2))) / channels
    return None


def _timm_converted(state: dict[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """``state`` renamed by a timm model's own ``checkpoint_filter_fn`` (ConvNeXt's: Facebook's released
    files -> timm's names), as ``timm.create_model(pretrained_cfg_overlay=dict(file=...))`` applies it;
    unchanged for other models, or when the filter cannot read the file (the load report then shows it)."""
    module = type(model).__module__
    convert = getattr(sys.modules.get(module), "checkpoint_filter_fn", None)
    if not module.startswith("timm.") or convert is None:
        return state
    try:
        converted = convert(dict(state), model)
    except (KeyError, RuntimeError, ValueError, TypeError):
        return state
    return {key: value for key, value in converted.items() if isinstance(value, Tensor)}


#: The share of a model's values pretrained weights must fill (:func:`load_pretrained`), by default.
DEFAULT_MIN_MATCH = 0.9


def load_pretrained(
    model: nn.Module, path: str | os.PathLike, *, min_match: float = DEFAULT_MIN_MATCH
) -> dict[str, Any]:
    """Copy matching weights from a local file into ``model`` (in place).

    Parameters with the same name and shape are copied (for a timm model, after its own checkpoint
    filter renamed the file's tensors, e.g. an original ConvNeXt release). A weight that differs only in its
    input-channel dimension (a 3-channel ImageNet stem for a 1-channel model) is adapted by
    summing / repeating over channels. Others (typically the classifier of a model trained for
    another number of classes) are skipped and keep their initialisation.

    Args:
        min_match: the share of the model's values (elements of its floating-point weights and
            buffers) that must be loaded or adapted; a file for another architecture fills little.

    Returns:
        ``{"path", "loaded": [...], "adapted": [...], "skipped": [...], "missing": [...]}``
        (tensor names of the model; ``skipped``: in the file with another shape; ``missing``: not
        in the file) and ``"matched"``: the share of the model's values filled.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: no parameter of the file matches the model, or less than ``min_match`` of it.
    """
    state = _timm_converted(read_state_dict(path), model)
    target = model.state_dict()
    merged: dict[str, Tensor] = {}
    report: dict[str, Any] = {"path": str(path), "loaded": [], "adapted": [], "skipped": [], "missing": []}
    for key, value in target.items():
        source = state.get(key)
        if source is None:
            report["missing"].append(key)
        elif source.shape == value.shape:
            merged[key] = source.to(value.dtype)
            report["loaded"].append(key)
        else:
            same_rest = (
                source.ndim == value.ndim and source.shape[0] == value.shape[0] and source.shape[2:] == value.shape[2:]
            )
            adapted = _adapt_input_channels(source, value.shape[1]) if same_rest else None
            if adapted is not None and adapted.shape == value.shape:
                merged[key] = adapted.to(value.dtype)
                report["adapted"].append(key)
            else:
                report["skipped"].append(key)
    if not merged:
        raise ValueError(
            f"no parameter of {path} matches the model (file keys start like {sorted(state)[:3]}, "
            f"model keys like {sorted(target)[:3]})"
        )
    values = {key: value.numel() for key, value in target.items() if value.is_floating_point()}
    report["matched"] = sum(values.get(key, 0) for key in merged) / max(1, sum(values.values()))
    if report["matched"] < min_match:
        unmatched = report["missing"][:1] + report["skipped"][:1]
        raise ValueError(
            f"pretrained weights {path} fill only {report['matched']:.1%} of the model's values, less than the "
            f"{min_match:.0%} required (model.pretrained_min_match): {load_summary(report)}; first unmatched: "
            f"{unmatched} (weights of another architecture or another naming?)"
        )
    model.load_state_dict(merged, strict=False)
    return report


def load_summary(report: dict[str, Any]) -> str:
    """One line describing a :func:`load_pretrained` report."""
    counts = ", ".join(f"{len(report[k])} {k}" for k in ("loaded", "adapted", "skipped", "missing"))
    return f"{counts} tensors; {report['matched']:.1%} of the model's values from {report['path']}"


def pretrained_normalization(model: nn.Module) -> tuple[list[float], list[float]] | None:
    """The ``(mean, std)`` a timm model's pretrained weights expect (its ``pretrained_cfg``), or None.

    Only timm models carry one; for the others the caller decides (ImageNet statistics).
    """
    config = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None)
    if not isinstance(config, Mapping) or "mean" not in config or "std" not in config:
        return None
    return [float(v) for v in config["mean"]], [float(v) for v in config["std"]]
