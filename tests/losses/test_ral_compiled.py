"""The compiled fast path of RAL equals the eager formula on a representative set of settings
(the full matrices run with `make test-slow`), and behaves like a plain autograd loss."""

from __future__ import annotations

import pytest
import torch
from test_ral_invariants import EXTREME_CONFIGS, _extreme_logits
from test_ral_reference import CONFIGS, REDUCTIONS, _data, _run
from test_ral_single import CONFIGS as SINGLE_CONFIGS

import ral.losses._fast as fast
from ral.losses import RobustAsymmetricLoss, RobustAsymmetricLossSingleLabel, robust_asymmetric_loss_single_label

# one reduction per setting, rotating, so every setting and every reduction is compiled once
MULTILABEL_CASES = [(name, REDUCTIONS[i % 3]) for i, name in enumerate(sorted(CONFIGS))]


def _close(compiled, eager, rtol=1e-6):
    torch.testing.assert_close(compiled[0], eager[0], rtol=rtol, atol=rtol * eager[0].abs().max().item())
    torch.testing.assert_close(compiled[1], eager[1], rtol=rtol * 10, atol=rtol * eager[1].abs().max().item())


@pytest.mark.parametrize(("name", "reduction"), MULTILABEL_CASES)
def test_multilabel_settings(name, reduction):
    x, y = _data(torch.float32, soft=True)
    _close(_run(x, y, CONFIGS[name], reduction, "compiled"), _run(x, y, CONFIGS[name], reduction, "eager"))


@pytest.mark.parametrize(("name", "reduction"), [(n, REDUCTIONS[i % 3]) for i, n in enumerate(sorted(SINGLE_CONFIGS))])
def test_single_label_settings(name, reduction):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(11, 5, generator=gen) * 2.5
    target = torch.randint(0, 5, (11,), generator=gen)
    target[3] = -100
    results = []
    for impl in ("compiled", "eager"):
        xx = x.clone().requires_grad_()
        loss = robust_asymmetric_loss_single_label(
            xx,
            target,
            impl=impl,
            reduction=reduction,
            label_smoothing=0.1,
            class_weights=[1.0, 2.0, 0.5, 1.0, 3.0],
            **SINGLE_CONFIGS[name],
        )
        upstream = torch.linspace(0.5, 1.5, loss.numel()).reshape(loss.shape)
        (loss * upstream).sum().backward()
        results.append((loss.detach(), xx.grad))
    _close(*results)


@pytest.mark.parametrize(
    "config", EXTREME_CONFIGS[:5], ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "default"
)
@pytest.mark.parametrize("detach_focal", [False, True])
def test_finite_and_equal_at_extreme_logits(config, detach_focal):
    x, y = _extreme_logits(torch.bfloat16)
    results = []
    for impl in ("compiled", "eager"):
        xx = x.clone().requires_grad_()
        loss = RobustAsymmetricLoss(impl=impl, detach_focal=detach_focal, **config)(xx, y)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(xx.grad).all()
        results.append((loss.detach(), xx.grad.float()))
    _close(*results, rtol=1e-2)


def test_mask_ignore_and_class_weights():
    x, y = _data(torch.float32, soft=True, seed=3)
    gen = torch.Generator().manual_seed(4)
    mask = torch.rand(x.shape, generator=gen) < 0.7
    y = torch.where(torch.rand(x.shape, generator=gen) < 0.2, torch.nan, y)
    kwargs = dict(mask=mask, class_weights=torch.rand(x.shape[1], generator=gen).tolist(), ignore_value=float("nan"))
    _close(_run(x, y, {}, "mean", "compiled", **kwargs), _run(x, y, {}, "mean", "eager", **kwargs))


@pytest.mark.parametrize("single", [False, True])
def test_gradcheck(single):
    gen = torch.Generator().manual_seed(1)
    x = (torch.randn(4, 5, generator=gen, dtype=torch.float64) * 2).requires_grad_()
    if single:
        loss = RobustAsymmetricLossSingleLabel(reduction="none", gamma_pos=1.0)
        target = torch.tensor([0, 4, 2, 1])
    else:
        loss = RobustAsymmetricLoss(reduction="none", weight_form="official-code", gamma_pos=1.0)
        target = torch.rand(4, 5, generator=gen, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda logits: loss(logits, target), (x,), eps=1e-6, atol=1e-7)


def test_behaves_like_an_autograd_loss():
    loss = RobustAsymmetricLoss()
    x = torch.randn(6, 4, requires_grad=True)
    y = (torch.rand(6, 4) < 0.5).float()
    value = loss(x, y)
    (first,) = torch.autograd.grad(value, x, retain_graph=True)
    (second,) = torch.autograd.grad(value, x)  # the saved gradient is not consumed
    torch.testing.assert_close(first, second)
    value = loss(x, y)
    with pytest.raises(RuntimeError, match="no second derivatives.*impl='eager'"):
        torch.autograd.grad(value, x, create_graph=True)
    with torch.no_grad():  # no gradient needed: the eager formula, same value
        torch.testing.assert_close(loss(x, y), value.detach())
    other = torch.randn(13, 4, requires_grad=True)  # a new batch size recompiles, same values
    torch.testing.assert_close(
        loss(other, torch.zeros(13, 4)), RobustAsymmetricLoss(impl="eager")(other, torch.zeros(13, 4))
    )


def test_falls_back_to_eager_with_one_warning_without_a_compiler(monkeypatch):
    """The real failure: Inductor cannot find its C++ compiler."""
    import torch._inductor.config as inductor_config

    monkeypatch.setattr(fast, "_unavailable", None)
    x = torch.randn(5, 3, requires_grad=True)
    y = (torch.rand(5, 3) < 0.5).float()
    no_compiler = inductor_config.patch({"cpp.cxx": ("no-such-c++-compiler",), "fx_graph_cache": False})
    with no_compiler, pytest.warns(RuntimeWarning, match="compiled fast path is unavailable.*eager formula"):
        value = RobustAsymmetricLoss(gamma_neg=3.125)(x, y)
    torch.testing.assert_close(value, RobustAsymmetricLoss(gamma_neg=3.125, impl="eager")(x, y))
    assert fast._unavailable is not None and not fast.can_use_fast_path(x)
    value.backward()
    assert torch.isfinite(x.grad).all()


def test_a_kernel_that_disagrees_with_the_eager_formula_is_not_used(monkeypatch):
    """Each new kernel is checked once against the eager formula (guards against compiler bugs)."""

    def wrong_kernel(self, given, present):
        return lambda *tensors: [torch.zeros(()), torch.zeros_like(tensors[0])]

    monkeypatch.setattr(fast.CompiledLoss, "_compile", wrong_kernel)
    monkeypatch.setattr(fast, "_unavailable", None)
    x = torch.randn(7, 3, requires_grad=True)
    y = (torch.rand(7, 3) < 0.5).float()
    with pytest.warns(RuntimeWarning, match="compiled value differs from the eager formula"):
        value = RobustAsymmetricLoss(gamma_neg=2.5)(x, y)
    torch.testing.assert_close(value, RobustAsymmetricLoss(gamma_neg=2.5, impl="eager")(x, y))


def test_errors_that_are_not_compiler_failures_propagate(monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(fast, "_unavailable", None)
    monkeypatch.setattr(fast, "_SavedGradient", type("Broken", (), {"apply": staticmethod(out_of_memory)}))
    with pytest.raises(RuntimeError, match="out of memory"):
        RobustAsymmetricLoss()(torch.randn(2, 3, requires_grad=True), torch.zeros(2, 3))
    assert fast._unavailable is None
