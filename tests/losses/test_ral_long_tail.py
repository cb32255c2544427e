"""The long-tail variants of RAL: class-balanced RAL (``ral_cb``), logit-adjusted single-label
RAL (``ral_la``) and the prior correction of the multi-label RAL (``prior_tau``), against
float64 formulas written here from the ral_ref / peer_ref fixtures (never from ral.losses).

A handful of settings also check the opt-in compiled path (slow suite: each one compiles)."""

from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn.functional as F

from ral.losses import (
    LOSSES,
    RobustAsymmetricLoss,
    RobustAsymmetricLossClassBalanced,
    RobustAsymmetricLossLogitAdjusted,
    RobustAsymmetricLossSingleLabel,
    build_loss,
    robust_asymmetric_loss_class_balanced,
    robust_asymmetric_loss_logit_adjusted,
)

CONFIGS = {"default": {}, "custom": dict(gamma_pos=1.0, gamma_neg=2.0, tau=0.0, eps_pos=(0.5,))}
N, C = 9, 5
COUNTS = [900.0, 120.0, 30.0, 4.0, 0.0]
NUM_SAMPLES = 1000
CLASS_WEIGHTS = [0.5, 1.0, 2.0, 1.5, 0.25]


def _multilabel_data(seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(N, C, generator=gen, dtype=torch.float64) * 3
    y = (torch.rand(N, C, generator=gen, dtype=torch.float64) < 0.35).double()
    y[0, :2] = torch.tensor([0.3, 0.6], dtype=torch.float64)  # soft targets
    return x.to(dtype), y


def _cb_weights(peer_ref, beta=0.9999):
    return torch.as_tensor(peer_ref.cb_weights(COUNTS, beta))


def _log_odds():
    n = torch.tensor(COUNTS, dtype=torch.float64).clamp(1.0, NUM_SAMPLES - 1.0)
    return torch.log(n / (NUM_SAMPLES - n))


def _log_prior():
    n = torch.tensor(COUNTS, dtype=torch.float64).clamp_min(1.0)
    return torch.log(n / n.sum())


def _cb_reference(refs, x, y, config, balance, beta=0.9999, shift=None):
    """Element-wise class-balanced RAL from the separate L+ and L- of the reference."""
    z = x if shift is None else x + shift
    ral_ref, peer_ref = refs
    positive = ral_ref.ral_multilabel(z, torch.ones_like(y), **config)
    negative = ral_ref.ral_multilabel(z, torch.zeros_like(y), **config)
    w = _cb_weights(peer_ref, beta)
    if balance == "both":
        return w * (y * positive + (1 - y) * negative)
    return y * w * positive + (1 - y) * negative


def _value_and_grad(fn, x):
    x = x.detach().clone().requires_grad_()
    value = fn(x)
    upstream = torch.linspace(0.5, 1.5, value.numel(), dtype=value.dtype).reshape(value.shape)
    (value * upstream).sum().backward()
    return value.detach(), x.grad


def _close(got, want, rtol=1e-10):
    for a, b in zip(got, want):
        torch.testing.assert_close(a.double(), b, rtol=rtol, atol=rtol * b.abs().max().item() + 1e-14)


# ----------------------------------------------------------------------------- ral_cb
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("scenario", ["plain", "mask", "class_weights"])
@pytest.mark.parametrize("balance", ["both", "positive"])
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_class_balanced_matches_reference(config, balance, scenario, reduction, ral_ref, peer_ref):
    x, y = _multilabel_data(seed=1)
    mask = (torch.rand(N, C, generator=torch.Generator().manual_seed(2)) < 0.7) if scenario == "mask" else None
    weights = CLASS_WEIGHTS if scenario == "class_weights" else None
    loss = RobustAsymmetricLossClassBalanced(
        COUNTS, balance=balance, impl="eager", reduction=reduction, class_weights=weights, **CONFIGS[config]
    )
    got = _value_and_grad(lambda z: loss(z, y, mask), x)
    want = _value_and_grad(
        lambda z: ral_ref.reduce(
            _cb_reference((ral_ref, peer_ref), z, y, CONFIGS[config], balance),
            reduction=reduction,
            mask=mask,
            class_weights=weights,
        ),
        x,
    )
    _close(got, want)


def test_class_balanced_weights_are_effective_numbers_with_mean_one(peer_ref):
    loss = RobustAsymmetricLossClassBalanced(COUNTS, cb_beta=0.999)
    weights = loss.balance_weights()
    torch.testing.assert_close(weights, torch.as_tensor(peer_ref.cb_weights(COUNTS, 0.999)), rtol=1e-12, atol=0)
    assert weights.mean().item() == pytest.approx(1.0, rel=1e-12)
    assert torch.all(weights[:-1] <= weights[1:])  # rarer classes weigh more


def test_class_balanced_without_reweighting_or_with_negatives_only_is_ral():
    x, y = _multilabel_data(seed=3)
    plain = RobustAsymmetricLoss(impl="eager", reduction="none")(x, y)
    flat = RobustAsymmetricLossClassBalanced(COUNTS, cb_beta=0.0, impl="eager", reduction="none")(x, y)
    torch.testing.assert_close(flat, plain, rtol=1e-14, atol=0)
    negatives = torch.zeros_like(y)
    positive_only = RobustAsymmetricLossClassBalanced(COUNTS, balance="positive", impl="eager", reduction="none")
    torch.testing.assert_close(
        positive_only(x, negatives), RobustAsymmetricLoss(impl="eager", reduction="none")(x, negatives)
    )


def test_class_balanced_shares_rals_compiled_formula():
    """One formula: the class-balanced loss compiles through the very cache entry of plain RAL."""
    assert RobustAsymmetricLossClassBalanced(COUNTS).compiled_loss() is RobustAsymmetricLoss().compiled_loss()
    assert (
        RobustAsymmetricLossLogitAdjusted(COUNTS).compiled_loss() is RobustAsymmetricLossSingleLabel().compiled_loss()
    )


# ----------------------------------------------------------------------------- prior correction
@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("prior_tau", [1.0, 0.5])
def test_multilabel_prior_correction_matches_reference(prior_tau, config, reduction, ral_ref):
    x, y = _multilabel_data(seed=4)
    loss = build_loss(
        "ral",
        class_counts=COUNTS,
        num_samples=NUM_SAMPLES,
        prior_tau=prior_tau,
        impl="eager",
        reduction=reduction,
        **CONFIGS[config],
    )
    got = _value_and_grad(lambda z: loss(z, y), x)
    want = _value_and_grad(
        lambda z: ral_ref.reduce(
            ral_ref.ral_multilabel(z + prior_tau * _log_odds(), y, **CONFIGS[config]), reduction=reduction
        ),
        x,
    )
    _close(got, want)


def test_prior_correction_composes_with_class_balance(ral_ref, peer_ref):
    x, y = _multilabel_data(seed=5)
    loss = build_loss("ral_cb", class_counts=COUNTS, num_samples=NUM_SAMPLES, prior_tau=1.0, impl="eager")
    want = ral_ref.reduce(_cb_reference((ral_ref, peer_ref), x, y, {}, "positive", shift=_log_odds()))
    torch.testing.assert_close(loss(x, y), want, rtol=1e-10, atol=0)


def test_prior_correction_off_or_at_even_odds_is_plain_ral():
    x, y = _multilabel_data(seed=6)
    plain = RobustAsymmetricLoss(impl="eager")(x, y)
    off = RobustAsymmetricLoss(impl="eager", class_counts=COUNTS, num_samples=NUM_SAMPLES)(x, y)
    torch.testing.assert_close(off, plain, rtol=0, atol=0)
    even = RobustAsymmetricLoss(impl="eager", prior_tau=2.0, class_counts=[50.0] * C, num_samples=100)(x, y)
    torch.testing.assert_close(even, plain, rtol=1e-14, atol=0)


def test_prior_correction_pushes_rare_labels_up():
    """A rare label's training logit is lowered, so its positives pull the raw logit up harder
    (with the plain log positive term, whose slope grows as the logit falls)."""
    x = torch.zeros(1, C, dtype=torch.float64, requires_grad=True)
    loss = RobustAsymmetricLoss(impl="eager", eps_pos=(), prior_tau=1.0, class_counts=COUNTS, num_samples=NUM_SAMPLES)
    loss(x, torch.ones(1, C, dtype=torch.float64)).backward()
    assert torch.all(x.grad[0, :-1] > x.grad[0, 1:])  # more negative (a stronger push up) for rarer labels


# ----------------------------------------------------------------------------- ral_la
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("scenario", ["indices", "ignore_index", "smoothing", "class_weights"])
@pytest.mark.parametrize(("config", "prior_tau"), [("default", 1.0), ("custom", 0.7)])
def test_logit_adjusted_matches_reference(config, prior_tau, scenario, reduction, ral_ref):
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(N, C, generator=gen, dtype=torch.float64) * 2.5
    labels = torch.randint(0, C, (N,), generator=gen)
    targets, kwargs, smoothing, valid = labels, {}, 0.0, torch.ones(N, dtype=torch.float64)
    if scenario == "ignore_index":
        targets = labels.clone()
        targets[[1, 4]] = -100
        valid[[1, 4]] = 0.0
    elif scenario == "smoothing":
        smoothing = kwargs["label_smoothing"] = 0.1
    elif scenario == "class_weights":
        kwargs["class_weights"] = CLASS_WEIGHTS
    q = (F.one_hot(labels, C).double() * (1 - smoothing) + smoothing / C) * valid[:, None]
    loss = RobustAsymmetricLossLogitAdjusted(
        COUNTS, prior_tau=prior_tau, impl="eager", reduction=reduction, **CONFIGS[config], **kwargs
    )
    got = _value_and_grad(lambda z: loss(z, targets), x)
    want = _value_and_grad(
        lambda z: ral_ref.reduce(
            ral_ref.ral_single(z + prior_tau * _log_prior(), q, **CONFIGS[config]),
            reduction=reduction,
            class_weights=kwargs.get("class_weights"),
            mask=valid[:, None].expand(N, C),
            per_sample=True,
        ),
        x,
    )
    _close(got, want)


def test_logit_adjusted_with_uniform_counts_or_tau_zero_is_single_label_ral():
    gen = torch.Generator().manual_seed(8)
    x = torch.randn(N, C, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, C, (N,), generator=gen)
    plain = RobustAsymmetricLossSingleLabel(impl="eager")(x, labels)
    uniform = robust_asymmetric_loss_logit_adjusted(x, labels, [7.0] * C, impl="eager")
    torch.testing.assert_close(uniform, plain, rtol=1e-12, atol=0)
    tau_zero = robust_asymmetric_loss_logit_adjusted(x, labels, COUNTS, prior_tau=0.0, impl="eager")
    torch.testing.assert_close(tau_zero, plain, rtol=0, atol=0)
    # the same correction as an option of ral_single
    option = RobustAsymmetricLossSingleLabel(impl="eager", prior_tau=1.0, class_counts=COUNTS)(x, labels)
    torch.testing.assert_close(option, robust_asymmetric_loss_logit_adjusted(x, labels, COUNTS, impl="eager"))


# ----------------------------------------------------------------------------- compiled path (slow suite)
def _compiled_vs_eager(make, x, target, **call):
    results = []
    for impl in ("compiled", "eager"):
        results.append(_value_and_grad(lambda z, impl=impl: make(impl)(z, target, **call), x))
    (value, grad), (value_e, grad_e) = results
    torch.testing.assert_close(value, value_e, rtol=1e-5, atol=1e-6 * value_e.abs().max().item())
    torch.testing.assert_close(grad, grad_e, rtol=1e-4, atol=1e-6 * grad_e.abs().max().item())


@pytest.mark.slow
def test_compiled_class_balanced_positive_with_mask():
    x, y = _multilabel_data(seed=9, dtype=torch.float32)
    mask = torch.rand(N, C, generator=torch.Generator().manual_seed(10)) < 0.7
    _compiled_vs_eager(
        lambda impl: RobustAsymmetricLossClassBalanced(COUNTS, balance="positive", impl=impl), x, y, mask=mask
    )


@pytest.mark.slow
def test_compiled_class_balanced_both_with_class_weights_and_prior_sum():
    x, y = _multilabel_data(seed=11, dtype=torch.float32)
    _compiled_vs_eager(
        lambda impl: RobustAsymmetricLossClassBalanced(
            COUNTS, num_samples=NUM_SAMPLES, prior_tau=1.0, class_weights=CLASS_WEIGHTS, reduction="sum", impl=impl
        ),
        x,
        y,
    )


@pytest.mark.slow
def test_compiled_logit_adjusted_per_sample():
    gen = torch.Generator().manual_seed(12)
    x = torch.randn(N, C, generator=gen) * 2.5
    labels = torch.randint(0, C, (N,), generator=gen)
    _compiled_vs_eager(
        lambda impl: RobustAsymmetricLossLogitAdjusted(COUNTS, label_smoothing=0.1, reduction="none", impl=impl),
        x,
        labels,
    )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["f16", "bf16"])
