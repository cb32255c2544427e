"""ZLPR and the two-way loss against independent float64 formulas (the peer_ref fixture) and the
two-way loss's released code (the ral_ref fixture), with masks, ignore values and soft targets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ral.losses import TwoWayLoss, ZLPRLoss, build_loss, two_way_loss, zlpr_loss
from ral.losses.pairwise import log_sum_exp

N, C = 7, 5
TOLERANCE = {torch.float32: dict(rtol=1e-5, atol=1e-6), torch.float64: dict(rtol=1e-10, atol=1e-12)}


def make_inputs(seed: int, dtype: torch.dtype = torch.float64, *, soft: bool = True):
    """Logits in [-6, 6]; 0/1 targets with a few soft ones, a row without positives, one without negatives."""
    gen = torch.Generator().manual_seed(seed)
    logits = (torch.randn(N, C, generator=gen, dtype=torch.float64) * 2.5).clamp(-6, 6)
    targets = (torch.rand(N, C, generator=gen, dtype=torch.float64) < 0.4).double()
    targets[1] = 0.0
    targets[2] = 1.0
    if soft:
        targets[0, :3] = torch.tensor([0.3, 0.7, 0.5], dtype=torch.float64)
    return logits.to(dtype), targets


SCENARIOS = ("plain", "ignore_nan", "mask")


def scenario_inputs(scenario: str, targets: torch.Tensor):
    """(targets, kwargs, valid) for a scenario; valid is the (N, C) numpy mask of counted elements."""
    drop = torch.rand(N, C, generator=torch.Generator().manual_seed(1)) < 0.3
    if scenario == "ignore_nan":
        return targets.masked_fill(drop, float("nan")), {"ignore_value": float("nan")}, (~drop).numpy()
    if scenario == "mask":
        return targets, {"mask": ~drop}, (~drop).numpy()
    return targets, {}, np.ones((N, C), dtype=bool)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_zlpr_matches_reference(scenario, dtype, peer_ref):
    logits, clean = make_inputs(0, dtype)
    targets, kwargs, valid = scenario_inputs(scenario, clean)
    per_sample = peer_ref.zlpr(logits.double().numpy(), np.where(valid, clean.numpy(), 0.0), valid)
    rows = valid.any(axis=1)
    expected = {
        "none": np.where(rows, per_sample, 0.0),
        "sum": per_sample.sum(),
        "mean": per_sample.sum() / max(rows.sum(), 1),
    }
    for reduction, want in expected.items():
        got = zlpr_loss(logits, targets.to(dtype), reduction=reduction, **kwargs)
        torch.testing.assert_close(got, torch.as_tensor(want, dtype=got.dtype), **TOLERANCE[dtype])
    assert zlpr_loss(logits, targets.to(dtype), reduction="none", **kwargs).shape == (N,)


def test_zlpr_mean_counts_only_samples_with_a_valid_element():
    logits, targets = make_inputs(2)
    mask = torch.ones(N, C, dtype=torch.bool)
    mask[3] = False
    per_sample = zlpr_loss(logits, targets, mask=mask, reduction="none")
    assert per_sample[3] == 0.0
    torch.testing.assert_close(zlpr_loss(logits, targets, mask=mask), per_sample.sum() / (N - 1))


def test_zlpr_hard_targets_equal_the_papers_pairwise_form():
    # log(1 + sum_neg e^x) + log(1 + sum_pos e^-x) with one positive and one negative is
    # 2 softplus-like terms: softplus(x_neg) + softplus(-x_pos).
    x = torch.tensor([[2.0, -1.0]], dtype=torch.float64)
    y = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    expected = torch.nn.functional.softplus(torch.tensor(-1.0)) + torch.nn.functional.softplus(torch.tensor(-2.0))
    torch.testing.assert_close(zlpr_loss(x, y), expected.double())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("temperatures", [(4.0, 1.0), (1.0, 1.0), (0.5, 2.0)], ids=["paper", "ones", "custom"])
def test_two_way_matches_reference(scenario, dtype, temperatures, peer_ref):
    t_pos, t_neg = temperatures
    logits, clean = make_inputs(3, dtype)
    targets, kwargs, valid = scenario_inputs(scenario, clean)
    y = np.where(valid, clean.numpy(), 0.0)
    for reduction in ("mean", "sum"):
        expected = peer_ref.two_way(logits.double().numpy(), y, valid, t_pos, t_neg, reduction)
        got = two_way_loss(
            logits, targets.to(dtype), temperature_pos=t_pos, temperature_neg=t_neg, reduction=reduction, **kwargs
        )
        torch.testing.assert_close(got, torch.as_tensor(expected, dtype=got.dtype), **TOLERANCE[dtype])


def test_two_way_equals_the_released_code_for_hard_targets(ral_ref):
    logits, targets = make_inputs(4, soft=False)
    for t_pos, t_neg in ((4.0, 1.0), (2.0, 0.5)):
        x = logits.clone().requires_grad_()
        x_ref = logits.clone().requires_grad_()
        got = TwoWayLoss(temperature_pos=t_pos, temperature_neg=t_neg)(x, targets)
        expected = ral_ref.official_two_way_loss(x_ref, targets, t_pos, t_neg)
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=0)
        got.backward()
        expected.backward()
        torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-10, atol=1e-14)


def test_two_way_at_unit_temperatures_is_the_pairwise_softmax_loss():
    # l(S) = log(1 + sum_{p, n} e^{x_n - x_p}) for one row with positives {0, 1}, negatives {2, 3}
    x = torch.tensor([[1.0, -0.5, 0.3, -2.0]], dtype=torch.float64)
    y = torch.tensor([[1.0, 1.0, 0.0, 0.0]], dtype=torch.float64)
    pairs = sum(torch.exp(x[0, n] - x[0, p]) for p in (0, 1) for n in (2, 3))
    # one sample term, and the class terms of columns 0 and 1 (one positive, no negative) are 0
    torch.testing.assert_close(two_way_loss(x, y, temperature_pos=1.0, temperature_neg=1.0), torch.log1p(pairs))


@pytest.mark.parametrize("loss", [ZLPRLoss(), TwoWayLoss()], ids=["zlpr", "twoway"])
def test_sets_without_positives_or_negatives_have_zero_finite_gradient(loss):
    x = torch.tensor([[1e4, -1e4, 3.0], [-1e4, 2.0, 1e4]], requires_grad=True)
    y = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    value = loss(x, y)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all()


def test_log_sum_exp_is_exact_weighted_and_safe_when_empty():
    z = torch.tensor([[1e4, 0.0, -3.0], [5.0, 6.0, 7.0]], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([[1.0, 0.5, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    out = log_sum_exp(z, w, dim=1)
    assert out[0].item() == pytest.approx(1e4, rel=1e-15) and out[1].item() == -np.inf
    out[0].backward()
    assert torch.isfinite(z.grad).all() and z.grad[0, 0].item() == pytest.approx(1.0)
    small = torch.tensor([[0.5, -1.0]], dtype=torch.float64)
    expected = np.log(2 * np.exp(0.5) + 0.25 * np.exp(-1.0))
    weights = torch.tensor([[2.0, 0.25]], dtype=torch.float64)
    assert log_sum_exp(small, weights, dim=1).item() == pytest.approx(expected, rel=1e-14)


def test_options_are_validated():
    with pytest.raises(ValueError, match=r"temperature_pos must be > 0, got 0"):
        TwoWayLoss(temperature_pos=0)
    with pytest.raises(ValueError, match=r"temperature_neg must be a finite number >= 0, got -1"):
        TwoWayLoss(temperature_neg=-1)
    with pytest.raises(ValueError, match=r"reduction must be 'mean' or 'sum' for twoway.*'none'"):
        TwoWayLoss(reduction="none")
    for name in ("zlpr", "twoway"):
        with pytest.raises(ValueError, match=r"takes no class_weights.*\[1\.0, 2\.0\]"):
            build_loss(name, class_weights=[1.0, 2.0])
