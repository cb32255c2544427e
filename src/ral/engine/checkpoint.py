"""Checkpoint files: atomic writes, weights-only reads, and the metadata that rebuilds a model.

A checkpoint is Lightning's dict (``state_dict``, optimiser / scheduler / loop / callback
states) plus ``checkpoint["ral"]``: plain data describing the run (config as a dict, class
names, training class counts, groups, task, image size). Everything in it is a tensor or a
primitive container, so it loads with ``torch.load(weights_only=True)``; nothing is unpickled.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ral.report.files import atomic_write, stale_temporaries

CHECKPOINT_FORMAT = 1


def save_atomic(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` through :func:`ral.report.atomic_write` (temporary file, fsync, ``os.replace``).

    A crash or SIGKILL at any point leaves either the previous file or the complete new one.
    """
    atomic_write(path, lambda handle: torch.save(obj, handle))


def remove_stale_temporaries(folder: str | os.PathLike) -> None:
    """Delete the temporary files left in ``folder`` by a save that was killed."""
    for temp in stale_temporaries(folder):
        temp.unlink(missing_ok=True)


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a weights-only checkpoint (corrupt, or holds pickled objects).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # never retry with weights_only=False
        raise ValueError(f"cannot read checkpoint {path} (weights-only load): {exc}") from None
    if not isinstance(checkpoint, dict):
        raise ValueError(f"checkpoint {path} holds a {type(checkpoint).__name__}, expected a dict")
    return checkpoint


def checkpoint_metadata(checkpoint: dict[str, Any], path: str | os.PathLike = "checkpoint") -> dict[str, Any]:
    """The ``ral`` metadata of a checkpoint read by :func:`load_checkpoint`.

    Raises:
        ValueError: the checkpoint was not written by ``ral train``.
    """
    meta = checkpoint.get("ral")
    if not isinstance(meta, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"{path} is not a checkpoint written by `ral train` (no 'ral' metadata)")
    if meta.get("format", 0) > CHECKPOINT_FORMAT:
        raise ValueError(f"{path} has checkpoint format {meta.get('format')}, this ral reads <= {CHECKPOINT_FORMAT}")
    return meta


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint I/O that writes with :func:`save_atomic` and reads weights-only."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} does not take storage_options, got {storage_options!r}")
        save_atomic(checkpoint, path)

    def load_checkpoint(
        self, path: Any, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return load_checkpoint(path, map_location=map_location or "cpu")
