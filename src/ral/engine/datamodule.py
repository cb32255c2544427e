"""Data loading for training: image datasets -> (distributed) loaders that can resume mid-epoch.

Samplers are built here rather than by Lightning so that a run can be resumed bit for bit:

- the order of an epoch depends only on ``(seed, epoch)`` (:class:`ResumableSampler`);
- each item is fetched with the key ``(epoch, index)``, and :class:`~ral.data.ImageDataset`
  derives its augmentation from ``(seed, epoch, index)``, so neither the number of loader
  workers nor the point a run was resumed from changes an image;
- the training loader (:class:`ResumableLoader`) counts the samples it handed out in the
  current epoch; Lightning stores that count in every checkpoint (the loader is "stateful") and
  gives it back on resume, and the loader then skips the samples already trained on.

Validation batches carry each image's index: predictions gathered from several processes are
de-duplicated with :func:`gather_unique`, removing the padding ``DistributedSampler`` adds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.utilities import suggested_max_num_workers
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

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


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` (order from ``seed + epoch``) yielding ``(epoch, index)`` keys, that
    can start an epoch part-way (:meth:`resume`)."""

    def __init__(self, dataset: Dataset, **kwargs: Any) -> None:
        super().__init__(dataset, **kwargs)
        self.start = 0  # samples of this process's share to skip in the next iteration

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.start = 0
        super().set_epoch(epoch)

    def resume(self, epoch: int, start: int) -> None:
        """Make the next iteration epoch ``epoch`` from its ``start``-th sample (of this process)."""
        super().set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        start, self.start = self.start, 0
        indices = list(super().__iter__())[start:]
        return iter([(self.epoch, index) for index in indices])


def _batch_length(batch: Any, default: int) -> int:
    first = batch[0] if isinstance(batch, (tuple, list)) and batch else batch
    return len(first) if isinstance(first, Tensor) and first.ndim > 0 else default


class ResumableLoader(DataLoader):
    """A ``DataLoader`` over a :class:`ResumableSampler` with ``state_dict`` / ``load_state_dict``.

    Hand-written rather than torchdata's ``StatefulDataLoader``: its state depends on the number
    of loader workers, and a checkpoint written with N workers fails to load with M != N
    (``AssertionError`` in torchdata 0.11, measured for 0 -> 2, 2 -> 0, 2 -> 3, 3 -> 2), e.g.
    ``num_workers: null`` resolving differently on the machine a preempted run resumes on.

    The state is ``{"epoch", "samples"}``: the epoch being iterated and the samples handed out
    in it so far. Lightning saves it in checkpoints and, on resuming inside an epoch, loads it
    before the epoch's iterator is made, which then skips those samples. ``len()`` stays the
    whole epoch's (Lightning counts the resumed batches itself). The worker processes start at
    the first batch, after Lightning has set the epoch.
    """

    sampler: ResumableSampler

    def __init__(self, dataset: Dataset, *, sampler: ResumableSampler, **kwargs: Any) -> None:
        super().__init__(dataset, sampler=sampler, **kwargs)
        self._epoch, self._samples = sampler.epoch, 0

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        self._epoch, self._samples = self.sampler.epoch, self.sampler.start
        for batch in super().__iter__():
            self._samples += _batch_length(batch, self.batch_size or 1)
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": int(self._epoch), "samples": int(self._samples)}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self._epoch, self._samples = int(state_dict["epoch"]), int(state_dict["samples"])
        self.sampler.resume(self._epoch, self._samples)


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
) -> ResumableLoader:
    """A :class:`ResumableLoader` over ``dataset`` (items fetched with ``(epoch, index)`` keys, see
    :class:`IndexedDataset`), also for one process.

    Training loaders shuffle with ``seed + epoch`` (Lightning calls ``set_epoch``) and drop a
    last incomplete batch when there is more than one batch (a batch of one breaks BatchNorm).
    Evaluation loaders keep the order and pad to equal length across processes. The loader's
    own generator (seeded with ``seed``) seeds the workers, so making an iterator never draws
    from the global torch RNG (whose state checkpoints restore for dropout). The sampler runs
    in this process, so persistent workers (``persistent_workers``, kept between epochs) still
    get the keys of a resumed epoch. ``persistent_workers`` and ``prefetch_factor`` apply with workers.
    """
    sampler = ResumableSampler(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed, drop_last=False)
    drop_last = shuffle and len(sampler) > batch_size
    workers = {"persistent_workers": persistent_workers, "prefetch_factor": prefetch_factor} if num_workers else {}
    return ResumableLoader(
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
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            seed=self.seed,
            world_size=world_size,
            rank=rank,
            **self.loader_settings(),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, train=True)

    def train_batches(self) -> int:
        """Training batches per epoch of this process (a loader is made, not iterated)."""
        return len(self.train_dataloader())

    def val_dataloader(self) -> DataLoader | list:
        return self._loader(self.val_set, train=False) if self.val_set is not None else []
