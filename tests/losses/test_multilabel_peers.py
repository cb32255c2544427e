"""Multi-label peer losses against the independent float64 formulas (the peer_ref fixture), for
every reduction, with ignore values, masks and class weights; plus identities between them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ral.losses import (
    AsymmetricLoss,
    AsymmetricPolynomialLoss,
    BinaryCrossEntropyLoss,
    ClassBalancedLoss,
    DistributionBalancedLoss,
    HillLoss,
    SigmoidFocalLoss,
    asymmetric_loss,
    asymmetric_polynomial_loss,
    binary_cross_entropy,
    class_balanced_loss,
    distribution_balanced_loss,
    hill_loss,
    sigmoid_focal_loss,
)

N, C = 7, 5
COUNTS = [5000.0, 700.0, 40.0, 3.0, 0.0]
NUM_SAMPLES = 6000
POS_WEIGHT = [1.0, 2.5, 0.5, 4.0, 1.25]
CLASS_WEIGHTS = [0.5, 1.0, 2.0, 1.5, 0.25]

# name -> (functional, positional extras, kwargs, reference(peer_ref, x, y) in float64)
CASES = {
    "bce": (binary_cross_entropy, (), {}, lambda ref, x, y: ref.bce(x, y)),
    "bce_pos_weight": (binary_cross_entropy, (), {"pos_weight": 3.0}, lambda ref, x, y: ref.bce(x, y, 3.0)),
    "bce_pos_weight_vector": (
        binary_cross_entropy,
        (),
        {"pos_weight": POS_WEIGHT},
        lambda ref, x, y: ref.bce(x, y, np.array(POS_WEIGHT)[None, :]),
    ),
    "focal": (sigmoid_focal_loss, (), {}, lambda ref, x, y: ref.focal(x, y, 0.25, 2.0)),
    "focal_no_alpha_fractional": (
        sigmoid_focal_loss,
        (),
        {"alpha": None, "gamma": 0.5},
        lambda ref, x, y: ref.focal(x, y, None, 0.5),
    ),
    "asl": (asymmetric_loss, (), {}, lambda ref, x, y: ref.asl(x, y, 0.0, 4.0, 0.05)),
    "asl_custom": (
        asymmetric_loss,
        (),
        {"gamma_pos": 1.0, "gamma_neg": 2.5, "clip": 0.2},
        lambda ref, x, y: ref.asl(x, y, 1.0, 2.5, 0.2),
    ),
    "asl_no_clip": (
        asymmetric_loss,
        (),
        {"gamma_pos": 0.5, "gamma_neg": 3.0, "clip": 0.0},
        lambda ref, x, y: ref.asl(x, y, 0.5, 3.0, 0.0),
    ),
    "asl_detach": (asymmetric_loss, (), {"detach_focal": True}, lambda ref, x, y: ref.asl(x, y, 0.0, 4.0, 0.05)),
    "apl": (asymmetric_polynomial_loss, (), {}, lambda ref, x, y: ref.apl(x, y)),
    "apl_custom": (
        asymmetric_polynomial_loss,
        (),
        {"gamma_pos": 1.0, "gamma_neg": 2.0, "clip": 0.1, "eps_pos": (2.0,), "eps_neg": (0.5, -0.25, 1.0)},
        lambda ref, x, y: ref.apl(x, y, 1.0, 2.0, 0.1, (2.0,), (0.5, -0.25, 1.0)),
    ),
    "hill": (hill_loss, (), {}, lambda ref, x, y: ref.hill(x, y)),
    "hill_custom": (
        hill_loss,
        (),
        {"lam": 2.0, "margin": 0.5, "gamma": 0.5},
        lambda ref, x, y: ref.hill(x, y, 2.0, 0.5, 0.5),
    ),
    "cb_focal": (class_balanced_loss, (COUNTS,), {}, lambda ref, x, y: ref.cb(x, y, COUNTS)),
    "cb_bce": (
        class_balanced_loss,
        (COUNTS,),
        {"base": "bce", "beta": 0.99},
        lambda ref, x, y: ref.cb(x, y, COUNTS, 0.99, "bce"),
    ),
    "db": (
        distribution_balanced_loss,
        (COUNTS, NUM_SAMPLES),
        {},
        lambda ref, x, y: ref.db(x, y, COUNTS, NUM_SAMPLES),
    ),
    "db_focal": (
        distribution_balanced_loss,
        (COUNTS, NUM_SAMPLES),
        {"gamma": 2.0, "map_alpha": 0.2, "map_beta": 5.0, "map_mu": 0.1, "init_bias": 0.1, "neg_scale": 3.0},
        lambda ref, x, y: ref.db(x, y, COUNTS, NUM_SAMPLES, 0.2, 5.0, 0.1, 0.1, 3.0, 2.0),
    ),
}

MODULES = {
    binary_cross_entropy: BinaryCrossEntropyLoss,
    sigmoid_focal_loss: SigmoidFocalLoss,
    asymmetric_loss: AsymmetricLoss,
    asymmetric_polynomial_loss: AsymmetricPolynomialLoss,
    hill_loss: HillLoss,
    class_balanced_loss: ClassBalancedLoss,
    distribution_balanced_loss: DistributionBalancedLoss,
}
SCENARIOS = ("plain", "ignore_nan", "ignore_minus1", "mask", "class_weights")
TOLERANCE = {torch.float32: dict(rtol=1e-5, atol=1e-7), torch.float64: dict(rtol=1e-10, atol=1e-14)}


def make_inputs(seed: int, dtype: torch.dtype):
    """Logits in [-8, 8]; targets mostly 0/1 with a few soft values and a negative-free row."""
    gen = torch.Generator().manual_seed(seed)
    logits = (torch.randn(N, C, generator=gen, dtype=torch.float64) * 3).clamp(-8, 8).to(dtype)
    targets = (torch.rand(N, C, generator=gen, dtype=torch.float64) < 0.4).to(torch.float64)
    targets[0, :3] = torch.tensor([0.3, 0.7, 0.5], dtype=torch.float64)
    targets[1] = 0.0  # a sample without positives (DB's limit case)
    return logits, targets


def scenario_inputs(scenario: str, targets: torch.Tensor):
    """Targets / kwargs for the scenario and the boolean valid mask (N, C) for the reference."""
    gen = torch.Generator().manual_seed(1)
    drop = torch.rand(N, C, generator=gen) < 0.3
    kwargs: dict = {}
    if scenario == "ignore_nan":
        targets = targets.masked_fill(drop, float("nan"))
        kwargs["ignore_value"] = float("nan")
    elif scenario == "ignore_minus1":
        targets = targets.masked_fill(drop, -1.0)
        kwargs["ignore_value"] = -1
    elif scenario == "mask":
        kwargs["mask"] = ~drop
    else:
        drop = torch.zeros(N, C, dtype=torch.bool)
    if scenario == "class_weights":
        kwargs["class_weights"] = CLASS_WEIGHTS
    return targets, kwargs, (~drop).numpy()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_float64_reference(name, scenario, dtype, peer_ref):
    function, extras, options, reference = CASES[name]
    logits, clean_targets = make_inputs(seed=sorted(CASES).index(name), dtype=dtype)
    targets, kwargs, valid = scenario_inputs(scenario, clean_targets)
    x = logits.double().numpy()
    # Ignored / masked targets count as 0 (they matter only in DB's per-sample weights).
    y = np.where(valid, clean_targets.numpy(), 0.0)
    expected_elements = reference(peer_ref, x, y)
    for reduction in ("none", "sum", "mean"):
        got = function(logits, targets.to(dtype), *extras, reduction=reduction, **options, **kwargs)
        expected = peer_ref.reduce(
            expected_elements, valid=valid, class_weights=kwargs.get("class_weights"), reduction=reduction
        )
        assert got.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
        torch.testing.assert_close(got, torch.as_tensor(expected, dtype=got.dtype), **TOLERANCE[dtype])


@pytest.mark.parametrize("name", sorted(CASES))
def test_module_equals_functional(name):
    function, extras, options, _ = CASES[name]
    module = MODULES[function](*extras, **options, class_weights=CLASS_WEIGHTS, ignore_value=-1)
    logits, targets = make_inputs(seed=3, dtype=torch.float32)
    targets[2, 2] = -1
    mask = torch.ones(N, C, dtype=torch.bool)
    mask[3, 0] = False
    expected = function(logits, targets, *extras, **options, class_weights=CLASS_WEIGHTS, ignore_value=-1, mask=mask)
    torch.testing.assert_close(module(logits, targets, mask), expected, rtol=0, atol=0)
    assert module.task == "multilabel"


# ----------------------------------------------------------------------------- identities
def _random(seed=0, n=16, c=6):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, generator=gen, dtype=torch.float64) * 4
    y = torch.rand(n, c, generator=gen, dtype=torch.float64)
    return x, y


def test_bce_equals_torch_bce_with_logits():
    x, y = _random()
    pw = torch.tensor([1.0, 2.0, 3.0, 0.5, 1.0, 4.0], dtype=torch.float64)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(x, y, pos_weight=pw)
    torch.testing.assert_close(binary_cross_entropy(x, y, pos_weight=pw), expected, rtol=1e-12, atol=0)


def test_focal_equals_torchvision_form_for_hard_targets():
    # torchvision.ops.sigmoid_focal_loss, written out: alpha_t * (1 - p_t)^gamma * BCE.
    x, y = _random()
    y = (y > 0.5).double()
    p = torch.sigmoid(x)
    p_t = p * y + (1 - p) * (1 - y)
    alpha_t = 0.25 * y + 0.75 * (1 - y)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(x, y, reduction="none")
    expected = (alpha_t * (1 - p_t) ** 2 * bce).mean()
    torch.testing.assert_close(sigmoid_focal_loss(x, y), expected, rtol=1e-12, atol=0)


def test_asl_with_equal_gammas_and_no_clip_is_focal_without_alpha():
    x, y = _random()
    asl = asymmetric_loss(x, y, gamma_pos=1.5, gamma_neg=1.5, clip=0.0, reduction="none")
    torch.testing.assert_close(asl, sigmoid_focal_loss(x, y, alpha=None, gamma=1.5, reduction="none"))


def test_apl_without_eps_is_asl():
    x, y = _random()
    kwargs = dict(gamma_pos=1.0, gamma_neg=3.0, clip=0.1, reduction="none")
    apl = asymmetric_polynomial_loss(x, y, eps_pos=(), eps_neg=(), **kwargs)
    torch.testing.assert_close(apl, asymmetric_loss(x, y, **kwargs), rtol=1e-12, atol=0)


def test_apl_series_limit_matches_truncated_taylor_series():
    # -log p = sum_m (1-p)^m / m: APL with eps_pos = (e1, e2) equals the series with
    # alpha_m = 1/m + eps_m, truncated far out (|x| <= 2 keeps 1 - p <= 0.89).
    x = torch.linspace(-2, 2, 41, dtype=torch.float64)[:, None]
    y = torch.ones_like(x)
    apl = asymmetric_polynomial_loss(x, y, eps_pos=(0.5, -0.3), reduction="none")
    q = 1 - torch.sigmoid(x)
    series = sum((1.0 / m + {1: 0.5, 2: -0.3}.get(m, 0.0)) * q**m for m in range(1, 400))
    torch.testing.assert_close(apl, series, rtol=1e-10, atol=1e-12)


def test_cb_with_beta_zero_is_unweighted():
    x, y = _random()
    counts = [10, 1000, 3, 7, 0, 50]
    cb = class_balanced_loss(x, y, counts, beta=0.0, gamma=2.0)
    torch.testing.assert_close(cb, sigmoid_focal_loss(x, y, alpha=None, gamma=2.0))
    cb_bce = class_balanced_loss(x, y, counts, beta=0.0, base="bce")
    torch.testing.assert_close(cb_bce, binary_cross_entropy(x, y))


def test_cb_weights_favour_rare_classes_and_average_one():
    x = torch.zeros(1, 3, dtype=torch.float64)
    y = torch.ones(1, 3, dtype=torch.float64)
    per_class = class_balanced_loss(x, y, [1000, 100, 10], beta=0.999, base="bce", reduction="none")[0]
    weights = per_class / math.log(2)  # BCE at x = 0 is log 2 for every class
    assert weights[0] < weights[1] < weights[2]
    torch.testing.assert_close(weights.mean(), torch.tensor(1.0, dtype=torch.float64))


def test_hill_without_margin_or_focus_has_bce_positive_term():
    x, _ = _random()
    y = torch.ones_like(x)
    hill = hill_loss(x, y, margin=0.0, gamma=0.0, reduction="none")
    torch.testing.assert_close(hill, binary_cross_entropy(x, y, reduction="none"))


def test_db_without_regularisation_and_flat_weights_is_bce():
    # map_beta = 0 -> r_hat = map_alpha + 1/2 everywhere; init_bias = 0, neg_scale = 1 -> plain BCE.
    x, y = _random()
    db = distribution_balanced_loss(
        x, y, [5, 6, 7, 8, 9, 10], 100, map_alpha=0.5, map_beta=0.0, init_bias=0.0, neg_scale=1.0
    )
    torch.testing.assert_close(db, binary_cross_entropy(x, y))


def test_db_weights_rare_class_sample_more():
    # One sample with a rare label and one with a head label: r is 1 for both single-label
    # rows, so they get equal weights; a row with both labels down-weights the head label.
    counts = [10000, 10]
    x = torch.zeros(3, 2, dtype=torch.float64)
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    loss = distribution_balanced_loss(x, y, counts, 20000, init_bias=0.0, neg_scale=1.0, reduction="none")
    assert loss[0, 0] == pytest.approx(loss[1, 1].item())
    assert loss[2, 0] < loss[2, 1]


def test_detach_focal_changes_only_the_gradient():
    x, y = _random()
    y = (y > 0.5).double()
    for function in (asymmetric_loss, asymmetric_polynomial_loss):
        a = x.clone().requires_grad_()
        b = x.clone().requires_grad_()
        options = dict(gamma_pos=1.0, gamma_neg=4.0, clip=0.05)
        loss_a = function(a, y, detach_focal=False, **options)
        loss_b = function(b, y, detach_focal=True, **options)
        torch.testing.assert_close(loss_a, loss_b, rtol=0, atol=0)
        loss_a.backward()
        loss_b.backward()
        assert not torch.allclose(a.grad, b.grad)


def test_detach_focal_gradient_matches_hand_derivative():
    # ASL with constant weights: d/dx [w+ softplus(-x)] = w+ (p - 1),
    # d/dx [w- (-log(1 - p_m))] = w- p (1 - p) / (1 - p_m) where p > clip, else 0.
    x, y = _random()
    y = (y > 0.5).double()
    x.requires_grad_()
    asymmetric_loss(x, y, gamma_pos=1.0, gamma_neg=4.0, clip=0.05, detach_focal=True, reduction="sum").backward()
    p = torch.sigmoid(x.detach())
    p_m = (p - 0.05).clamp_min(0)
    grad_pos = (1 - p) * (p - 1)
    grad_neg = torch.where(p > 0.05, p_m**4 * p * (1 - p) / (1 - p_m), torch.zeros_like(p))
    torch.testing.assert_close(x.grad, y * grad_pos + (1 - y) * grad_neg, rtol=1e-10, atol=1e-14)
