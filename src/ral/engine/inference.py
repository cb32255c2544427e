"""Rebuild a trained model from its checkpoint and compute probabilities for a label table."""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ral.data.images import MAX_IMAGE_PIXELS
from ral.data.table import LabelTable
from ral.engine.checkpoint import checkpoint_metadata, load_checkpoint
from ral.progress import progress


def resolve_device(device: str | None) -> torch.device:
    """``None`` / "auto" -> CUDA when available, else CPU; otherwise ``torch.device(device)``.

    Raises:
        ValueError: not a device name, or a device this machine / this torch build does not have.
    """
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        target = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from None
    if target.type == "cuda" and not torch.cuda.is_available():
        build = "has no CUDA support" if torch.version.cuda is None else "finds no CUDA device"
        raise ValueError(f"device {device!r}: this PyTorch ({torch.__version__}) {build}; use 'cpu' or 'auto'")
    if target.type == "cuda" and target.index is not None and target.index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if target.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r}: MPS is not available here; use 'cpu' or 'auto'")
    return target


class PixelClassifier(nn.Module):
    """A trained network with its input normalisation: uint8 pixels (N, c, H, W) -> logits (N, C).

    What :func:`load_trained_model` returns; it takes the batches of :class:`ral.data.ImageDataset`
    (flipped or otherwise rearranged pixels too: any dtype, values in [0, 255]).

    Attributes:
        normalize: :class:`ral.data.transforms.InputNormalizer` with the run's mean / std.
        backbone: the network. image_channels: the channels its images are read in (1 or 3).
    """

    def __init__(self, backbone: nn.Module, normalize: nn.Module, image_channels: int = 1) -> None:
        super().__init__()
        self.normalize, self.backbone, self.image_channels = normalize, backbone, image_channels

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, c, H, W) pixels -> (N, C) logits."""
        return self.backbone(self.normalize(pixels))


def input_metadata(meta: dict[str, Any]) -> tuple[int, int, dict[str, Any]]:
    """``(model input channels, image channels, {"name", "mean", "std"})`` of a checkpoint's metadata;
    checkpoints written before they were recorded: one channel, "unit" normalisation."""
    channels = int(meta.get("in_channels", 1))
    normalize = meta.get("normalize") or {"name": "unit", "mean": [0.5] * channels, "std": [0.5] * channels}
    return channels, int(meta.get("image_channels", 1)), dict(normalize)


def load_trained_model(
    path: str | os.PathLike, device: str | None = "cpu", *, average: bool = True
) -> tuple[PixelClassifier, dict[str, Any]]:
    """Model (eval mode, on ``device``) and ``ral`` metadata of a ``ral train`` checkpoint.

    The architecture comes from the metadata (backbone, options, num_classes, input channels),
    the input normalisation too (what the run trained with); weights from the checkpoint's
    ``state_dict``, read with ``torch.load(weights_only=True)``: the moving average of the weights
    when the run kept one (``train.ema_decay``) and ``average``, else the trained weights. On CUDA
    the model uses the channels-last layout when the run did.

    Returns:
        A :class:`PixelClassifier` (uint8 pixel batches -> logits) and the metadata.

    Raises:
        FileNotFoundError: no such file. ValueError: not a ``ral train`` checkpoint.
    """
    from ral.data.transforms import InputNormalizer
    from ral.engine.module import EMA_PREFIX, MODEL_PREFIX
    from ral.models import build_model

    checkpoint = load_checkpoint(path)
    meta = checkpoint_metadata(checkpoint, path)
    channels, image_channels, normalize = input_metadata(meta)
    backbone = build_model(meta["backbone"], meta["num_classes"], in_channels=channels, **meta.get("model_options", {}))
    weights = checkpoint["state_dict"]
    prefix = EMA_PREFIX if average and any(k.startswith(EMA_PREFIX) for k in weights) else MODEL_PREFIX
    state = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
    try:
        backbone.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"checkpoint {path} does not match its own model description: {exc}") from None
    target = resolve_device(device)
    channels_last = target.type == "cuda" and bool(meta.get("channels_last", False))
    if channels_last:
        backbone = backbone.to(memory_format=torch.channels_last)
    model = PixelClassifier(
        backbone, InputNormalizer(normalize["mean"], normalize["std"], channels_last=channels_last), image_channels
    )
    return model.to(target).eval(), meta


def load_eval_table(
    path: str | os.PathLike,
    meta: dict[str, Any],
    *,
    format: str | None = None,
    root: str | os.PathLike | None = None,
    key: str = "data",
    allow_outside_root: bool = False,
    split: str | None = None,
    own_classes: bool = False,
) -> LabelTable:
    """Read a table with the checkpoint's classes (in the checkpoint's order), task and label
    policy, and the run's view filter and VinDr agreement rule.

    ``split``: the part of an official split file to read (MIMIC-CXR-JPG: "validate", "test").
    ``own_classes``: keep the table's own classes (another label set, see :mod:`ral.data.class_map`).

    Raises:
        FileNotFoundError / ValueError: naming ``key`` (the CLI option) and the problem (also a
            table without rows).
    """
    from ral.data import load_table
    from ral.engine.build import named

    dataset = meta.get("config", {}).get("dataset", {})
    with named(key):
        table = load_table(
            path,
            format=format,
            root=root,
            uncertain=meta.get("uncertain", "ignore"),
            classes=None if own_classes else meta["class_names"],
            task=meta["task"],
            views=dataset.get("views"),
            split=split,
            vindr_agreement=dataset.get("vindr_agreement", "any"),
            allow_outside_root=allow_outside_root,
        )
    if table.task != meta["task"]:
        raise ValueError(f"{key}: {path} is a {table.task} table but the checkpoint's model is {meta['task']}")
    if len(table) == 0:
        raise ValueError(f"{key}: {path} has no rows to evaluate")
    return table


def _image_channels(model: nn.Module) -> int:
    """The channels to read images in for ``model``: those of the :class:`PixelClassifier` s inside it."""
    found = [m.image_channels for m in model.modules() if isinstance(m, PixelClassifier)]
    return max(found, default=1)


def predict_probabilities(
    model: nn.Module,
    table: LabelTable,
    *,
    task: str,
    image_size: int,
    batch_size: int = 64,
    num_workers: int = 0,
    cache_dir: str | os.PathLike | None = None,
    amp: bool | None = None,
    pin_memory: bool | None = None,
    channels: int | None = None,
    max_image_pixels: int | None = MAX_IMAGE_PIXELS,
) -> np.ndarray:
    """Probabilities (N, C) float64 of every image of ``table``, in table order.

    Args:
        model: maps uint8 pixel batches (N, c, S, S) to logits, as :func:`load_trained_model`'s
            model does (or a module wrapping such models, e.g. an ensemble).
        task: "multilabel" (sigmoid) or "single" (softmax); computed in float32.
        image_size: S. batch_size, num_workers: of the loader.
        cache_dir: the decoded-image cache of :class:`ral.data.ImageDataset` (None decodes every file).
        amp: autocast the forward pass to bfloat16 (float16 where a GPU lacks bfloat16); default:
            on CUDA only. The probabilities are computed from float32 logits either way.
        pin_memory: page-locked batches copied asynchronously; default: on CUDA.
        channels: the channels images are read in (default: the model's, see :class:`PixelClassifier`).
        max_image_pixels: an image of more pixels is refused (the run's ``dataset.max_image_pixels``).

    Raises:
        ValueError: ``batch_size`` < 1.
    """
    from ral.data import ImageDataset

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    device = next(model.parameters()).device
    cuda = device.type == "cuda"
    pin = cuda if pin_memory is None else bool(pin_memory)
    autocast = cuda if amp is None else bool(amp)
    dtype = torch.float16 if cuda and not torch.cuda.is_bf16_supported() else torch.bfloat16
    images = ImageDataset(
        table,
        image_size=image_size,
        channels=channels or _image_channels(model),
        augment="none",
        cache_dir=cache_dir,
        max_image_pixels=max_image_pixels,
    )
    loader = DataLoader(images, batch_size=batch_size, shuffle=False, num_workers=num_workers, pin_memory=pin)
    parts = []
    was_training = model.training
    model.eval()
    bar = progress(total=len(images), desc="inference", unit="image")
    with bar, torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=autocast):
        for pixels, _ in loader:
            logits = model(pixels.to(device, non_blocking=pin)).float()
            parts.append(torch.sigmoid(logits) if task == "multilabel" else torch.softmax(logits, dim=1))
            bar.update(len(pixels))
    model.train(was_training)
    if not parts:
        return np.zeros((0, table.num_classes))
    return torch.cat(parts).cpu().double().numpy()  # one copy back to the host, at the end


def _unique_ids(names: list[str], paths: list[Path]) -> list[str]:
    """Each name without its extension, or with it where that would clash; refused where even that clashes."""
    stems = [PurePosixPath(name).with_suffix("").as_posix() for name in names]
    clashing = {stem for stem, count in Counter(stems).items() if count > 1}
    ids = [name if stem in clashing else stem for name, stem in zip(names, stems)]
    repeated = [i for i, count in Counter(ids).items() if count > 1]
    if repeated:
        files = [str(path) for i, path in zip(ids, paths) if i == repeated[0]]
        raise ValueError(
            f"images: {files[0]} and {files[1]} would both get the id {repeated[0]!r}; predict them in separate runs"
        )
    return ids


def image_table(images: Sequence[str | os.PathLike]) -> LabelTable:
    """A table without labels of image files and folders of images (searched recursively, sorted).

    Ids: a file's name without its extension; for a file found in a folder, its path inside
    that folder without the extension (``sub/scan1``), so equal names in sub-folders stay apart.
    Files whose ids would be equal (``a/x.jpg`` and ``a/x.png``) keep their extension in the id
    (``a/x.jpg``). Other files in the folders are left out with one warning.

    Returns:
        LabelTable with no classes (labels of shape (N, 0)), paths absolute.

    Raises:
        FileNotFoundError: a file or folder does not exist. ValueError: a folder holds no image, or
            two files would get the same id (the same file name given twice, from two folders).
    """
    from ral.data import list_images

    missing = [str(p) for p in images if not Path(p).exists()]
    if missing:
        raise FileNotFoundError(f"image file(s) not found: {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    names, paths, others = [], [], []
    for item in map(Path, images):
        if item.is_dir():
            found, skipped = list_images(item)
            if not found:
                raise ValueError(f"{item}: no image files in this folder or below it")
            names += [file.relative_to(item).as_posix() for file in found]
            paths += found
            others += skipped
        else:
            names.append(item.name)
            paths.append(item)
    ids = _unique_ids(names, paths)
    if others:
        warnings.warn(f"left out {len(others)} file(s) that are not images (first: {others[0]})", stacklevel=2)
    return LabelTable(
        ids=ids,
        paths=[str(p.resolve()) for p in paths],
        subject_ids=ids,
        class_names=[],
        labels=np.zeros((len(paths), 0), dtype=np.float32),
        root=Path("."),
        format="images",
    )
