"""Single-label peer losses against the float64 formulas of the peer_ref fixture, every reduction,
with ignore_index, one-hot targets, label smoothing and class weights; LDAM's DRW schedule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ral.losses import (
    BalancedSoftmaxLoss,
    CrossEntropyLoss,
    FocalCrossEntropyLoss,
    LDAMLoss,
    LogitAdjustedLoss,
    PolyCrossEntropyLoss,
    balanced_softmax_loss,
    cross_entropy,
    focal_cross_entropy,
    ldam_loss,
    logit_adjusted_cross_entropy,
    poly_cross_entropy,
)

N, C = 8, 4
COUNTS = [600.0, 90.0, 12.0, 0.0]
CLASS_WEIGHTS = [0.5, 1.0, 2.0, 3.0]

# name -> (functional, module class, positional extras, kwargs, reference(peer_ref, x, q), takes label smoothing)
CASES = {
    "ce": (cross_entropy, CrossEntropyLoss, (), {}, lambda ref, x, q: ref.ce(x, q), True),
    "focal_ce": (focal_cross_entropy, FocalCrossEntropyLoss, (), {}, lambda ref, x, q: ref.focal_ce(x, q, 2.0), True),
    "focal_ce_fractional": (
        focal_cross_entropy,
        FocalCrossEntropyLoss,
        (),
        {"gamma": 0.5},
        lambda ref, x, q: ref.focal_ce(x, q, 0.5),
        True,
    ),
    "poly_ce": (poly_cross_entropy, PolyCrossEntropyLoss, (), {}, lambda ref, x, q: ref.poly1(x, q, 1.0), True),
    "poly_ce_custom": (
        poly_cross_entropy,
        PolyCrossEntropyLoss,
        (),
        {"epsilon": -0.5},
        lambda ref, x, q: ref.poly1(x, q, -0.5),
        True,
    ),
    "logit_adjusted": (
        logit_adjusted_cross_entropy,
        LogitAdjustedLoss,
        (COUNTS,),
        {"tau": 0.7},
        lambda ref, x, q: ref.logit_adjusted(x, q, COUNTS, 0.7),
        True,
    ),
    "balanced_softmax": (
        balanced_softmax_loss,
        BalancedSoftmaxLoss,
        (COUNTS,),
        {},
        lambda ref, x, q: ref.balanced_softmax(x, q, COUNTS),
        True,
    ),
    "ldam": (
        ldam_loss,
        LDAMLoss,
        (COUNTS,),
        {"max_margin": 0.4, "scale": 5.0},
        lambda ref, x, q: ref.ldam(x, q, COUNTS, 0.4, 5.0),
        False,
    ),
}
SCENARIOS = ("indices", "ignore_index", "one_hot", "smoothing", "class_weights")
TOLERANCE = {torch.float32: dict(rtol=1e-5, atol=1e-7), torch.float64: dict(rtol=1e-10, atol=1e-14)}


def make_inputs(seed: int, dtype: torch.dtype):
    gen = torch.Generator().manual_seed(seed)
    logits = (torch.randn(N, C, generator=gen, dtype=torch.float64) * 3).to(dtype)
    labels = torch.randint(0, C, (N,), generator=gen)
    return logits, labels


COMBINATIONS = [
    (name, scenario) for name in sorted(CASES) for scenario in SCENARIOS if scenario != "smoothing" or CASES[name][5]
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(("name", "scenario"), COMBINATIONS)
def test_matches_float64_reference(name, scenario, dtype, peer_ref):
    function, _, extras, options, reference, _ = CASES[name]
    logits, labels = make_inputs(seed=sorted(CASES).index(name), dtype=dtype)
    kwargs: dict = {}
    smoothing = 0.0
    valid_rows = np.ones(N, dtype=bool)
    targets: torch.Tensor = labels
    if scenario == "ignore_index":
        targets = labels.clone()
        targets[[1, 4]] = -100
        valid_rows[[1, 4]] = False
    elif scenario == "one_hot":
        targets = F.one_hot(labels, C).to(dtype)
    elif scenario == "smoothing":
        smoothing = 0.15
        kwargs["label_smoothing"] = smoothing
    elif scenario == "class_weights":
        kwargs["class_weights"] = CLASS_WEIGHTS
    q = peer_ref.one_hot(labels.numpy(), C, smoothing)
    q[~valid_rows] = 0.0
    expected_elements = reference(peer_ref, logits.double().numpy(), q)
    for reduction in ("none", "sum", "mean"):
        got = function(logits, targets, *extras, reduction=reduction, **options, **kwargs)
        expected = peer_ref.reduce_rows(
            expected_elements, valid_rows=valid_rows, class_weights=kwargs.get("class_weights"), reduction=reduction
        )
        torch.testing.assert_close(got, torch.as_tensor(expected, dtype=got.dtype), **TOLERANCE[dtype])


@pytest.mark.parametrize("name", sorted(CASES))
def test_module_equals_functional(name):
    function, cls, extras, options, _, _ = CASES[name]
    logits, labels = make_inputs(seed=5, dtype=torch.float32)
    labels[0] = -100
    module = cls(*extras, **options, class_weights=CLASS_WEIGHTS)
    expected = function(logits, labels, *extras, **options, class_weights=CLASS_WEIGHTS)
    torch.testing.assert_close(module(logits, labels), expected, rtol=0, atol=0)
    assert module.task == "single"


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_equals_torch(smoothing):
    logits, labels = make_inputs(seed=11, dtype=torch.float64)
    labels[2] = -100
    for reduction in ("mean", "sum", "none"):
        expected = F.cross_entropy(logits, labels, label_smoothing=smoothing, reduction=reduction)
        got = cross_entropy(logits, labels, label_smoothing=smoothing, reduction=reduction)
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-15)


def test_class_weighted_sum_equals_torch_weighted_sum():
    logits, labels = make_inputs(seed=12, dtype=torch.float64)
    weights = torch.tensor(CLASS_WEIGHTS, dtype=torch.float64)
    expected = F.cross_entropy(logits, labels, weight=weights, reduction="sum")
    torch.testing.assert_close(cross_entropy(logits, labels, class_weights=weights, reduction="sum"), expected)


def test_focal_ce_with_gamma_zero_is_cross_entropy():
    logits, labels = make_inputs(seed=13, dtype=torch.float64)
    torch.testing.assert_close(focal_cross_entropy(logits, labels, gamma=0.0), cross_entropy(logits, labels))


def test_poly1_adds_epsilon_times_one_minus_pt_to_cross_entropy():
    logits, labels = make_inputs(seed=17, dtype=torch.float64)
    torch.testing.assert_close(poly_cross_entropy(logits, labels, epsilon=0.0), cross_entropy(logits, labels))
    p_t = torch.softmax(logits, dim=1).gather(1, labels[:, None])[:, 0]
    for smoothing in (0.0, 0.2):
        expected = cross_entropy(logits, labels, label_smoothing=smoothing, reduction="none")
        q = F.one_hot(labels, C).double() * (1 - smoothing) + smoothing / C
        one_minus_pt = (q * (1 - torch.softmax(logits, dim=1))).sum(dim=1)  # the paper's label-smoothing form
        if smoothing == 0.0:
            torch.testing.assert_close(one_minus_pt, 1 - p_t)
        got = poly_cross_entropy(logits, labels, epsilon=2.0, label_smoothing=smoothing, reduction="none")
        torch.testing.assert_close(got, expected + 2.0 * one_minus_pt, rtol=1e-12, atol=1e-14)


def test_balanced_softmax_is_logit_adjustment_with_tau_one_and_tau_zero_is_ce():
    logits, labels = make_inputs(seed=14, dtype=torch.float64)
    torch.testing.assert_close(
        balanced_softmax_loss(logits, labels, COUNTS), logit_adjusted_cross_entropy(logits, labels, COUNTS, tau=1.0)
    )
    torch.testing.assert_close(
        logit_adjusted_cross_entropy(logits, labels, COUNTS, tau=0.0), cross_entropy(logits, labels)
    )


def test_ldam_margins_follow_quarter_power_and_only_hit_the_target():
    # With zero logits, the target logit is lowered by Delta_y: loss = -log softmax(s * (0 - Delta_y e_y))_y.
    counts = [10000.0, 625.0, 16.0]  # n^(-1/4) = 0.1, 0.2, 0.5 -> margins 0.1, 0.2, 0.5 for max 0.5
    logits = torch.zeros(3, 3, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2])
    got = ldam_loss(logits, labels, counts, max_margin=0.5, scale=1.0, reduction="none")
    margins = torch.tensor([0.1, 0.2, 0.5], dtype=torch.float64)
    expected = -(-margins - torch.log(torch.exp(-margins) + 2))
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=0)


def test_ldam_deferred_reweighting_switches_on_at_drw_epoch(peer_ref):
    logits, labels = make_inputs(seed=15, dtype=torch.float64)
    loss = LDAMLoss(COUNTS, scale=1.0, drw_epoch=3, drw_beta=0.999)
    plain = ldam_loss(logits, labels, COUNTS, scale=1.0)
    for epoch in (0, 2):
        loss.set_epoch(epoch)
        assert not loss.drw_active
        torch.testing.assert_close(loss(logits, labels), plain, rtol=0, atol=0)
    loss.set_epoch(3)
    assert loss.drw_active
    weights = peer_ref.cb_weights(COUNTS, 0.999)
    expected = peer_ref.reduce_rows(
        peer_ref.ldam(logits.numpy(), peer_ref.one_hot(labels.numpy(), C), COUNTS, 0.5, 1.0), class_weights=weights
    )
    torch.testing.assert_close(loss(logits, labels), torch.tensor(expected, dtype=torch.float64), rtol=1e-10, atol=0)


def test_ldam_drw_multiplies_user_class_weights(peer_ref):
    logits, labels = make_inputs(seed=16, dtype=torch.float64)
    loss = LDAMLoss(COUNTS, scale=1.0, drw_epoch=0, class_weights=CLASS_WEIGHTS)
    weights = peer_ref.cb_weights(COUNTS, 0.9999) * np.array(CLASS_WEIGHTS)
    expected = peer_ref.reduce_rows(
        peer_ref.ldam(logits.numpy(), peer_ref.one_hot(labels.numpy(), C), COUNTS, 0.5, 1.0), class_weights=weights
    )
    torch.testing.assert_close(loss(logits, labels), torch.tensor(expected, dtype=torch.float64), rtol=1e-10, atol=0)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_ldam_set_epoch_rejects_bad_epochs(bad):
    with pytest.raises(ValueError, match="epoch"):
        LDAMLoss(COUNTS).set_epoch(bad)


@pytest.mark.parametrize("bad", [-2, 0.5, True])
def test_ldam_rejects_bad_drw_epoch(bad):
    with pytest.raises(ValueError, match=f"drw_epoch.*{bad!r}"):
        LDAMLoss(COUNTS, drw_epoch=bad)