def test_variants_finite_at_extreme_logits(dtype, impl):
    x = torch.tensor([[1e4, -1e4, 0.0, 1e4, -1e4], [-1e4, 1e4, 3.0, -2.0, 1e4], [30.0, -30.0, 1e4, 0.5, -0.5]])
    y = torch.tensor([[1.0, 0.0, 1.0, 0.0, 1.0], [0.0, 1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0, 1.0]])
    cases = [
        (RobustAsymmetricLossClassBalanced(COUNTS, num_samples=NUM_SAMPLES, prior_tau=1.0, impl=impl), y),
        (RobustAsymmetricLossLogitAdjusted(COUNTS, impl=impl), torch.tensor([1, 0, 4])),
    ]
    for loss, target in cases:
        logits = x.to(dtype).requires_grad_()
        value = loss(logits, target)
        value.backward()
        assert value.dtype == torch.float32 and torch.isfinite(value)
        assert logits.grad.dtype == dtype and torch.isfinite(logits.grad).all()


# ----------------------------------------------------------------------------- options and registry
@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: RobustAsymmetricLossClassBalanced(COUNTS, cb_beta=1.0), r"cb_beta.*1\.0"),
        (lambda: RobustAsymmetricLossClassBalanced(COUNTS, balance="negative"), r"balance.*'negative'"),
        (lambda: RobustAsymmetricLossClassBalanced(None), r"class_counts must be given.*got None"),
        (lambda: RobustAsymmetricLossClassBalanced([3, -1]), r"class_counts.*-1"),
        (lambda: RobustAsymmetricLoss(prior_tau=-1.0), r"prior_tau.*-1\.0"),
        (lambda: RobustAsymmetricLoss(prior_tau=1.0), r"prior_tau > 0 needs class_counts.*got None"),
        (lambda: RobustAsymmetricLoss(prior_tau=1.0, class_counts=COUNTS), r"prior_tau > 0 needs num_samples"),
        (lambda: RobustAsymmetricLoss(class_counts=COUNTS, num_samples=100), r"num_samples must be >= every"),
        (lambda: RobustAsymmetricLossSingleLabel(prior_tau=1.0), r"prior_tau > 0 needs class_counts"),
        (lambda: RobustAsymmetricLossLogitAdjusted(COUNTS, prior_tau=-0.5), r"prior_tau.*-0\.5"),
        (lambda: build_loss("ral_la"), r"loss 'ral_la' needs class_counts"),
        (lambda: build_loss("ral_cb"), r"loss 'ral_cb' needs class_counts"),
    ],
)
def test_bad_options_are_rejected(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


def test_single_label_variants_take_no_num_samples():
    with pytest.raises(TypeError, match="num_samples"):
        RobustAsymmetricLossSingleLabel(num_samples=10)
    with pytest.raises(TypeError, match="num_samples"):
        RobustAsymmetricLossLogitAdjusted(COUNTS, num_samples=NUM_SAMPLES)


def test_counts_of_the_wrong_length_are_rejected_at_call_time():
    with pytest.raises(ValueError, match=r"class_counts must have 3 entries"):
        robust_asymmetric_loss_class_balanced(torch.zeros(2, 3), torch.zeros(2, 3), [5, 6])
    with pytest.raises(ValueError, match=r"class_counts must have 3 entries"):
        robust_asymmetric_loss_logit_adjusted(torch.zeros(2, 3), torch.tensor([0, 1]), [5, 6])


def test_registry_statistics():
    assert (
        LOSSES["ral_cb"] is RobustAsymmetricLossClassBalanced and LOSSES["ral_la"] is RobustAsymmetricLossLogitAdjusted
    )
    assert LOSSES["ral_cb"].statistics == ("class_counts",) and LOSSES["ral_la"].statistics == ("class_counts",)
    assert set(LOSSES["ral"].optional_statistics) == {"class_counts", "num_samples"}
    loss = build_loss("ral", class_counts=COUNTS, num_samples=NUM_SAMPLES, prior_tau=1.0)
    assert loss.num_samples == NUM_SAMPLES and loss.class_counts.tolist() == COUNTS
    assert build_loss("ral_cb", class_counts=COUNTS, num_samples=NUM_SAMPLES).num_samples == NUM_SAMPLES
    assert "prior_tau=1.0" in repr(build_loss("ral_la", class_counts=COUNTS))
    assert "balance='positive'" in repr(build_loss("ral_cb", class_counts=COUNTS))
    options = {name: set(inspect.signature(LOSSES[name]).parameters) for name in ("ral_cb", "ral_la", "ral")}
    assert {"cb_beta", "balance", "prior_tau", "gamma_neg", "beta", "impl", "num_samples"} <= options["ral_cb"]
    assert {"prior_tau", "label_smoothing", "tau", "lam"} <= options["ral_la"] and "num_samples" not in options[
        "ral_la"
    ]
    assert {"prior_tau", "class_counts", "num_samples"} <= options["ral"]
