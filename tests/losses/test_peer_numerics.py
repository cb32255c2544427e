"""Numerics of every peer loss (and of RAL's long-tail variants, eager; their compiled path is
checked in test_ral_long_tail.py): gradcheck in float64, finite loss and gradient at
|logit| = 1e4 in float32 / float16 / bfloat16 and under CPU autocast, empty and fully masked
batches, no in-place edits of inputs, no global grad toggles."""

from __future__ import annotations

import itertools

import pytest
import torch

from ral.losses import build_loss

C = 4
COUNTS = [500, 40, 3, 0]

# id -> (registry name, constructor kwargs); fractional gammas on purpose.
MULTILABEL = {
    "bce": ("bce", {"pos_weight": [1.0, 2.0, 0.5, 3.0]}),
    "focal": ("focal", {"gamma": 2.0}),
    "focal_fractional": ("focal", {"gamma": 0.5, "alpha": None}),
    "asl": ("asl", {"gamma_pos": 1.0, "gamma_neg": 4.0, "clip": 0.05}),
    "asl_fractional": ("asl", {"gamma_pos": 0.5, "gamma_neg": 1.5, "clip": 0.05}),
    "asl_fractional_no_clip": ("asl", {"gamma_pos": 0.5, "gamma_neg": 0.5, "clip": 0.0}),
    "asl_detach": ("asl", {"gamma_pos": 0.5, "gamma_neg": 2.5, "detach_focal": True}),
    "apl": ("apl", {}),
    "apl_fractional": ("apl", {"gamma_pos": 0.5, "gamma_neg": 0.5, "eps_neg": (1.0, -0.5)}),
    "hill": ("hill", {}),
    "hill_fractional": ("hill", {"gamma": 0.5, "margin": 0.0}),
    "cb": ("cb", {}),
    "cb_bce": ("cb", {"base": "bce"}),
    "db": ("db", {}),
    "db_focal": ("db", {"gamma": 0.5}),
    "zlpr": ("zlpr", {}),
    "twoway": ("twoway", {}),
    "twoway_cold": ("twoway", {"temperature_pos": 0.5, "temperature_neg": 0.25}),
    "splc": ("splc", {}),
    "splc_correcting": ("splc", {"epoch": 1, "gamma": 0.5}),
    "ral_cb": ("ral_cb", {"impl": "eager"}),
    "ral_cb_positive_prior": ("ral_cb", {"impl": "eager", "balance": "positive", "prior_tau": 1.0}),
    "ral_prior": ("ral", {"impl": "eager", "prior_tau": 1.0}),
}
SINGLE = {
    "ce": ("ce", {"label_smoothing": 0.1}),
    "focal_ce": ("focal_ce", {"gamma": 2.0}),
    "focal_ce_fractional": ("focal_ce", {"gamma": 0.5, "label_smoothing": 0.1}),
    "ldam": ("ldam", {}),
    "ldam_drw": ("ldam", {"drw_epoch": 0}),
    "logit_adjusted": ("logit_adjusted", {}),
    "balanced_softmax": ("balanced_softmax", {}),
    "poly_ce": ("poly_ce", {"label_smoothing": 0.1}),
    "poly_ce_negative": ("poly_ce", {"epsilon": -1.0}),
    "ral_la": ("ral_la", {"impl": "eager", "label_smoothing": 0.1}),
}
ALL = {**MULTILABEL, **SINGLE}
#: Losses whose terms compare classes with each other: no class weights; "none" only for ZLPR.
NO_CLASS_WEIGHTS = {"zlpr", "twoway"}


def build(case: str, **extra):
    name, kwargs = ALL[case]
    kwargs = dict(kwargs)
    epoch = kwargs.pop("epoch", None)
    loss = build_loss(name, class_counts=COUNTS, num_samples=1000, **kwargs, **extra)
    if epoch is not None:
        loss.set_epoch(epoch)
    return loss


def reductions(case: str) -> tuple[str, ...]:
    return ("mean", "sum") if ALL[case][0] == "twoway" else ("mean", "sum", "none")


def targets_for(loss, n: int, *, soft: bool = False) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    if loss.task == "single":
        return torch.randint(0, C, (n,), generator=gen)
    if soft:
        return torch.rand(n, C, generator=gen)
    return (torch.rand(n, C, generator=gen) < 0.5).float()


EXTREME = torch.tensor(
    [
        [1e4, -1e4, 0.0, 1e4],
        [-1e4, -1e4, -1e4, -1e4],
        [1e4, 1e4, 1e4, 1e4],
        [30.0, -30.0, 1e4, -2.0],
        [-3.0, 2.9, 17.0, -17.0],
    ]
)


