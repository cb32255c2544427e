"""Data loading for training: image datasets -> (distributed) loaders that can resume mid-epoch.

Samplers are built here rather than by Lightning so that a run can be resumed bit for bit:

- the order of an epoch depends only on ``(seed, epoch)`` (:class:`EpochKeySampler`);
- each item is fetched with the key ``(epoch, index)``, and :class:`~ral.data.ImageDataset`
  derives its augmentation from ``(seed, epoch, index)``, so neither the number of loader
  workers nor the point a run was resumed from changes an image;
- the training loader is torchdata's ``StatefulDataLoader``: it counts the batches it handed
  out in the current epoch, Lightning stores its state in every checkpoint and gives it back
  on resume, and the loader then skips the batches already trained on (without loading them).

Validation batches carry each image's index: predictions gathered from several processes are
de-duplicated with :func:`gather_unique`, removing the padding ``DistributedSampler`` adds.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.utilities import suggested_max_num_workers
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from torchdata.stateful_dataloader import StatefulDataLoader

from ral.data.dataset import ImageDataset


class IndexedDataset(Dataset):
    """Wrap a dataset of ``(image, target)`` items (any tuples) into ``(index, image, target)`` items.

    Keys are ``index`` or ``(epoch, index)``; an :class:`~ral.data.ImageDataset` gets the whole
    key (its augmentation depends on the epoch), any other dataset only the index.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[Any, ...]:
        index = key[1] if isinstance(key, tuple) else key
        item = self.dataset[key] if isinstance(self.dataset, ImageDataset) else self.dataset[index]
        return (index, *item)


def gather_unique(index: Tensor, *values: Tensor) -> tuple[np.ndarray, ...]:
    """Order gathered predictions by dataset index and drop duplicates (sampler padding).

    Args:
        index: (..., n) dataset indices, e.g. (world_size, n) after ``all_gather``.
        values: tensors shaped (..., n, *) aligned with ``index``.

    Returns:
        ``(sorted unique indices (M,), value_1 (M, *), ...)`` as numpy arrays, keeping the first
        occurrence of each index.
    """
    flat_index = index.reshape(-1).cpu().numpy()
    unique, first = np.unique(flat_index, return_index=True)
    out: list[np.ndarray] = [unique]
    for value in values:
        flat = value.reshape(flat_index.shape[0], *value.shape[index.ndim :]).cpu()
        out.append(flat.numpy()[first])
    return tuple(out)


class EpochKeySampler(DistributedSampler):
    """``DistributedSampler`` (order from ``seed + epoch``) yielding ``(epoch, index)`` keys."""

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        epoch = self.epoch
        return iter([(epoch, index) for index in super().__iter__()])


def default_num_workers(processes: int = 1) -> int:
    """Loader workers per training process: Lightning's suggestion for ``processes`` processes on
    this machine (the CPUs each may use, minus one for the process itself, at least 1), at most 8."""
    return min(8, suggested_max_num_workers(max(1, processes)))


def make_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    num_workers: int,
    world_size: int = 1,
    rank: int = 0,
    pin_memory: bool = False,
    persistent_workers: bool = False,
    prefetch_factor: int = 2,
    epoch: int = 0,
) -> StatefulDataLoader:
    """A ``StatefulDataLoader`` over ``dataset`` (items fetched with ``(epoch, index)`` keys, see
    :class:`IndexedDataset`), also for one process, starting at ``epoch``.

    Training loaders shuffle with ``seed + epoch`` (Lightning calls ``set_epoch``) and drop a
    last incomplete batch when there is more than one batch (a batch of one breaks BatchNorm).
    Evaluation loaders keep the order and pad to equal length across processes. The loader's
    own generator (seeded with ``seed``) seeds the workers, so making an iterator never draws
    from the global torch RNG (whose state checkpoints restore for dropout). The sampler runs
    in this process, so persistent workers (``persistent_workers``, kept between epochs) still
    get the keys of a resumed epoch. ``persistent_workers`` and ``prefetch_factor`` apply with workers.
    """
    sampler = EpochKeySampler(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed, drop_last=False)
    sampler.set_epoch(epoch)  # worker processes fetch ahead as soon as Lightning makes the iterator
    drop_last = shuffle and len(sampler) > batch_size
    workers = {"persistent_workers": persistent_workers, "prefetch_factor": prefetch_factor} if num_workers else {}
    with warnings.catch_warnings():  # torchdata 0.11 calls torch.set_vital, which torch 2.13 deprecates
        warnings.filterwarnings("ignore", message="'set_vital' is deprecated")
        return StatefulDataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=num_workers,
            drop_last=drop_last,
            pin_memory=pin_memory,
            generator=torch.Generator().manual_seed(seed),
            **workers,
        )


