"""Single-label RAL (softmax): reference values and gradients, target forms, label smoothing,
ignore_index, class weights, extreme logits, gradcheck."""

from __future__ import annotations

import pytest
import torch

from ral.losses import RobustAsymmetricLossSingleLabel, robust_asymmetric_loss_single_label

CONFIGS = {
    "default": {},
    "official_weight": dict(weight_form="official-code"),
    "hill_off_tau0": dict(hill=False, tau=0.0, gamma_pos=1.0),
    "fractional": dict(gamma_pos=0.5, gamma_neg=1.5),
    "series": dict(alpha=(1.0, 0.5), beta=(1.0, 0.5, 0.25), gamma_neg=2.0),
    "gamma_neg_0": dict(gamma_neg=0.0, eps_neg=(0.3,)),
}


def _data(dtype=torch.float64, n=11, c=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, generator=gen, dtype=torch.float64) * 2.5
    target = torch.randint(0, c, (n,), generator=gen)
    return x.to(dtype), target


def _reference(ral_ref, x, onehot, config, reduction, class_weights=None, valid_rows=None):
    x64 = x.detach().double().requires_grad_()
    mask = None if valid_rows is None else valid_rows[:, None].expand_as(onehot)
    loss = ral_ref.reduce(
        ral_ref.ral_single(x64, onehot.double(), **{**ral_ref.PAPER, **config}),
        reduction=reduction,
        class_weights=class_weights,
        mask=mask,
        per_sample=True,
    )
    upstream = torch.linspace(0.5, 1.5, loss.numel(), dtype=torch.float64).reshape(loss.shape)
    (loss * upstream).sum().backward()
    return loss.detach(), x64.grad


def _run(x, target, config, reduction, impl, **kwargs):
    x = x.detach().clone().requires_grad_()
    loss = robust_asymmetric_loss_single_label(x, target, reduction=reduction, impl=impl, **config, **kwargs)
    upstream = torch.linspace(0.5, 1.5, loss.numel(), dtype=torch.float64).reshape(loss.shape)
    (loss * upstream.to(loss.dtype)).sum().backward()
    return loss.detach(), x.grad


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_reference(name, reduction, impl, dtype, ral_ref):
    x, target = _data(dtype)
    onehot = torch.nn.functional.one_hot(target, x.shape[1]).double()
    ref_loss, ref_grad = _reference(ral_ref, x, onehot, CONFIGS[name], reduction)
    loss, grad = _run(x, target, CONFIGS[name], reduction, impl)
    rtol = 1e-5 if dtype == torch.float32 else 1e-10
    # log_softmax in float32 is exact to ~1e-7 * max|x|: per-sample losses near 0 need an atol
    torch.testing.assert_close(loss.double(), ref_loss, rtol=rtol, atol=rtol * 0.1 * ref_loss.abs().max().item())
    torch.testing.assert_close(grad.double(), ref_grad, rtol=rtol * 10, atol=rtol * ref_grad.abs().max().item())


def test_one_hot_equals_class_indices_and_smoothing_matches_reference(impl, ral_ref):
    x, target = _data()
    onehot = torch.nn.functional.one_hot(target, x.shape[1]).double()
    by_index = robust_asymmetric_loss_single_label(x, target, impl=impl)
    torch.testing.assert_close(robust_asymmetric_loss_single_label(x, onehot, impl=impl), by_index)
    smoothed = robust_asymmetric_loss_single_label(x, target, label_smoothing=0.1, impl=impl)
    soft = onehot * 0.9 + 0.1 / x.shape[1]
    ref, _ = _reference(ral_ref, x, soft, {}, "mean")
    torch.testing.assert_close(smoothed, ref, rtol=1e-10, atol=0)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_ignore_index_and_class_weights(impl, reduction, ral_ref):
    x, target = _data(seed=3)
    target[[1, 4]] = -100
    weights = torch.tensor([0.5, 1.0, 2.0, 0.1, 1.5], dtype=torch.float64)  # float64 stays float64
    valid = target != -100
    onehot = torch.nn.functional.one_hot(target.clamp_min(0), x.shape[1]).double() * valid[:, None]
    ref_loss, ref_grad = _reference(ral_ref, x, onehot, {}, reduction, class_weights=weights, valid_rows=valid.double())
    loss, grad = _run(x, target, {}, reduction, impl, class_weights=weights)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-9, atol=1e-14)
    assert torch.equal(grad[1], torch.zeros(5, dtype=torch.float64))


@pytest.mark.parametrize("config", [{}, dict(tau=0.0, gamma_pos=0.5, gamma_neg=0.5), dict(weight_form="official-code")])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_finite_at_extreme_logits(impl, config, dtype):
    """A confidently wrong softmax (p_c = 1 in floating point for a negative class) stays finite."""
    x = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0], [0.0, 0.0, 0.0], [60.0, -60.0, 59.0]]).to(dtype)
    target = torch.tensor([1, 0, 2, 1])
    x.requires_grad_()
    loss = robust_asymmetric_loss_single_label(x, target, impl=impl, **config)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


def test_confident_mistake_costs_its_logit_gap_with_tau_zero():
    """tau = 0, no focusing, no Hill weight: the wrong class's -log(1 - p_c) is the logit gap."""
    x = torch.tensor([[1e4, -1e4]], dtype=torch.float64)
    loss = robust_asymmetric_loss_single_label(
        x, torch.tensor([1]), tau=0.0, gamma_neg=0.0, hill=False, eps_pos=(), reduction="sum"
    )
    torch.testing.assert_close(loss, torch.tensor(4e4, dtype=torch.float64))  # 2e4 (positive) + 2e4 (negative)


@pytest.mark.parametrize("config", [{}, dict(alpha=(1.0, 0.5), gamma_pos=1.0), dict(tau=0.0, gamma_neg=1.5)])
def test_gradcheck(impl, config):
    x, target = _data(n=4, c=4, seed=5)
    x.requires_grad_()

    def fn(logits):
        return robust_asymmetric_loss_single_label(logits, target, impl=impl, reduction="none", **config)

    assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-7)


def test_module_attributes_and_validation():
    loss = RobustAsymmetricLossSingleLabel(label_smoothing=0.1)
    assert loss.task == "single"
    preset = RobustAsymmetricLossSingleLabel.from_preset("official-code")
    assert isinstance(preset, RobustAsymmetricLossSingleLabel) and preset.reduction == "sum"
    with pytest.raises(ValueError, match="label_smoothing.*1.0"):
        RobustAsymmetricLossSingleLabel(label_smoothing=1.0)
    with pytest.raises(ValueError, match="at least 2 classes"):
        loss(torch.zeros(3, 1), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="class indices"):
        loss(torch.zeros(3, 4), torch.tensor([0, 4, 1]))
