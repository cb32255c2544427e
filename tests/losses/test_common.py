"""The shared helpers in ral.losses._common: validation, masking, reduction, compute dtype."""

from __future__ import annotations

import math

import pytest
import torch

from ral.losses._common import (
    check_class_vector,
    check_finite,
    check_float_tuple,
    check_in_range,
    check_nonnegative,
    check_reduction,
    compute_dtype,
    prepare_multilabel,
    prepare_single_label,
    reduce_loss,
    reduce_per_sample,
)


# ----------------------------------------------------------------------------- scalar checks
def test_scalar_checks_accept_and_convert():
    assert check_reduction("sum") == "sum"
    assert check_finite("x", -3) == -3.0
    assert check_nonnegative("g", 0) == 0.0
    assert check_in_range("tau", 0.0, 0.0, 1.0) == 0.0
    assert check_in_range("a", 1.0, 0.0, 1.0, high_inclusive=True) == 1.0
    assert check_in_range("lam", 7.5, 1.0, math.inf) == 7.5
    assert check_float_tuple("eps", [1, -2.5]) == (1.0, -2.5)
    assert check_float_tuple("eps", None) == ()


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda: check_reduction("avg"), r"reduction must be one of .*'avg'"),
        (lambda: check_finite("x", math.inf), r"x must be a finite number, got inf"),
        (lambda: check_finite("x", [1, 2]), r"x must be a finite number, got \[1, 2\]"),
        (lambda: check_nonnegative("gamma", -0.1), r"gamma must be a finite number >= 0, got -0\.1"),
        (lambda: check_nonnegative("gamma", None), r"gamma .* got None"),
        (lambda: check_in_range("tau", 1.0, 0.0, 1.0), r"tau must be in \[0\.0, 1\.0\), got 1\.0"),
        (lambda: check_in_range("a", 1.1, 0.0, 1.0, high_inclusive=True), r"a must be in \[0\.0, 1\.0\], got 1\.1"),
        (lambda: check_in_range("lam", math.inf, 1.0, math.inf), r"lam must be a finite number in .* got inf"),
        (lambda: check_float_tuple("eps", "ab"), r"eps must be a sequence of numbers, got 'ab'"),
        (lambda: check_float_tuple("eps", (1.0, math.nan)), r"eps must contain only finite numbers, got \(1\.0, nan\)"),
    ],
)
def test_scalar_checks_reject_with_name_and_value(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_check_class_vector():
    assert check_class_vector("w", None) is None
    vector = check_class_vector("w", [1, 2, 3], 3)
    assert vector.dtype == torch.float32 and vector.tolist() == [1.0, 2.0, 3.0]
    assert check_class_vector("w", [0.1], dtype=torch.float64).dtype == torch.float64
    source = torch.ones(2, requires_grad=True)
    assert not check_class_vector("w", source).requires_grad
    assert check_class_vector("w", [1.0, 2.0], device="meta").device.type == "meta"
    for bad, pattern in [
        ([[1.0, 2.0]], r"w must be 1-D .* shape \(1, 2\)"),
        ([1.0, 2.0], r"w must have 3 entries .* got 2"),
        ([1.0, -1.0, 0.0], r"w must be finite and >= 0, got \[1\.0, -1\.0, 0\.0\]"),
        ([1.0, math.nan, 0.0], r"w must be finite and >= 0"),
        ("abc", r"w must be a 1-D sequence of numbers, got 'abc'"),
    ]:
        with pytest.raises(ValueError, match=pattern):
            check_class_vector("w", bad, 3)


def test_compute_dtype():
    assert compute_dtype(torch.zeros(1, dtype=torch.float64)) == torch.float64
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        assert compute_dtype(torch.zeros(1, dtype=dtype)) == torch.float32


# ----------------------------------------------------------------------------- multi-label inputs
def test_prepare_multilabel_dtypes_and_no_mask():
    x, y, valid = prepare_multilabel(torch.zeros(2, 3, dtype=torch.float16), torch.ones(2, 3, dtype=torch.bool))
    assert x.dtype == y.dtype == torch.float32 and valid is None
    x, y, _ = prepare_multilabel(torch.zeros(2, 3, dtype=torch.float64), [[0, 1, 0], [1, 1, 0]])
    assert x.dtype == y.dtype == torch.float64


@pytest.mark.parametrize("ignore", [float("nan"), -1])
def test_prepare_multilabel_ignore_value_and_mask_combine(ignore):
    targets = torch.tensor([[1.0, ignore, 0.0], [0.5, 1.0, ignore]])
    before = targets.clone()
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    _, y, valid = prepare_multilabel(torch.zeros(2, 3), targets, ignore_value=ignore, mask=mask)
    assert valid.tolist() == [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]
    assert y.tolist() == [[1.0, 0.0, 0.0], [0.5, 1.0, 0.0]]
    torch.testing.assert_close(targets, before, rtol=0, atol=0, equal_nan=True)  # input untouched


def test_prepare_multilabel_errors():
    with pytest.raises(ValueError, match=r"logits must be a torch.Tensor, got list"):
        prepare_multilabel([[0.0]], torch.zeros(1, 1))
    with pytest.raises(ValueError, match=r"floating-point.*int64"):
        prepare_multilabel(torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"pass ignore_value.*got a value nan"):
        prepare_multilabel(torch.zeros(1, 2), torch.tensor([[0.0, math.nan]]))
    with pytest.raises(ValueError, match=r"targets must be in \[0, 1\], got a value -1\.0"):
        prepare_multilabel(torch.zeros(1, 2), torch.tensor([[0.0, -1.0]]), ignore_value=math.nan)


# ----------------------------------------------------------------------------- single-label inputs
def test_prepare_single_label_indices_smoothing_and_ignore():
    x, q, valid = prepare_single_label(torch.zeros(3, 4), torch.tensor([0, -100, 3]), label_smoothing=0.2)
    expected_row = [0.8 + 0.05, 0.05, 0.05, 0.05]
    torch.testing.assert_close(q[0], torch.tensor(expected_row))
    assert valid[:, 0].tolist() == [1.0, 0.0, 1.0]
    _, q, valid = prepare_single_label(torch.zeros(2, 2, dtype=torch.float64), torch.tensor([[0.0, 1.0], [0.3, 0.7]]))
    assert q.dtype == torch.float64 and valid is None
    with pytest.raises(ValueError, match=r"at least 2 classes, got shape \(3, 1\)"):
        prepare_single_label(torch.zeros(3, 1), torch.zeros(3, dtype=torch.long))


def test_target_checks_can_be_switched_off():
    # a training loop whose labels were validated when read skips the host-device synchronisation
    with pytest.raises(ValueError, match="targets must be in"):
        prepare_multilabel(torch.zeros(1, 2), torch.tensor([[0.0, 2.0]]))
    _, y, _ = prepare_multilabel(torch.zeros(1, 2), torch.tensor([[0.0, 2.0]]), check_targets=False)
    assert y.tolist() == [[0.0, 2.0]]
    with pytest.raises(ValueError, match="class indices"):
        prepare_single_label(torch.zeros(1, 2), torch.tensor([5]))
    prepare_single_label(torch.zeros(1, 2), torch.tensor([1]), check_targets=False)


# ----------------------------------------------------------------------------- reductions
def test_reduce_loss_all_reductions_with_weights_and_mask():
    loss = torch.tensor([[1.0, 2.0], [3.0, math.nan]])
    valid = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    weights = torch.tensor([2.0, 0.5])
    none = reduce_loss(loss, valid=valid, class_weights=weights, reduction="none")
    assert none.tolist() == [[2.0, 1.0], [6.0, 0.0]]
    assert reduce_loss(loss, valid=valid, class_weights=weights, reduction="sum").item() == 9.0
    assert reduce_loss(loss, valid=valid, class_weights=weights, reduction="mean").item() == 3.0
    assert reduce_loss(torch.ones(2, 2), reduction="mean").item() == 1.0


def test_reduce_loss_empty_and_all_masked_give_zero_with_gradient():
    for loss, valid in [(torch.zeros(0, 3), None), (torch.ones(2, 3), torch.zeros(2, 3))]:
        leaf = loss.clone().requires_grad_()
        for reduction in ("mean", "sum"):
            value = reduce_loss(leaf * 2, valid=valid, reduction=reduction)
            assert value.item() == 0.0 and value.requires_grad
            value.backward()
            assert torch.isfinite(leaf.grad).all()


def test_reduce_per_sample():
    loss = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    valid = torch.tensor([[1.0, 1.0], [0.0, 0.0], [1.0, 1.0]])
    weights = torch.tensor([1.0, 0.5])
    assert reduce_per_sample(loss, valid=valid, class_weights=weights, reduction="none").tolist() == [2.0, 0.0, 8.0]
    assert reduce_per_sample(loss, valid=valid, class_weights=weights, reduction="sum").item() == 10.0
    assert reduce_per_sample(loss, valid=valid, class_weights=weights, reduction="mean").item() == 5.0
    assert reduce_per_sample(loss).item() == 7.0


def test_reduce_samples_counts_valid_rows_and_handles_empty_batches():
    from ral.losses._common import reduce_samples

    per_sample = torch.tensor([1.0, 0.0, 3.0], requires_grad=True)
    rows = torch.tensor([True, False, True])
    assert reduce_samples(per_sample, valid_rows=rows).item() == 2.0
    assert reduce_samples(per_sample).item() == pytest.approx(4.0 / 3)
    assert reduce_samples(per_sample, reduction="sum").item() == 4.0
    assert reduce_samples(per_sample, reduction="none") is per_sample
    empty = reduce_samples(torch.zeros(0, requires_grad=True), valid_rows=torch.zeros(0, dtype=torch.bool))
    assert empty.item() == 0.0 and empty.requires_grad


def test_epoch_and_num_samples_checks():
    from ral.losses._common import check_epoch, check_num_samples

    assert check_epoch("e", 0) == 0 and check_epoch("e", None, optional=True) is None
    with pytest.raises(ValueError, match=r"e must be None or an int >= 0, got -1"):
        check_epoch("e", -1, optional=True)
    with pytest.raises(ValueError, match=r"e must be an int >= 0, got None"):
        check_epoch("e", None)
    assert check_num_samples(10, torch.tensor([3.0, 10.0])) == 10.0
    with pytest.raises(ValueError, match=r"num_samples must be the number of training images \(>= 2\), got 1"):
        check_num_samples(1, None)
    with pytest.raises(ValueError, match=r"num_samples must be >= every class count, got 5 < 9"):
        check_num_samples(5, torch.tensor([9.0]))
