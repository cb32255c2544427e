"""The one loss base class: options validated once, buffers, the shared pipeline, statistics."""

from __future__ import annotations

import inspect

import pytest
import torch

from ral.losses import LOSSES, EpochSchedule, Loss, MultiLabelLoss, SingleLabelLoss, build_loss


class _Recorder(MultiLabelLoss):
    def elementwise(self, x, y):
        self.seen = (x, y)
        return x * 0 + 1


class _SingleRecorder(SingleLabelLoss):
    def elementwise(self, x, q):
        self.seen = (x, q)
        return q


def test_every_registered_loss_derives_from_the_one_base():
    for name, cls in LOSSES.items():
        assert issubclass(cls, Loss), name
        assert cls.task in ("multilabel", "single"), name
        assert issubclass(cls, MultiLabelLoss if cls.task == "multilabel" else SingleLabelLoss), name


def test_options_are_checked_at_construction():
    with pytest.raises(ValueError, match="reduction"):
        _Recorder(reduction="avg")
    with pytest.raises(ValueError, match=r"class_weights must be finite and >= 0"):
        _Recorder(class_weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="check_targets must be True or False, got 1"):
        _Recorder(check_targets=1)
    with pytest.raises(ValueError, match="ignore_value must be a number"):
        _Recorder(ignore_value="x")
    with pytest.raises(ValueError, match="ignore_index must be an integer"):
        _SingleRecorder(ignore_index=1.5)


def test_pipeline_hands_float_targets_with_ignored_entries_zeroed():
    loss = _Recorder(ignore_value=-1)
    value = loss(torch.zeros(1, 3, dtype=torch.float16), torch.tensor([[1.0, -1.0, 0.0]]))
    assert loss.seen[0].dtype == torch.float32 and loss.seen[1].tolist() == [[1.0, 0.0, 0.0]]
    assert value.item() == 1.0  # mean over the two valid elements
    single = _SingleRecorder(reduction="sum")
    value = single(torch.zeros(2, 3), torch.tensor([2, -100]))
    assert single.seen[1].tolist() == [[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    assert value.item() == 1.0


def test_class_vectors_are_non_persistent_buffers_checked_against_the_logits():
    loss = _Recorder(class_weights=[1.0, 2.0])
    assert "class_weights" in dict(loss.named_buffers()) and "class_weights" not in loss.state_dict()
    assert loss.to(torch.float64).class_weights.dtype == torch.float64
    with pytest.raises(ValueError, match=r"class_weights must have 3 entries \(one per class\), got 2"):
        loss(torch.zeros(1, 3), torch.zeros(1, 3))


def test_statistics_are_declared_once_and_passed_by_build_loss():
    needs = {name: cls.statistics for name, cls in LOSSES.items() if cls.statistics}
    assert needs["db"] == ("class_counts", "num_samples") and needs["cb"] == ("class_counts",)
    for name in LOSSES:  # a caller may always pass both statistics
        loss = build_loss(name, class_counts=[5, 3, 1], num_samples=10)
        taken = loss.statistics + loss.optional_statistics
        assert ("class_counts" in dict(loss.named_buffers())) == ("class_counts" in taken)
        assert (getattr(loss, "num_samples", None) == 10.0) == ("num_samples" in taken)
    with pytest.raises(ValueError, match="loss 'db' needs num_samples"):
        build_loss("db", class_counts=[5, 3, 1])


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_option_is_an_explicit_keyword_argument(name):
    """No ``**options`` for an IDE or ``inspect.signature`` to miss: the common options and the
    statistics a loss takes are named in its own signature."""
    cls = LOSSES[name]
    parameters = inspect.signature(cls).parameters
    assert all(p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) for p in parameters.values()), name
    own = {"ignore_value"} if cls.task == "multilabel" else {"ignore_index", "label_smoothing"}
    assert {"reduction", "class_weights", "check_targets"} | own <= set(parameters), name
    taken = set(cls.statistics + cls.optional_statistics)
    assert set(parameters) & {"class_counts", "num_samples"} == taken, name


class _OptionalCounts(_Recorder):
    optional_statistics = ("class_counts", "num_samples")

    class_counts: object = None
    num_samples: object = None


def test_optional_statistics_may_be_missing_and_are_validated_when_given():
    loss = _OptionalCounts()
    assert loss.class_counts is None and loss.num_samples is None
    loss = _OptionalCounts(class_counts=[4, 2], num_samples=9)
    assert loss.class_counts.tolist() == [4.0, 2.0] and loss.num_samples == 9.0
    with pytest.raises(ValueError, match=r"num_samples must be >= every class count, got 3 < 4"):
        _OptionalCounts(class_counts=[4, 2], num_samples=3)
    with pytest.raises(TypeError, match="num_samples"):  # a loss without the field takes no statistic
        _Recorder(num_samples=9)
    with pytest.raises(TypeError, match="class_counts"):
        _Recorder(class_counts=[1, 2])


class _PerSample(MultiLabelLoss):
    """A loss without an element-wise form: one value per sample."""

    def reduced_loss(self, x, y, valid):
        return (x * y).sum(dim=1).sum()


def test_a_loss_without_elementwise_form_overrides_reduced_loss():
    loss = _PerSample(ignore_value=-1)
    value = loss(torch.ones(2, 3), torch.tensor([[1.0, -1.0, 1.0], [0.0, 1.0, 0.0]]))
    assert value.item() == 3.0  # the ignored element reaches reduced_loss as target 0
    with pytest.raises(NotImplementedError, match="_PerSample has no element-wise form"):
        loss.elementwise(torch.ones(1, 3), torch.ones(1, 3))


class _Scheduled(EpochSchedule, _Recorder):
    pass


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3", None])
def test_epoch_schedule_takes_non_negative_int_epochs(bad):
    loss = _Scheduled()
    assert loss.epoch == 0
    loss.set_epoch(4)
    assert loss.epoch == 4
    with pytest.raises(ValueError, match=f"epoch must be an int >= 0, got {bad!r}"):
        loss.set_epoch(bad)


def test_functional_forms_reuse_one_module_per_setting():
    from ral.losses import AsymmetricLoss, splc_loss
    from ral.losses._base import cached_module

    first = cached_module(AsymmetricLoss, (), {"gamma_neg": 2.0, "class_weights": [1.0, 2.0]})
    assert cached_module(AsymmetricLoss, (), {"class_weights": (1.0, 2.0), "gamma_neg": 2.0}) is first
    assert cached_module(AsymmetricLoss, (), {"gamma_neg": 3.0}) is not first
    logits, targets = torch.tensor([[3.0, -2.0, 0.5]]), torch.zeros(1, 3)  # p = 0.95 > threshold 0.6
    corrected = splc_loss(logits, targets, epoch=5)  # the shared module is told the epoch each call
    assert splc_loss(logits, targets).item() != corrected.item()  # no epoch: epoch 0 again
