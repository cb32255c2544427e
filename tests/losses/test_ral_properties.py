"""Hypothesis property tests of RAL: finite loss and gradient for any valid configuration and
any finite logits; non-negative where the maths guarantees it; compiled equals eager."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ral.losses import robust_asymmetric_loss, robust_asymmetric_loss_single_label

gammas = st.floats(0.0, 5.0)
small_coefficients = st.lists(st.floats(-2.0, 2.0), max_size=3).map(tuple)
positive_series = st.lists(st.floats(0.0, 2.0), min_size=1, max_size=3).map(tuple)
logit_values = st.one_of(st.floats(-1e4, 1e4), st.sampled_from([-1e4, -100.0, 0.0, 100.0, 1e4]))
configs = st.fixed_dictionaries(
    {
        "gamma_pos": gammas,
        "gamma_neg": gammas,
        "tau": st.floats(0.0, 0.9),
        "lam": st.floats(1.0, 3.0),
        "eps_pos": small_coefficients,
        "eps_neg": small_coefficients,
        "alpha": st.one_of(st.none(), positive_series),
        "beta": st.one_of(st.none(), positive_series),
        "hill": st.booleans(),
        "weight_form": st.sampled_from(["paper", "official-code"]),
        "detach_focal": st.booleans(),
    }
)
#: A RAL setting, logits (any finite values, extremes included), a seed for the soft targets, a dtype.
MULTILABEL_EXAMPLES = dict(
    config=configs,
    values=st.lists(logit_values, min_size=1, max_size=8),
    seed=st.integers(0, 99),
    dtype=st.sampled_from([torch.float32, torch.float16, torch.bfloat16]),
)
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _inputs(values, seed):
    x = torch.tensor(values, dtype=torch.float32).reshape(-1, 1).repeat(1, 3)
    y = torch.rand(x.shape, generator=torch.Generator().manual_seed(seed))
    return x, y


def _loss_and_grad(x, y, impl, config):
    xx = x.clone().requires_grad_()
    loss = robust_asymmetric_loss(xx, y, impl=impl, **config)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(xx.grad).all()
    return loss.detach(), xx.grad.float()


@SETTINGS
@given(**MULTILABEL_EXAMPLES)
def test_finite_loss_and_gradient(config, values, seed, dtype):
    x, y = _inputs(values, seed)
    _loss_and_grad(x.to(dtype), y, "eager", config)


@pytest.mark.slow
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**MULTILABEL_EXAMPLES)
def test_compiled_equals_eager(config, values, seed, dtype):
    """Every example compiles a new setting (about 2 s): slow suite only."""
    x, y = _inputs(values, seed)
    x = x.to(dtype)
    compiled, eager = (_loss_and_grad(x, y, impl, config) for impl in ("compiled", "eager"))
    torch.testing.assert_close(compiled[0], eager[0], rtol=1e-4, atol=1e-5)
    scale = eager[1].abs().max().item()
    tol = 1e-4 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(compiled[1], eager[1], rtol=tol, atol=tol * scale + 1e-9)


@SETTINGS
@given(config=configs, values=st.lists(st.floats(-50.0, 50.0), min_size=1, max_size=8), seed=st.integers(0, 99))
def test_non_negative_where_guaranteed(config, values, seed):
    """Hill weight on with lam >= 1 (or off), no eps perturbation, non-negative series
    coefficients: every term is a product of non-negative factors."""
    config = {**config, "eps_pos": (), "eps_neg": ()}
    x, y = _inputs(values, seed)
    loss = robust_asymmetric_loss(x.double(), y.double(), reduction="none", **config)
    assert (loss >= 0).all()


@SETTINGS
@given(config=configs, values=st.lists(logit_values, min_size=2, max_size=6), seed=st.integers(0, 99))
def test_single_label_finite(config, values, seed):
    x = torch.tensor(values, dtype=torch.float32).reshape(1, -1).repeat(2, 1)
    target = torch.randint(0, x.shape[1], (2,), generator=torch.Generator().manual_seed(seed))
    for impl in ("eager",):
        xx = x.clone().requires_grad_()
        loss = robust_asymmetric_loss_single_label(xx, target, impl=impl, **config)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(xx.grad).all()