# A detached focal weight is deliberately not the derivative of the loss: detach_focal is
# checked against a hand derivative in test_multilabel_peers.py instead.
@pytest.mark.parametrize("case", sorted(c for c in ALL if not ALL[c][1].get("detach_focal")))
def test_gradcheck_float64(case):
    gen = torch.Generator().manual_seed(1)
    logits = (torch.randn(5, C, generator=gen, dtype=torch.float64) * 2).requires_grad_()
    for reduction in ("mean", "sum"):
        loss = build(case, reduction=reduction)
        targets = targets_for(loss, 5, soft=True)
        assert torch.autograd.gradcheck(lambda x, loss=loss, targets=targets: loss(x, targets), (logits,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=["f32", "f16", "bf16"])
@pytest.mark.parametrize("case", sorted(ALL))
def test_finite_at_extreme_logits(case, dtype):
    for reduction, soft in itertools.product(reductions(case), (False, True)):
        loss = build(case, reduction=reduction)
        logits = EXTREME.to(dtype, copy=True).requires_grad_()
        value = loss(logits, targets_for(loss, len(EXTREME), soft=soft))
        assert value.dtype == torch.float32
        assert torch.isfinite(value).all(), value
        value.sum().backward()
        assert logits.grad.dtype == dtype
        assert torch.isfinite(logits.grad).all(), logits.grad


@pytest.mark.parametrize("case", sorted(ALL))
def test_finite_under_cpu_autocast_bfloat16(case):
    loss = build(case)
    layer = torch.nn.Linear(3, C)
    features = torch.tensor([[1e3, -1e3, 5.0], [-2e3, 1e3, 0.0], [0.1, 0.2, 0.3]])
    targets = targets_for(loss, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = layer(features) * 10
        assert logits.dtype == torch.bfloat16
        value = loss(logits, targets)
    assert value.dtype == torch.float32
    assert torch.isfinite(value)
    value.backward()
    assert torch.isfinite(layer.weight.grad).all()


def _empty_and_masked(loss):
    """(logits, targets, kwargs) of an empty batch and of a batch where nothing counts."""
    empty = (torch.zeros(0, C, requires_grad=True), targets_for(loss, 0), {})
    if loss.task == "single":
        masked = (torch.randn(3, C, requires_grad=True), torch.full((3,), -100), {})
    else:
        masked = (torch.randn(3, C, requires_grad=True), targets_for(loss, 3), {"mask": torch.zeros(3, C)})
    return empty, masked


@pytest.mark.parametrize("case", sorted(ALL))
def test_empty_and_fully_masked_batches_give_zero_with_gradient(case):
    for reduction in ("mean", "sum"):
        loss = build(case, reduction=reduction)
        for logits, targets, kwargs in _empty_and_masked(loss):
            value = loss(logits, targets, **kwargs)
            assert value.item() == 0.0
            assert value.requires_grad
            value.backward()
            assert torch.equal(logits.grad, torch.zeros_like(logits))


@pytest.mark.parametrize("case", sorted(MULTILABEL))
def test_nan_ignore_value_with_extreme_logits_keeps_gradient_finite(case):
    loss = build(case, ignore_value=float("nan"))
    logits = EXTREME.clone().requires_grad_()
    targets = targets_for(loss, len(EXTREME))
    targets[0, :2] = float("nan")
    value = loss(logits, targets)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()
    assert torch.equal(logits.grad[0, :2], torch.zeros(2))


@pytest.mark.parametrize("case", sorted(ALL))
def test_inputs_are_not_modified(case):
    weights = {} if ALL[case][0] in NO_CLASS_WEIGHTS else {"class_weights": [1.0, 2.0, 3.0, 4.0]}
    loss = build(case, **weights)
    logits = torch.randn(4, C, dtype=torch.float16)
    targets = targets_for(loss, 4, soft=True)
    if loss.task == "multilabel":
        targets[0, 0] = float("nan")
        loss = build(case, **weights, ignore_value=float("nan"))
    before = (logits.clone(), targets.clone())
    loss(logits, targets)
    torch.testing.assert_close(logits, before[0], rtol=0, atol=0)
    torch.testing.assert_close(targets, before[1], rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("case", ["asl_detach", "apl", "focal", "ldam_drw", "splc_correcting", "zlpr", "ral_la"])
def test_grad_mode_is_left_alone(case):
    loss = build(case)
    logits = torch.randn(3, C)
    targets = targets_for(loss, 3)
    with torch.no_grad():
        value = loss(logits, targets)
        assert not torch.is_grad_enabled()
    assert not value.requires_grad
    assert torch.is_grad_enabled()
    assert loss(logits.requires_grad_(), targets).requires_grad
