"""The spec's invariants of RAL: BCE limit, ASL equivalence, series/log agreement, presets,
fractional gammas, and finite values / gradients at the extremes (both implementations)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import ral.losses._common as common
from ral.losses import RobustAsymmetricLoss, robust_asymmetric_loss

HARMONIC = tuple(1.0 / m for m in range(1, 1001))


def _grid(low=-4.0, high=4.0, n=41, dtype=torch.float64):
    x = torch.linspace(low, high, n, dtype=dtype)
    x = torch.stack([x, x.flip(0)])
    y = torch.zeros_like(x)
    y[0, ::2] = 1.0
    y[1, 1::2] = 1.0
    return x, y


def test_series_limit_is_bce(impl):
    """alpha_m = 1/m, beta_n = 1/n, M = N = 1000, gammas 0, tau 0, no Hill weight -> BCE."""
    x, y = _grid()
    loss = robust_asymmetric_loss(
        x,
        y,
        alpha=HARMONIC,
        beta=HARMONIC,
        gamma_pos=0.0,
        gamma_neg=0.0,
        tau=0.0,
        hill=False,
        reduction="none",
        impl=impl,
    )
    bce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    assert (loss - bce).abs().max().item() < 1e-4


@pytest.mark.parametrize("gammas", [(0.0, 4.0), (1.0, 2.0), (0.5, 1.5)])
@pytest.mark.parametrize("tau", [0.0, 0.05, 0.2])
def test_log_form_without_hill_and_eps_is_asl(impl, gammas, tau, ral_ref):
    x, y = _grid(-8, 8)
    gamma_pos, gamma_neg = gammas
    loss = robust_asymmetric_loss(
        x,
        y,
        gamma_pos=gamma_pos,
        gamma_neg=gamma_neg,
        tau=tau,
        hill=False,
        eps_pos=(),
        eps_neg=(),
        reduction="none",
        impl=impl,
    )
    expected = ral_ref.asl(x, y, gamma_pos=gamma_pos, gamma_neg=gamma_neg, clip=tau)
    torch.testing.assert_close(loss, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "params",
    [
        dict(),
        dict(gamma_pos=1.0, gamma_neg=2.0, tau=0.0),
        dict(gamma_pos=0.5, gamma_neg=0.5, eps_neg=(0.3, -0.2), weight_form="official-code"),
    ],
)
def test_series_and_log_forms_agree(impl, params):
    """alpha_m = 1/m + eps_pos[m] (1/m beyond), same for beta: the series converges to the log form."""
    m = 400
    log_kwargs = {"eps_pos": (-1.0, 1.25), "eps_neg": (), **params}
    eps_pos, eps_neg = log_kwargs.pop("eps_pos"), log_kwargs.pop("eps_neg")
    alpha = [1.0 / k for k in range(1, m + 1)]
    beta = list(alpha)
    for k, e in enumerate(eps_pos):
        alpha[k] += e
    for k, e in enumerate(eps_neg):
        beta[k] += e
    x, y = _grid(-3, 3)
    log_form = robust_asymmetric_loss(x, y, eps_pos=eps_pos, eps_neg=eps_neg, reduction="none", impl=impl, **log_kwargs)
    series = robust_asymmetric_loss(x, y, alpha=alpha, beta=beta, reduction="none", impl=impl, **log_kwargs)
    q_max = torch.sigmoid(torch.tensor(3.0)).item()
    tail = q_max ** (m + 1) / ((m + 1) * (1 - q_max)) * 1.5  # sum_{k>M} q^k / k, times max |w|
    assert (log_form - series).abs().max().item() <= tail + 1e-12


def test_paper_preset_is_the_default(ral_ref):
    paper = RobustAsymmetricLoss.from_preset("paper")
    default = RobustAsymmetricLoss()
    assert paper.params == default.params and paper.reduction == "mean"
    x, y = _grid()
    torch.testing.assert_close(paper(x, y), default(x, y))
    expected = ral_ref.reduce(ral_ref.ral_multilabel(x, y, **ral_ref.PAPER))
    torch.testing.assert_close(paper(x, y), expected, rtol=1e-10, atol=0)


def test_official_code_preset_matches_the_released_ralloss(impl, ral_ref):
    loss = RobustAsymmetricLoss.from_preset("official-code", impl=impl)
    assert loss.reduction == "sum" and loss.params.weight_form == "official-code"
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 26, generator=gen, dtype=torch.float64) * 4
    y = (torch.rand(16, 26, generator=gen) < 0.2).double()
    torch.testing.assert_close(loss(x, y), ral_ref.official_ralloss(x, y), rtol=1e-10, atol=0)


def test_official_code_preset_differs_from_eq6():
    x, y = _grid()
    official = RobustAsymmetricLoss.from_preset("official-code", reduction="mean")
    assert (official(x, y) - RobustAsymmetricLoss()(x, y)).abs().item() > 1e-3


def test_preset_overrides_and_bad_name():
    loss = RobustAsymmetricLoss.from_preset("paper", gamma_neg=2.0, reduction="sum")
    assert loss.params.gamma_neg == 2.0 and loss.reduction == "sum"
    with pytest.raises(ValueError, match="preset.*'nope'"):
        RobustAsymmetricLoss.from_preset("nope")


@pytest.mark.parametrize("gammas", [(0.5, 0.5), (0.25, 1.5), (1.5, 0.75)])
@pytest.mark.parametrize("tau", [0.0, 0.05])
def test_fractional_gammas_match_reference(impl, gammas, tau, ral_ref):
    x, y = _grid(-6, 6, n=37)  # includes logits with p <= tau
    x = x + 0.013  # keep p - tau away from exactly 0, where a fractional power has no slope
    x.requires_grad_()
    kwargs = dict(gamma_pos=gammas[0], gamma_neg=gammas[1], tau=tau)
    loss = robust_asymmetric_loss(x, y, impl=impl, **kwargs)
    loss.backward()
    x_ref = x.detach().clone().requires_grad_()
    expected = ral_ref.reduce(ral_ref.ral_multilabel(x_ref, y, **{**ral_ref.PAPER, **kwargs}))
    expected.backward()
    torch.testing.assert_close(loss, expected, rtol=1e-10, atol=0)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-8, atol=1e-12)


EXTREME_CONFIGS = [
    {},
    dict(weight_form="official-code"),
    dict(gamma_pos=0.5, gamma_neg=0.5),
    dict(gamma_pos=0.25, gamma_neg=0.75, tau=0.0),
    dict(gamma_neg=0.0, tau=0.0),
    dict(gamma_neg=0.0),
    dict(alpha=(1.0, 0.5), beta=(1.0, 0.5), gamma_pos=0.5, gamma_neg=0.5),
    dict(alpha=(1.0,), beta=(1.0,), gamma_neg=1.5, tau=0.0),
    dict(hill=False, eps_neg=(0.5,), gamma_neg=0.3),
]


def _extreme_logits(dtype):
    values = torch.tensor([-1e4, -500.0, -100.0, -30.0, -3.0, -2.9444, 0.0, 3.0, 30.0, 100.0, 500.0, 1e4])
    x = torch.stack([values, values.flip(0)]).to(dtype)
    y = torch.zeros(x.shape)
    y[0, ::2] = 1.0
    y[1, 1::2] = 1.0
    return x, y


@pytest.mark.parametrize(
    "config", EXTREME_CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "default"
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("detach_focal", [False, True])
def test_finite_at_extreme_logits_and_where_p_below_tau(impl, config, dtype, detach_focal):
    """|x| up to 1e4 (p = 0 or 1 in floating point) and p <= tau: finite value and gradient."""
    x, y = _extreme_logits(dtype)
    x.requires_grad_()
    for reduction in ("mean", "sum", "none"):
        x.grad = None
        loss = robust_asymmetric_loss(x, y, impl=impl, reduction=reduction, detach_focal=detach_focal, **config)
        loss.sum().backward()
        assert torch.isfinite(loss).all(), loss
        assert torch.isfinite(x.grad).all(), x.grad


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_finite_under_autocast(impl, dtype):
    """Under CPU autocast (logits produced by a half-precision matmul) the loss runs in float32."""
    layer = torch.nn.Linear(4, 12)
    with torch.no_grad():
        layer.weight.mul_(3e3)
    features = torch.randn(8, 4)
    y = (torch.rand(8, 12) < 0.3).float()
    with torch.autocast("cpu", dtype=dtype):
        logits = layer(features)
        loss = RobustAsymmetricLoss(impl=impl, gamma_pos=0.5)(logits, y)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(layer.weight.grad).all()


def test_gradient_is_zero_not_nan_where_p_tau_is_zero(impl):
    """Every logit with p <= tau: the focal factor p_tau^gamma_neg (fractional) is 0, and so is
    the slope of the negative term."""
    x = torch.full((3, 4), -5.0, requires_grad=True)  # p = 0.0067 < tau = 0.05
    y = torch.zeros(3, 4)
    loss = robust_asymmetric_loss(x, y, gamma_neg=0.5, impl=impl)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(x.grad, torch.zeros_like(x.grad))


GRADCHECK_PARAMS = [
    dict(),
    dict(weight_form="official-code", gamma_pos=1.0),
    dict(tau=0.0, gamma_pos=0.5, gamma_neg=1.5, eps_neg=(0.2,)),
    dict(alpha=(1.0, 0.5), beta=(1.0, 0.3), gamma_pos=1.0),
    dict(hill=False, gamma_neg=0.0),
]


def _gradcheck_data():
    gen = torch.Generator().manual_seed(1)
    x = (torch.randn(4, 5, generator=gen, dtype=torch.float64) * 2).requires_grad_()
    return x, torch.rand(4, 5, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize("params", GRADCHECK_PARAMS)
def test_gradcheck(impl, params):
    x, y = _gradcheck_data()

    def fn(logits):
        return robust_asymmetric_loss(logits, y, impl=impl, reduction="none", **params)

    assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("params", GRADCHECK_PARAMS)
def test_gradcheck_with_detach_focal(impl, params, ral_ref):
    """With detach_focal the gradient is, by design, the derivative of the loss whose focusing
    weights are frozen at the current logits x0. gradcheck compares the implementation's
    backward with finite differences of exactly that function (reference formula, weights
    evaluated at x0), so it checks the detached gradient numerically."""
    x0, y = _gradcheck_data()
    full = {**ral_ref.PAPER, **params}
    gamma_pos, gamma_neg, tau = full["gamma_pos"], full["gamma_neg"], full["tau"]
    with torch.no_grad():
        p0 = torch.sigmoid(x0)
        focal_pos = torch.sigmoid(-x0) ** gamma_pos
        focal_neg = torch.clamp(p0 - tau, min=0) ** gamma_neg

    def frozen_reference(x):
        unfocused = {**full, "gamma_pos": 0.0, "gamma_neg": 0.0}
        pos = ral_ref.ral_multilabel(x, torch.ones_like(y), **unfocused)
        neg = ral_ref.ral_multilabel(x, torch.zeros_like(y), **unfocused)
        return y * focal_pos * pos + (1 - y) * focal_neg * neg

    class Frozen(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return frozen_reference(x)

        @staticmethod
        def backward(ctx, grad_out):
            (x,) = ctx.saved_tensors
            with torch.enable_grad():
                xx = x.detach().requires_grad_()
                loss = robust_asymmetric_loss(xx, y, impl=impl, detach_focal=True, reduction="none", **params)
                (grad,) = torch.autograd.grad(loss, xx, grad_out)
            return grad

    torch.testing.assert_close(Frozen.apply(x0), robust_asymmetric_loss(x0, y, reduction="none", **params))
    assert torch.autograd.gradcheck(Frozen.apply, (x0,), eps=1e-6, atol=1e-7)


def test_detach_focal_drops_only_the_focal_slope():
    """detach_focal changes the gradient (not the value) and matches a detached reference."""
    gen = torch.Generator().manual_seed(2)
    x = (torch.randn(6, 5, generator=gen, dtype=torch.float64) * 2).requires_grad_()
    y = (torch.rand(6, 5, generator=gen) < 0.4).double()
    kwargs = dict(gamma_pos=1.0, gamma_neg=2.0, tau=0.05)
    attached = robust_asymmetric_loss(x, y, **kwargs)
    detached = robust_asymmetric_loss(x, y, detach_focal=True, **kwargs)
    torch.testing.assert_close(attached, detached)
    (g_att,) = torch.autograd.grad(attached, x)
    (g_det,) = torch.autograd.grad(detached, x)
    assert (g_att - g_det).abs().max() > 1e-4
    # reference: focal weights computed without gradient
    xr = x.detach().clone().requires_grad_()
    p = torch.sigmoid(xr)
    p_tau = torch.clamp(p - 0.05, min=0)
    focal_pos = (1 - p).detach() ** 1.0
    focal_neg = p_tau.detach() ** 2.0
    l_pos = focal_pos * (-F.logsigmoid(xr) - (1 - p) + 1.25 * (1 - p) ** 2)
    l_neg = (1.5 - p) * focal_neg * -torch.log1p(-p_tau)
    (y * l_pos + (1 - y) * l_neg).mean().backward()
    torch.testing.assert_close(g_det, xr.grad, rtol=1e-10, atol=1e-14)


def test_empty_and_fully_masked_batches_give_zero_with_gradient(impl):
    x = torch.randn(0, 5, requires_grad=True)
    loss = robust_asymmetric_loss(x, torch.zeros(0, 5), impl=impl)
    loss.backward()
    assert loss.item() == 0.0 and x.grad.shape == (0, 5)
    x = torch.randn(3, 5, requires_grad=True)
    loss = robust_asymmetric_loss(x, torch.full((3, 5), -1.0), ignore_value=-1, impl=impl)
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(x.grad, torch.zeros(3, 5))


def test_input_is_not_modified(impl):
    x = torch.randn(5, 4, requires_grad=True)
    y = (torch.rand(5, 4) < 0.5).float()
    x_before, y_before = x.detach().clone(), y.clone()
    robust_asymmetric_loss(x, y, impl=impl).backward()
    assert torch.equal(x.detach(), x_before) and torch.equal(y, y_before)


def test_no_grad_and_eval_paths_agree():
    x = torch.randn(6, 5)
    y = (torch.rand(6, 5) < 0.5).float()
    with_grad = robust_asymmetric_loss(x.clone().requires_grad_(), y)
    with torch.no_grad():
        without = robust_asymmetric_loss(x, y)
    torch.testing.assert_close(with_grad.detach(), without)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_row_blocks_stay_finite_at_extreme_logits_and_under_autocast(dtype, monkeypatch):
    """The block-by-block slopes of a large multi-label batch (here blocks of one row) keep
    loss and gradient finite wherever the whole-batch formula does."""
    monkeypatch.setattr(common, "BLOCK_ELEMENTS", 1)
    x, y = _extreme_logits(dtype)
    for config in EXTREME_CONFIGS:
        logits = x.clone().requires_grad_()
        loss = robust_asymmetric_loss(logits, y, **config)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(logits.grad).all(), config
    layer = torch.nn.Linear(4, 12)
    with torch.no_grad():
        layer.weight.mul_(3e3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = RobustAsymmetricLoss(gamma_pos=0.5)(layer(torch.randn(8, 4)), (torch.rand(8, 12) < 0.3).float())
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss) and torch.isfinite(layer.weight.grad).all()