class TableDataModule(L.LightningDataModule):
    """Train / validation loaders of :class:`~ral.data.ImageDataset` s.

    Args:
        train: training images (augmented as it was built). val: validation images or None.
        batch_size: per-process training batch size. eval_batch_size: per-process validation batch size.
        num_workers: loader worker processes (None: :func:`default_num_workers` of the trainer's
            processes on this machine). seed: shuffling seed.
        persistent_workers, prefetch_factor: as in ``DataLoader`` (with workers only).
        pin_memory: page-locked batches (None: when the trainer runs on CUDA).
    """

    def __init__(
        self,
        train: ImageDataset,
        val: ImageDataset | None,
        *,
        batch_size: int,
        eval_batch_size: int,
        num_workers: int | None,
        seed: int,
        persistent_workers: bool = False,
        pin_memory: bool | None = None,
        prefetch_factor: int = 2,
    ) -> None:
        super().__init__()
        self.train_set = IndexedDataset(train)
        self.val_set = IndexedDataset(val) if val is not None else None
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.num_workers, self.seed = num_workers, seed
        self.persistent_workers, self.pin_memory, self.prefetch_factor = persistent_workers, pin_memory, prefetch_factor

    def loader_settings(self) -> dict[str, Any]:
        """``num_workers``, ``pin_memory``, ``persistent_workers``, ``prefetch_factor`` of the loaders, resolved."""
        trainer = self.trainer
        processes = trainer.num_devices if trainer is not None else 1
        cuda = trainer is not None and trainer.strategy.root_device.type == "cuda"
        workers = default_num_workers(processes) if self.num_workers is None else self.num_workers
        return {
            "num_workers": workers,
            "pin_memory": cuda if self.pin_memory is None else self.pin_memory,
            "persistent_workers": self.persistent_workers and workers > 0,
            "prefetch_factor": self.prefetch_factor,
        }

    def _loader(self, dataset: Dataset, *, train: bool) -> DataLoader:
        trainer = self.trainer
        world_size = trainer.world_size if trainer is not None else 1
        rank = trainer.global_rank if trainer is not None else 0
        return make_loader(
            dataset,
            epoch=self._first_epoch() if train else 0,
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            seed=self.seed,
            world_size=world_size,
            rank=rank,
            **self.loader_settings(),
        )

    def _first_epoch(self) -> int:
        """The epoch the training loader serves first: the trainer's, or the next one when a run
        resumes from the end of an epoch. Lightning sets the epoch only after it has made the
        loader's iterator, which takes the sampler's order at once (and its workers fetch ahead)."""
        trainer = self.trainer
        if trainer is None:
            return 0
        return trainer.current_epoch + int(trainer.fit_loop.epoch_loop.batch_progress.is_last_batch)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, train=True)

    def train_batches(self) -> int:
        """Training batches per epoch of this process (a loader is made, not iterated)."""
        return len(self.train_dataloader())

    def val_dataloader(self) -> DataLoader | list:
        return self._loader(self.val_set, train=False) if self.val_set is not None else []
