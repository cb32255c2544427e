"""Every bad RAL argument raises ValueError naming the argument and the received value."""

from __future__ import annotations

import pytest
import torch

from ral.losses import (
    RobustAsymmetricLoss,
    RobustAsymmetricLossSingleLabel,
    robust_asymmetric_loss,
    robust_asymmetric_loss_single_label,
)

BAD_ARGUMENTS = [
    (dict(gamma_pos=-1.0), r"gamma_pos.*-1\.0"),
    (dict(gamma_neg=-0.5), r"gamma_neg.*-0\.5"),
    (dict(gamma_neg=float("nan")), r"gamma_neg.*nan"),
    (dict(gamma_pos="two"), r"gamma_pos.*'two'"),
    (dict(tau=-0.1), r"tau.*-0\.1"),
    (dict(tau=1.0), r"tau.*1\.0"),
    (dict(lam=0.5), r"lam.*hill.*0\.5"),
    (dict(lam=float("inf")), r"lam.*inf"),
    (dict(lam="x"), r"lam.*'x'"),
    (dict(eps_pos="ab"), r"eps_pos.*'ab'"),
    (dict(eps_pos=(1.0, float("nan"))), r"eps_pos.*nan"),
    (dict(eps_neg=(None,)), r"eps_neg.*None"),
    (dict(alpha=()), r"alpha.*\(\)"),
    (dict(alpha=("a",)), r"alpha.*'a'"),
    (dict(beta=[]), r"beta.*\[\]"),
    (dict(beta=5.0), r"beta.*5\.0"),
    (dict(hill="yes"), r"hill.*'yes'"),
    (dict(detach_focal=1), r"detach_focal.*1"),
    (dict(reduction="avg"), r"reduction.*'avg'"),
    (dict(impl="cuda"), r"impl.*'cuda'"),
    (dict(weight_form="other"), r"weight_form.*'other'"),
    (dict(class_weights=[1.0, 2.0]), r"class_weights.*4.*2"),
    (dict(class_weights=[1.0, -1.0, 1.0, 1.0]), r"class_weights.*-1\.0"),
]


@pytest.mark.parametrize("kwargs,message", BAD_ARGUMENTS, ids=lambda v: str(v)[:40])
def test_functional_rejects(kwargs, message):
    with pytest.raises(ValueError, match=message):
        robust_asymmetric_loss(torch.zeros(3, 4), torch.zeros(3, 4), **kwargs)
    with pytest.raises(ValueError, match=message):
        robust_asymmetric_loss_single_label(torch.zeros(3, 4), torch.zeros(3, dtype=torch.long), **kwargs)


@pytest.mark.parametrize("kwargs,message", BAD_ARGUMENTS, ids=lambda v: str(v)[:40])
def test_module_rejects_at_construction_or_first_call(kwargs, message):
    for cls in (RobustAsymmetricLoss, RobustAsymmetricLossSingleLabel):
        with pytest.raises(ValueError, match=message):
            loss = cls(**kwargs)
            target = torch.zeros(3, 4) if cls.task == "multilabel" else torch.zeros(3, dtype=torch.long)
            loss(torch.zeros(3, 4), target)


def test_lam_below_one_is_allowed_without_hill():
    loss = robust_asymmetric_loss(torch.zeros(2, 3), torch.zeros(2, 3), lam=0.5, hill=False)
    assert torch.isfinite(loss)


def test_bad_inputs(impl):
    with pytest.raises(ValueError, match=r"targets.*\(3, 4\).*\(3, 5\)"):
        robust_asymmetric_loss(torch.zeros(3, 4), torch.zeros(3, 5), impl=impl)
    with pytest.raises(ValueError, match=r"logits.*shape.*\(12,\)"):
        robust_asymmetric_loss(torch.zeros(12), torch.zeros(12), impl=impl)
    with pytest.raises(ValueError, match=r"targets must be in \[0, 1\].*2\.0"):
        robust_asymmetric_loss(torch.zeros(2, 2), torch.tensor([[0.0, 2.0], [1.0, 0.0]]), impl=impl)
    with pytest.raises(ValueError, match=r"targets must be in \[0, 1\].*nan"):
        robust_asymmetric_loss(torch.zeros(1, 2), torch.tensor([[0.0, float("nan")]]), impl=impl)
    with pytest.raises(ValueError, match=r"mask.*\(2, 2\).*\(2, 3\)"):
        robust_asymmetric_loss(torch.zeros(2, 2), torch.zeros(2, 2), mask=torch.ones(2, 3), impl=impl)
    with pytest.raises(ValueError, match=r"logits.*floating.*int64"):
        robust_asymmetric_loss(torch.zeros(2, 2, dtype=torch.long), torch.zeros(2, 2), impl=impl)


def test_bad_preset_names():
    for cls in (RobustAsymmetricLoss, RobustAsymmetricLossSingleLabel):
        with pytest.raises(ValueError, match=r"preset.*'Paper'"):
            cls.from_preset("Paper")
