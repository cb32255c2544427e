"""RAL (eager; compiled in the slow suite) against the independent float64 reference: values and gradients,
every reduction, both forms, both negative weights, hill on/off, masks, class weights."""

from __future__ import annotations

import pytest
import torch

import ral.losses._common as common
from ral.losses import RobustAsymmetricLoss, robust_asymmetric_loss

# name -> keyword arguments of the loss (the reference takes the same names)
CONFIGS = {
    "default": {},
    "paper_explicit": dict(gamma_pos=0.0, gamma_neg=4.0, tau=0.05, lam=1.5, eps_pos=(-1.0, 1.25), eps_neg=()),
    "official_weight": dict(weight_form="official-code"),
    "hill_off": dict(hill=False),
    "tau0": dict(tau=0.0),
    "tau0_gamma_frac": dict(tau=0.0, gamma_pos=0.5, gamma_neg=1.5),
    "gamma_pos": dict(gamma_pos=2.0),
    "gamma_frac": dict(gamma_pos=0.5, gamma_neg=0.5),
    "gamma_neg_0": dict(gamma_neg=0.0),
    "gamma_neg_1": dict(gamma_neg=1.0),
    "gamma_neg_2": dict(gamma_neg=2.0),
    "gamma_neg_5": dict(gamma_neg=5.0),
    "eps_empty": dict(eps_pos=(), eps_neg=()),
    "eps_long": dict(eps_pos=(0.5, -0.3, 0.2), eps_neg=(0.4, -0.1)),
    "eps_neg_one": dict(eps_neg=(0.3,), hill=False),
    "series": dict(alpha=(1.0, 0.5, 0.25), beta=(1.0, 0.5)),
    "series_one_term": dict(alpha=(1.0,), beta=(2.0,), gamma_neg=1.5),
    "series_tau0": dict(alpha=(1.0, 0.5), beta=(1.0, 0.5, 0.3), tau=0.0, gamma_pos=1.0),
    "series_pos_only": dict(alpha=(1.0, 0.5, 1 / 3)),
    "series_official": dict(beta=(1.0, 0.5), weight_form="official-code", gamma_pos=1.0),
    "big_tau": dict(tau=0.4, gamma_neg=3.0, lam=2.0),
}
REDUCTIONS = ("mean", "sum", "none")


def _data(dtype, n=9, c=7, seed=0, soft=False):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, generator=gen, dtype=torch.float64) * 3
    y = torch.rand(n, c, generator=gen, dtype=torch.float64)
    if not soft:
        y = (y < 0.35).double()
    return x.to(dtype), y.to(dtype)


def _reference(ral_ref, x, y, config, reduction, mask=None, class_weights=None):
    x64 = x.detach().double().requires_grad_()
    loss = ral_ref.reduce(
        ral_ref.ral_multilabel(x64, y.double(), **config), reduction=reduction, mask=mask, class_weights=class_weights
    )
    _backward(loss, seed=1)
    return loss.detach(), x64.grad


def _backward(loss, seed):
    """Backpropagate a fixed random upstream gradient for "none" (the loss itself otherwise)."""
    if loss.ndim == 0:
        loss.backward()
    else:
        weights = torch.rand(loss.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        (loss * weights.to(loss.dtype)).sum().backward()


def _run(x, y, config, reduction, impl, **kwargs):
    x = x.detach().clone().requires_grad_()
    loss = robust_asymmetric_loss(x, y, reduction=reduction, impl=impl, **config, **kwargs)
    _backward(loss, seed=1)
    return loss.detach(), x.grad


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
def test_matches_reference(name, impl, dtype, soft, ral_ref):
    config = CONFIGS[name]
    x, y = _data(dtype, soft=soft)
    rtol = 1e-5 if dtype == torch.float32 else 1e-10
    for reduction in REDUCTIONS:
        ref_loss, ref_grad = _reference(ral_ref, x, y, config, reduction)
        loss, grad = _run(x, y, config, reduction, impl)
        assert loss.dtype == dtype and grad.dtype == dtype
        scale = ref_loss.abs().max().item()
        torch.testing.assert_close(loss.double(), ref_loss, rtol=rtol, atol=rtol * scale * 1e-2)
        gscale = ref_grad.abs().max().item()
        torch.testing.assert_close(grad.double(), ref_grad, rtol=rtol * 10, atol=rtol * gscale)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["default", "official_weight", "series", "tau0_gamma_frac"])
