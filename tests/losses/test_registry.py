"""The loss registry: every name builds and runs, statistics go only where they are taken,
unknown names are rejected, and ral.losses imports nothing else from ral."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from ral.losses import (
    LOSSES,
    RobustAsymmetricLoss,
    RobustAsymmetricLossSingleLabel,
    build_loss,
    loss_task,
    sigmoid_focal_loss,
)

REQUIRED = {
    "bce",
    "focal",
    "asl",
    "apl",
    "hill",
    "cb",
    "db",
    "ral",
    "ce",
    "focal_ce",
    "ldam",
    "logit_adjusted",
    "balanced_softmax",
    "ral_single",
    "zlpr",
    "twoway",
    "splc",
    "poly_ce",
    "ral_cb",
    "ral_la",
}
COUNTS = [800, 120, 30, 4, 0]
NEEDS_COUNTS = {"cb", "db", "ldam", "logit_adjusted", "balanced_softmax", "ral_cb", "ral_la"}


def test_registry_has_the_contract_names():
    assert set(LOSSES) >= REQUIRED
    assert LOSSES["ral"] is RobustAsymmetricLoss
    assert LOSSES["ral_single"] is RobustAsymmetricLossSingleLabel


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_name_builds_and_runs(name):
    loss = build_loss(name, class_counts=COUNTS, num_samples=1000)
    assert isinstance(loss, LOSSES[name])
    assert loss.task in ("multilabel", "single")
    assert loss_task(name) == loss.task
    logits = torch.randn(6, len(COUNTS), requires_grad=True)
    if loss.task == "multilabel":
        targets = (torch.rand(6, len(COUNTS)) < 0.3).float()
    else:
        targets = torch.randint(0, len(COUNTS), (6,))
    value = loss(logits, targets)
    value.backward()
    assert value.ndim == 0 and torch.isfinite(value)
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("name", sorted(NEEDS_COUNTS))
def test_missing_class_counts_is_a_clear_error(name):
    with pytest.raises(ValueError, match=rf"{name}.*class_counts.*None"):
        build_loss(name, num_samples=1000)


def test_missing_num_samples_is_a_clear_error():
    with pytest.raises(ValueError, match=r"'db'.*num_samples.*None"):
        build_loss("db", class_counts=COUNTS)


def test_statistics_are_passed_only_to_losses_that_take_them():
    # bce takes neither class_counts nor num_samples: passing them is allowed and ignored.
    loss = build_loss("bce", class_counts=COUNTS, num_samples=1000, pos_weight=2.0)
    assert not hasattr(loss, "class_counts") and loss.pos_weight == 2.0
    cb = build_loss("cb", class_counts=COUNTS)
    torch.testing.assert_close(cb.class_counts, torch.tensor(COUNTS, dtype=torch.float32))
    # optional statistics: passed when given, not needed otherwise
    ral = build_loss("ral", class_counts=COUNTS, num_samples=1000)
    assert ral.num_samples == 1000 and ral.class_counts is not None
    assert build_loss("ral").class_counts is None and build_loss("ral_single").class_counts is None


def test_kwargs_reach_the_constructor():
    loss = build_loss("focal", gamma=3.0, alpha=None, reduction="sum")
    logits, targets = torch.randn(4, 3), (torch.rand(4, 3) < 0.5).float()
    expected = sigmoid_focal_loss(logits, targets, gamma=3.0, alpha=None, reduction="sum")
    torch.testing.assert_close(loss(logits, targets), expected, rtol=0, atol=0)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"loss must be one of .*'asl'.*got 'asll'"):
        build_loss("asll")
    with pytest.raises(ValueError, match=r"got 'nope'"):
        loss_task("nope")


def test_per_class_vectors_are_buffers_that_follow_to_and_stay_out_of_state_dict():
    loss = build_loss("ldam", class_counts=COUNTS, class_weights=[1.0] * len(COUNTS))
    assert loss.state_dict() == {}
    loss = loss.to(torch.float64)
    assert loss.class_counts.dtype == torch.float64
    assert loss.class_weights.dtype == torch.float64


def test_losses_import_nothing_else_from_ral_and_the_default_runs_without_a_compiler():
    """In a fresh process: ``ral.losses`` imports no other part of ``ral``, and the default RAL's
    forward + backward imports no compiler (``impl="compiled"`` is opt-in)."""
    code = (
        "import sys, torch, ral.losses\n"
        "x = torch.randn(256, 26, requires_grad=True)\n"
        "ral.losses.RobustAsymmetricLoss()(x, (torch.rand(256, 26) < 0.2).float()).backward()\n"
        "print(' '.join(sorted(m for m in sys.modules if m == 'ral' or m.startswith(('ral.', 'torch._inductor', "
        "'torch._dynamo')))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    imported = result.stdout.split()
    assert "ral.losses" in imported
    outside = [m for m in imported if m != "ral" and m != "ral.losses" and not m.startswith("ral.losses.")]
    assert outside == []
