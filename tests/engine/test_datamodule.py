"""Samplers and resumable loaders, de-duplication of gathered predictions, learning-rate schedule,
moving average of the weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from ral.engine.datamodule import IndexedDataset, gather_unique, make_loader
from ral.engine.module import WeightEMA
from ral.engine.schedule import advance, lr_schedule


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


def _rates(scheduler, steps: int) -> list[float]:
    rates = []
    for _ in range(steps):
        rates.append(scheduler.optimizer.param_groups[0]["lr"])
        scheduler.optimizer.step()
        scheduler.step()
    return rates


@pytest.mark.parametrize("warmup", [0, 1, 10])
def test_learning_rate_schedule_warms_up_linearly_then_follows_a_cosine_or_stays(warmup):
    def schedule(name: str, total: int = 100):
        optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=0.01)
        return lr_schedule(optimizer, total_steps=total, warmup_steps=warmup, schedule=name, min_lr_ratio=0.1)

    cosine = _rates(schedule("cosine"), 120)
    ramp = [0.01 * (s + 1) / warmup for s in range(warmup)]
    decay = [0.001 + 0.009 * 0.5 * (1 + math.cos(math.pi * (s - warmup) / (100 - warmup))) for s in range(warmup, 101)]
    assert cosine[:101] == pytest.approx(ramp + decay, rel=1e-12)
    assert cosine[-1] > cosine[100]  # past total_steps torch's cosine rises again (training never gets there)
    assert _rates(schedule("none"), 30) == pytest.approx(ramp + [0.01] * (30 - warmup), rel=1e-12)
    assert all(math.isfinite(lr) for lr in _rates(schedule("cosine", total=1), 3))


def test_a_schedule_advanced_to_a_step_continues_like_the_uninterrupted_one():
    def schedule():
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
        return lr_schedule(optimizer, total_steps=40, warmup_steps=7, schedule="cosine", min_lr_ratio=0.0)

    straight, resumed = schedule(), schedule()
    rates = _rates(straight, 40)
    advance(resumed, 13)
    assert _rates(resumed, 27) == rates[13:]  # bit for bit


def test_the_moving_average_follows_the_first_steps_then_decays_at_its_rate():
    model = torch.nn.BatchNorm1d(2)  # float weights and buffers, and an integer buffer
    average = WeightEMA(model, decay=0.9)
    assert not any(p.requires_grad for p in average.parameters())
    expected = 1.0  # the copy's weight
    for step in range(1, 40):
        with torch.no_grad():
            model.weight.fill_(float(step))
            model.num_batches_tracked.fill_(step)
        keep = min(0.9, (1 + step) / (10 + step))
        expected = keep * expected + (1 - keep) * step
        average.update(model, step)
        assert average.module.weight[0].item() == pytest.approx(expected, rel=1e-6)
        assert int(average.module.num_batches_tracked) == step  # integer buffers are copied
