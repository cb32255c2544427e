"""Checkpoint files: atomic writes, weights-only reads, and the metadata that rebuilds a model.

A checkpoint is Lightning's dict (``state_dict``, optimiser / scheduler / loop / callback
states) plus ``checkpoint["ral"]``: plain data describing the run (config as a dict, class
names, training class counts, groups, task, image size). Everything in it is a tensor or a
primitive container, so it loads with ``torch.load(weights_only=True)``; nothing is unpickled.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from ral.report.files import atomic_write, stale_temporaries

CHECKPOINT_FORMAT = 2  # 2: the input (channels, normalisation) and the moving average of the weights


def save_atomic(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` through :func:`ral.report.atomic_write` (temporary file, fsync, ``os.replace``).

    A crash or SIGKILL at any point leaves either the previous file or the complete new one. An
    OS error of the write (disk full, ...) is raised as that ``OSError``, naming ``path``.
    """

    def write(handle: Any) -> None:
        try:
            torch.save(obj, handle)
        except RuntimeError as exc:  # torch's writer turns an OSError of write() into a RuntimeError
            if isinstance(exc.__context__, OSError):
                raise exc.__context__ from None
            raise

    atomic_write(path, write)


def remove_stale_temporaries(folder: str | os.PathLike) -> None:
    """Delete the temporary files left in ``folder`` by a save that was killed."""
    for temp in stale_temporaries(folder):
        temp.unlink(missing_ok=True)


_TRUNCATED = ("failed finding central directory", "failed reading zip archive", "unexpected EOF", "Ran out of input")
_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def read_error(path: Path, exc: BaseException, what: str = "checkpoint") -> str:
    """One line saying why a weights-only read of ``path`` (a ``what``) failed (never: "try weights_only=False")."""
    text = str(exc)
    if isinstance(exc, EOFError) or any(marker in text for marker in _TRUNCATED):
        return f"cannot read {what} {path}: empty or truncated {what} file (was its writing interrupted?)"
    weights_only_refused = isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in text
    # "Unsupported operand": bytes the unpickler cannot read at all, i.e. not a pickle of objects
    if weights_only_refused and "Unsupported operand" not in text:
        found = _GLOBAL.search(text)
        which = f"; the first is a {found.group(1)}" if found else ""
        reason = "holds pickled objects that are not weights; refused (it could run code)"
        return f"cannot read {what} {path}: {reason}{which}"
    return f"cannot read {what} {path}: not a PyTorch {what} file ({type(exc).__name__})"


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu", *, mmap: bool = False) -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)``; nothing is unpickled.

    Args:
        path: the ``.ckpt`` file. map_location: as in ``torch.load``.
        mmap: memory-map the tensors instead of reading them (cheap when only metadata is needed).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: one line: an empty or truncated file, pickled objects that are not weights,
            or not a checkpoint at all.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"cannot read checkpoint {path}: empty or truncated checkpoint (the file has 0 bytes)")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as exc:  # never retried with weights_only=False
        raise ValueError(read_error(path, exc)) from None
    if not isinstance(checkpoint, dict):
        raise ValueError(f"checkpoint {path} holds a {type(checkpoint).__name__}, expected a dict")
    return checkpoint


def checkpoint_metadata(checkpoint: dict[str, Any], path: str | os.PathLike = "checkpoint") -> dict[str, Any]:
    """The ``ral`` metadata of a checkpoint read by :func:`load_checkpoint`.

    Raises:
        ValueError: the checkpoint was not written by ``ral train``, or its class names do not
            match its model's outputs (an edited or damaged checkpoint).
    """
    meta = checkpoint.get("ral")
    if not isinstance(meta, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"{path} is not a checkpoint written by `ral train` (no 'ral' metadata)")
    if meta.get("format", 0) > CHECKPOINT_FORMAT:
        raise ValueError(f"{path} has checkpoint format {meta.get('format')}, this ral reads <= {CHECKPOINT_FORMAT}")
    names, outputs = meta.get("class_names"), meta.get("num_classes")
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names) or len(set(names)) != len(names):
        raise ValueError(f"{path}: its class_names must be a list of distinct names, got {type(names).__name__}")
    if len(names) != outputs:
        raise ValueError(
            f"{path}: its metadata lists {len(names)} class name(s) for a model of {outputs} outputs "
            "(an edited or damaged checkpoint); refused"
        )
    return meta
