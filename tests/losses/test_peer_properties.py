"""Property tests (hypothesis): every peer loss is finite for any finite logits up to 1e4
and any valid targets, non-negative where the maths guarantees it (all defaults here),
and "mean" is "sum" divided by the number of valid elements."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ral.losses import build_loss

C = 3
COUNTS = [300, 20, 1]
MULTILABEL = ["bce", "focal", "asl", "apl", "hill", "cb", "db", "splc"]
SINGLE = ["ce", "focal_ce", "ldam", "logit_adjusted", "balanced_softmax", "poly_ce"]
#: Losses whose terms compare labels with each other (no per-element loss).
PAIRWISE = ["zlpr", "twoway"]
# Rounding may leave a loss a few ulps below 0 where it is mathematically ~0.
ROUNDING = 1e-6

logit_values = st.one_of(
    st.floats(-1e4, 1e4, width=32),
    st.sampled_from([-1e4, 1e4, 0.0, 17.0, -17.0, 88.0, -88.0, 1e-30]),
)
multilabel_batch = st.integers(1, 5).flatmap(
    lambda n: st.tuples(
        arrays(np.float32, (n, C), elements=logit_values),
        arrays(np.float32, (n, C), elements=st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0, 1, width=32))),
        arrays(np.bool_, (n, C)),
    )
)
single_batch = st.integers(1, 5).flatmap(
    lambda n: st.tuples(
        arrays(np.float32, (n, C), elements=logit_values),
        arrays(np.int64, (n,), elements=st.integers(0, C - 1)),
    )
)


def _build(name: str, **kwargs):
    loss = build_loss(name, class_counts=COUNTS, num_samples=400, **kwargs)
    if name == "splc":
        loss.set_epoch(1)  # the label correction on
    return loss


@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(MULTILABEL), batch=multilabel_batch)
def test_multilabel_finite_nonnegative_and_mean_is_sum_over_count(name, batch):
    logits_np, targets_np, mask_np = batch
    logits = torch.from_numpy(logits_np).requires_grad_()
    targets, mask = torch.from_numpy(targets_np), torch.from_numpy(mask_np)
    elements = _build(name, reduction="none")(logits, targets, mask)
    assert torch.isfinite(elements).all()
    assert (elements >= -ROUNDING).all(), elements
    total = _build(name, reduction="sum")(logits, targets, mask)
    mean = _build(name, reduction="mean")(logits, targets, mask)
    torch.testing.assert_close(mean, total / max(int(mask.sum()), 1))
    mean.backward()
    assert torch.isfinite(logits.grad).all()


@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(SINGLE), batch=single_batch, smoothing=st.sampled_from([0.0, 0.2]))
def test_single_label_finite_and_nonnegative(name, batch, smoothing):
    logits_np, labels_np = batch
    logits = torch.from_numpy(logits_np).requires_grad_()
    kwargs = {} if name == "ldam" else {"label_smoothing": smoothing}
    per_sample = _build(name, reduction="none", **kwargs)(logits, torch.from_numpy(labels_np))
    assert per_sample.shape == (len(labels_np),)
    assert torch.isfinite(per_sample).all()
    assert (per_sample >= -ROUNDING).all(), per_sample
    per_sample.sum().backward()
    assert torch.isfinite(logits.grad).all()


@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(PAIRWISE), batch=multilabel_batch, reduction=st.sampled_from(["mean", "sum"]))
def test_pairwise_finite_and_nonnegative(name, batch, reduction):
    logits_np, targets_np, mask_np = batch
    logits = torch.from_numpy(logits_np).requires_grad_()
    value = _build(name, reduction=reduction)(logits, torch.from_numpy(targets_np), torch.from_numpy(mask_np))
    assert torch.isfinite(value) and value >= -ROUNDING
    value.backward()
    assert torch.isfinite(logits.grad).all()
    assert torch.equal(logits.grad[~torch.from_numpy(mask_np)], torch.zeros(int((~mask_np).sum())))