def test_mask_ignore_and_class_weights(name, reduction, impl, ral_ref):
    config = CONFIGS[name]
    x, y = _data(torch.float64, soft=True, seed=3)
    gen = torch.Generator().manual_seed(4)
    mask = torch.rand(x.shape, generator=gen) < 0.7
    weights = torch.rand(x.shape[1], generator=gen, dtype=torch.float64)  # float64 weights stay float64
    y_ignored = torch.where(torch.rand(x.shape, generator=gen) < 0.2, torch.nan, y)
    valid = mask & ~torch.isnan(y_ignored)
    ref_loss, ref_grad = _reference(
        ral_ref, x, torch.nan_to_num(y_ignored), config, reduction, mask=valid, class_weights=weights
    )
    loss, grad = _run(
        x, y_ignored, config, reduction, impl, mask=mask, class_weights=weights, ignore_value=float("nan")
    )
    torch.testing.assert_close(loss, ref_loss, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", ["default", "official_weight", "series", "gamma_frac", "tau0"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_inputs_match_reference(name, reduction, dtype, impl, ral_ref):
    """Half-precision logits: computed in float32, gradient returned in the input dtype; equal
    to the reference at the rounded logits."""
    config = CONFIGS[name]
    x, y = _data(dtype)
    ref_loss, ref_grad = _reference(ral_ref, x, y.double(), config, reduction)
    loss, grad = _run(x, y, config, reduction, impl)
    assert loss.dtype == torch.float32 and grad.dtype == dtype
    torch.testing.assert_close(loss.double(), ref_loss, rtol=1e-5, atol=1e-7 * ref_loss.abs().max().item())
    tol = 1e-2 if dtype == torch.float16 else 2e-2  # one rounding of the gradient
    torch.testing.assert_close(grad.double(), ref_grad, rtol=tol, atol=tol * ref_grad.abs().max().item())


def test_module_matches_functional(impl):
    x, y = _data(torch.float32)
    module = RobustAsymmetricLoss(gamma_pos=1.0, eps_neg=(0.2,), impl=impl, class_weights=[1.0] * 7)
    expected = robust_asymmetric_loss(x, y, gamma_pos=1.0, eps_neg=(0.2,), impl=impl)
    torch.testing.assert_close(module(x, y), expected)


@pytest.mark.slow
def test_large_masked_batch_compiled_equals_eager():
    """A batch larger than any vector width or thread chunk of the generated kernel."""
    x, y = _data(torch.float64, n=700, c=100, seed=7, soft=True)
    mask = torch.rand(x.shape, generator=torch.Generator().manual_seed(8)) < 0.9
    for reduction in REDUCTIONS:
        compiled = _run(x, y, {}, reduction, "compiled", mask=mask)
        eager = _run(x, y, {}, reduction, "eager", mask=mask)
        torch.testing.assert_close(compiled[0], eager[0], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(compiled[1], eager[1], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", ["default", "series", "gamma_frac"])
def test_row_blocks_equal_the_whole_batch(name, monkeypatch, ral_ref):
    """The eager path differentiates the formula block of rows by block of rows (keeping one
    slope per element): blocks of one row give the reference values and gradients."""
    monkeypatch.setattr(common, "BLOCK_ELEMENTS", 1)
    x, y = _data(torch.float64, soft=True, seed=5)
    mask = torch.rand(x.shape, generator=torch.Generator().manual_seed(6)) < 0.8
    for reduction in REDUCTIONS:
        ref_loss, ref_grad = _reference(ral_ref, x, y, CONFIGS[name], reduction, mask=mask)
        loss, grad = _run(x, y, CONFIGS[name], reduction, "eager", mask=mask)
        torch.testing.assert_close(loss, ref_loss, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(grad, ref_grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("block_elements", [1, 1 << 18], ids=["blocks", "one_block"])
def test_second_derivatives_of_the_eager_default(block_elements, monkeypatch):
    """create_graph=True differentiates the formula afresh: second derivatives are exact."""
    monkeypatch.setattr(common, "BLOCK_ELEMENTS", block_elements)
    gen = torch.Generator().manual_seed(2)
    x = (torch.randn(4, 5, generator=gen, dtype=torch.float64) * 2).requires_grad_()
    y = torch.rand(4, 5, generator=gen, dtype=torch.float64)

    def loss(logits):
        return robust_asymmetric_loss(logits, y, gamma_pos=1.0, reduction="none")

    assert torch.autograd.gradgradcheck(loss, (x,), eps=1e-6, atol=1e-6)
