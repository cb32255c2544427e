"""Samplers and resumable loaders, de-duplication of gathered predictions, learning-rate schedule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from ral.engine.datamodule import IndexedDataset, gather_unique, make_loader
from ral.engine.module import lr_factor


def _order(loader, epoch):
    loader.sampler.set_epoch(epoch)
    return torch.cat([batch[0] for batch in loader]).tolist()


def test_training_order_depends_only_on_seed_and_epoch():
    data = IndexedDataset(TensorDataset(torch.arange(50)))
    first = make_loader(data, batch_size=8, shuffle=True, seed=0, num_workers=0)
    again = make_loader(data, batch_size=8, shuffle=True, seed=0, num_workers=0)  # e.g. after a resume
    torch.manual_seed(123)  # the global RNG does not matter
    assert _order(first, 3) == _order(again, 3)
    assert _order(first, 3) != _order(first, 4)
    assert len(_order(first, 0)) == 48  # the incomplete last batch is dropped in training


def test_evaluation_loaders_pad_and_gather_unique_removes_the_padding():
    """Two processes on 5 items: DistributedSampler pads rank 1 with item 0."""
    data = IndexedDataset(TensorDataset(torch.arange(5).float() * 10))
    shards = []
    for rank in range(2):
        loader = make_loader(data, batch_size=2, shuffle=False, seed=0, num_workers=0, world_size=2, rank=rank)
        index = torch.cat([b[0] for b in loader])
        value = torch.cat([b[1] for b in loader])
        shards.append((index, value))
    assert [len(s[0]) for s in shards] == [3, 3]
    index = torch.stack([s[0] for s in shards])  # what all_gather returns: (world_size, n)
    values = torch.stack([s[1] for s in shards])
    unique, gathered = gather_unique(index, values)
    np.testing.assert_array_equal(unique, np.arange(5))
    np.testing.assert_array_equal(gathered, np.arange(5) * 10.0)


def test_a_loader_restored_from_its_state_continues_the_epoch_where_it_stopped():
    data = IndexedDataset(TensorDataset(torch.arange(50)))
    straight = make_loader(data, batch_size=8, shuffle=True, seed=3, num_workers=0)
    straight.sampler.set_epoch(2)
    expected = [batch[0].tolist() for batch in straight]

    interrupted = make_loader(data, batch_size=8, shuffle=True, seed=3, num_workers=0)
    interrupted.sampler.set_epoch(2)
    batches = iter(interrupted)
    seen = [next(batches)[0].tolist() for _ in range(2)]
    state = interrupted.state_dict()
    assert state == {"epoch": 2, "samples": 16} and seen == expected[:2]

    torch.manual_seed(7)  # the global RNG does not matter
    resumed = make_loader(data, batch_size=8, shuffle=True, seed=3, num_workers=0)  # a new process
    resumed.load_state_dict(state)
    resumed.sampler.set_epoch(2)  # what Lightning does before the epoch's iterator: keeps the position
    assert len(resumed) == len(straight)  # Lightning counts the skipped batches itself
    rest = [batch[0].tolist() for batch in resumed]
    assert seen + rest == expected
    assert resumed.state_dict() == {"epoch": 2, "samples": 48}
    resumed.sampler.set_epoch(3)  # the next epoch starts at its beginning
    assert len([batch for batch in resumed]) == len(straight)


def test_augmented_batches_do_not_depend_on_the_number_of_workers(tiny_data):
    from ral.data import ImageDataset, load_table

    table = load_table(tiny_data["train"])
    data = IndexedDataset(ImageDataset(table, image_size=16, augment=True, seed=1))

    def epoch_batches(workers: int, epoch: int) -> list[torch.Tensor]:
        loader = make_loader(data, batch_size=16, shuffle=True, seed=1, num_workers=workers)
        loader.sampler.set_epoch(epoch)
        return [images for _, images, _ in loader]

    in_process = epoch_batches(0, 1)
    assert all(torch.equal(a, b) for a, b in zip(in_process, epoch_batches(2, 1)))
    assert not torch.equal(in_process[0], epoch_batches(0, 2)[0])  # another epoch, other draws


def test_gather_unique_keeps_trailing_dimensions():
    index = torch.tensor([[2, 0], [1, 2]])
    probs = torch.arange(8, dtype=torch.float32).reshape(2, 2, 2)
    unique, gathered = gather_unique(index, probs)
    np.testing.assert_array_equal(unique, [0, 1, 2])
    np.testing.assert_array_equal(gathered, [[2, 3], [4, 5], [0, 1]])


def test_learning_rate_schedule():
    kwargs = dict(total_steps=100, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_factor(0, schedule="cosine", **kwargs) == pytest.approx(0.1)
    assert lr_factor(9, schedule="cosine", **kwargs) == pytest.approx(1.0)
    assert lr_factor(10, schedule="cosine", **kwargs) == pytest.approx(1.0)
    assert lr_factor(55, schedule="cosine", **kwargs) == pytest.approx(0.1 + 0.9 * 0.5)
    assert lr_factor(100, schedule="cosine", **kwargs) == pytest.approx(0.1)
    assert lr_factor(70, schedule="none", **kwargs) == 1.0
    assert all(
        math.isfinite(lr_factor(s, schedule="cosine", total_steps=1, warmup_steps=0, min_lr_ratio=0)) for s in range(3)
    )
