"""Element-wise accuracy of RAL at confident logits, where 1 - p and log(1 - p) cancel easily."""

import pytest
import torch

from ral.losses import robust_asymmetric_loss

LOGITS = torch.tensor([[-30.0, -15.0, -10.0, -5.0, 0.0, 5.0, 10.0, 15.0, 30.0]])


@pytest.mark.parametrize("positive", [False, True])
def test_bce_like_setting_is_elementwise_accurate(impl, positive):
    # gamma 0, tau 0, no Hill weight, no eps: L = -log p (y=1) or -log(1-p) (y=0).
    targets = torch.full_like(LOGITS, float(positive))
    loss = robust_asymmetric_loss(
        LOGITS, targets, gamma_neg=0.0, tau=0.0, hill=False, eps_pos=(), reduction="none", impl=impl
    )
    x = LOGITS.double()
    expected = torch.nn.functional.softplus(-x if positive else x)
    torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=0.0)


def test_negative_gradient_is_p_for_bce_like_setting(impl):
    logits = LOGITS.clone().requires_grad_(True)
    robust_asymmetric_loss(
        logits,
        torch.zeros_like(logits),
        gamma_neg=0.0,
        tau=0.0,
        hill=False,
        eps_pos=(),
        reduction="sum",
        impl=impl,
    ).backward()
    torch.testing.assert_close(logits.grad.double(), torch.sigmoid(LOGITS.double()), rtol=1e-5, atol=1e-7)
