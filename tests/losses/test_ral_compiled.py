"""The opt-in compiled path of RAL (``impl="compiled"``) behaves like a plain autograd loss,
falls back to the eager formula where it cannot compile, and refuses a kernel that disagrees
with the eager formula. Slow suite only (each setting compiles); its values are checked against
the reference with the eager path in test_ral_reference.py, test_ral_single.py and
test_ral_invariants.py (their ``impl`` fixture)."""

from __future__ import annotations

import pytest
import torch

import ral.losses._fast as fast
from ral.losses import RobustAsymmetricLoss

pytestmark = pytest.mark.slow


def test_behaves_like_an_autograd_loss():
    loss = RobustAsymmetricLoss(impl="compiled")
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
        value = RobustAsymmetricLoss(gamma_neg=3.125, impl="compiled")(x, y)
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
        value = RobustAsymmetricLoss(gamma_neg=2.5, impl="compiled")(x, y)
    torch.testing.assert_close(value, RobustAsymmetricLoss(gamma_neg=2.5, impl="eager")(x, y))


def test_errors_that_are_not_compiler_failures_propagate(monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(fast, "_unavailable", None)
    monkeypatch.setattr(fast, "_SavedGradient", type("Broken", (), {"apply": staticmethod(out_of_memory)}))
    with pytest.raises(RuntimeError, match="out of memory"):
        RobustAsymmetricLoss(impl="compiled")(torch.randn(2, 3, requires_grad=True), torch.zeros(2, 3))
    assert fast._unavailable is None
