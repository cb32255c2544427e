"""RobustAsymmetricLoss as an nn.Module: attributes, buffers, masks, registry, inside a user's
torch.compile (slow suite)."""

from __future__ import annotations

import pytest
import torch

from ral.losses import LOSSES, RobustAsymmetricLoss, RobustAsymmetricLossSingleLabel, build_loss


def test_task_and_registry():
    assert RobustAsymmetricLoss.task == "multilabel"
    assert RobustAsymmetricLossSingleLabel.task == "single"
    assert LOSSES["ral"] is RobustAsymmetricLoss and LOSSES["ral_single"] is RobustAsymmetricLossSingleLabel
    assert isinstance(build_loss("ral", class_counts=[3, 4], gamma_neg=2.0), RobustAsymmetricLoss)


def test_class_weights_are_a_buffer_that_follows_the_module():
    loss = RobustAsymmetricLoss(class_weights=[1.0, 2.0, 0.5])
    assert "class_weights" in dict(loss.named_buffers()) and "class_weights" not in loss.state_dict()
    loss = loss.to(torch.float64)
    assert loss.class_weights.dtype == torch.float64
    x = torch.randn(4, 3, dtype=torch.float64)
    y = (torch.rand(4, 3) < 0.5).double()
    expected = RobustAsymmetricLoss(reduction="none")(x, y) * torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    torch.testing.assert_close(loss(x, y), expected.mean())
    assert "weight_form='paper'" in repr(loss)


def test_mask_argument_and_nan_ignore_value():
    x = torch.randn(4, 3)
    y = torch.tensor([[1.0, float("nan"), 0.0]] * 4)
    loss = RobustAsymmetricLoss(ignore_value=float("nan"), reduction="none")
    mask = torch.tensor([[1, 1, 0]] * 4)
    out = loss(x, y, mask=mask)
    assert torch.equal(out[:, 1:], torch.zeros(4, 2))
    full = RobustAsymmetricLoss(reduction="none")(x, torch.nan_to_num(y))
    torch.testing.assert_close(out[:, 0], full[:, 0])
    mean = RobustAsymmetricLoss(ignore_value=float("nan"))(x, y, mask=mask)
    torch.testing.assert_close(mean, full[:, 0].mean())


def _compile_check(backend, impl, fullgraph):
    """The loss inside a user's torch.compile'd code: the outer compiler traces the eager
    formula (the opt-in compiled path steps aside while it is tracing); values and gradients
    unchanged."""
    torch._dynamo.reset()
    criterion = RobustAsymmetricLoss(impl=impl, gamma_pos=0.5, check_targets=False)
    single = RobustAsymmetricLossSingleLabel(impl=impl, check_targets=False)
    compiled = torch.compile(criterion, backend=backend, fullgraph=fullgraph)
    compiled_single = torch.compile(single, backend=backend, fullgraph=fullgraph)
    x = torch.randn(16, 6, requires_grad=True)
    y = (torch.rand(16, 6) < 0.3).float()
    target = torch.randint(0, 6, (16,))
    for loss_fn, eager_fn, t in ((compiled, criterion, y), (compiled_single, single, target)):
        x.grad = None
        loss = loss_fn(x, t)
        loss.backward()
        grad = x.grad.clone()
        x.grad = None
        expected = eager_fn(x, t)
        expected.backward()
        torch.testing.assert_close(loss, expected)
        torch.testing.assert_close(grad, x.grad)


@pytest.mark.slow
def test_inside_a_users_torch_compile_aot_eager(impl):
    """Dynamo + AOTAutograd (no code generation, but seconds of tracing); without target checks
    the loss traces as one graph."""
    _compile_check("aot_eager", impl, fullgraph=True)


@pytest.mark.slow
def test_inside_a_users_torch_compile_inductor(impl):
    """The default backend (Inductor, C++ code generation): slow on a 2-core CPU."""
    _compile_check("inductor", impl, fullgraph=False)
