"""Data loading for training: label tables -> indexed image datasets -> (distributed) loaders.

Samplers are built here rather than by Lightning so that shuffling depends only on
``(seed, epoch)`` (a resumed run sees exactly the batches the uninterrupted run saw) and so that
validation batches carry each image's index: predictions gathered from several processes are
de-duplicated with :func:`gather_unique`, removing the padding ``DistributedSampler`` adds.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ral.data.table import LabelTable


class IndexedDataset(Dataset):
    """Wrap a dataset of ``(image, target)`` items into ``(index, image, target)`` items."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[int, Tensor, Tensor]:
        image, target = self.dataset[index]
        return index, image, target


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
) -> DataLoader:
    """A loader whose sampler is a ``DistributedSampler`` (also for one process).

    Training loaders shuffle with ``seed + epoch`` (Lightning calls ``set_epoch``) and drop a
    last incomplete batch when there is more than one batch (a batch of one breaks BatchNorm).
    Evaluation loaders keep the order and pad to equal length across processes.
    """
    sampler = DistributedSampler(
        dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed, drop_last=False
    )
    drop_last = shuffle and len(sampler) > batch_size
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        drop_last=drop_last,
        pin_memory=pin_memory,
        persistent_workers=False,  # fresh workers per epoch, seeded from the (restorable) RNG
    )


class TableDataModule(L.LightningDataModule):
    """Train / validation loaders of :class:`~ral.data.ImageDataset` over label tables.

    Args:
        train: training table. val: validation table or None.
        image_size: side of the square images fed to the model.
        augment: random augmentation of training images (validation never augments).
        batch_size: per-process training batch size. eval_batch_size: per-process validation batch size.
        num_workers: loader worker processes. seed: shuffling seed. cache_dir: image cache folder or None.
    """

    def __init__(
        self,
        train: LabelTable,
        val: LabelTable | None,
        *,
        image_size: int,
        augment: bool,
        batch_size: int,
        eval_batch_size: int,
        num_workers: int,
        seed: int,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__()
        from ral.data import ImageDataset

        self.train_set = IndexedDataset(
            ImageDataset(train, image_size=image_size, augment=augment, cache_dir=cache_dir)
        )
        self.val_set = (
            IndexedDataset(ImageDataset(val, image_size=image_size, augment=False, cache_dir=cache_dir))
            if val is not None
            else None
        )
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.num_workers, self.seed = num_workers, seed

    def _loader(self, dataset: Dataset, *, train: bool) -> DataLoader:
        trainer = self.trainer
        world_size = trainer.world_size if trainer is not None else 1
        rank = trainer.global_rank if trainer is not None else 0
        return make_loader(
            dataset,
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            seed=self.seed,
            num_workers=self.num_workers,
            world_size=world_size,
            rank=rank,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader(self.val_set, train=False) if self.val_set is not None else []
