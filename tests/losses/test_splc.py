"""SPLC against the float64 formula (the peer_ref fixture) and the Hill paper's released code
(the ral_ref fixture), before and after its correction epoch, with masks, ignore values and weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ral.losses import HillLoss, SPLCLoss, build_loss, splc_loss

N, C = 8, 5
CLASS_WEIGHTS = [0.5, 1.0, 2.0, 1.5, 0.25]
TOLERANCE = {torch.float32: dict(rtol=1e-5, atol=1e-7), torch.float64: dict(rtol=1e-10, atol=1e-14)}


def make_inputs(seed: int, dtype: torch.dtype = torch.float64):
    """Logits in [-6, 6] (many negatives above the threshold) and 0/1 targets with soft ones."""
    gen = torch.Generator().manual_seed(seed)
    logits = (torch.randn(N, C, generator=gen, dtype=torch.float64) * 2.5).clamp(-6, 6)
    targets = (torch.rand(N, C, generator=gen, dtype=torch.float64) < 0.4).double()
    targets[0, :2] = torch.tensor([0.3, 0.8], dtype=torch.float64)
    return logits.to(dtype), targets


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("scenario", ["plain", "ignore_minus1", "mask", "class_weights"])
@pytest.mark.parametrize(
    ("epoch", "options"),
    [(0, {}), (1, {}), (5, {"threshold": 0.3, "margin": 0.5, "gamma": 0.5, "correction_epoch": 3})],
    ids=["before", "from_epoch_1", "custom"],
)
def test_matches_float64_reference(epoch, options, scenario, dtype, peer_ref):
    logits, clean = make_inputs(epoch, dtype)
    drop = torch.rand(N, C, generator=torch.Generator().manual_seed(2)) < 0.3
    targets, kwargs = clean, {}
    valid = np.ones((N, C), dtype=bool)
    if scenario == "ignore_minus1":
        targets, kwargs, valid = clean.masked_fill(drop, -1.0), {"ignore_value": -1}, (~drop).numpy()
    elif scenario == "mask":
        kwargs, valid = {"mask": ~drop}, (~drop).numpy()
    elif scenario == "class_weights":
        kwargs = {"class_weights": CLASS_WEIGHTS}
    correcting = epoch >= options.get("correction_epoch", 1)
    reference_options = {k: v for k, v in options.items() if k != "correction_epoch"}
    y = np.where(valid, clean.numpy(), 0.0)
    elements = peer_ref.splc(logits.double().numpy(), y, correcting, **reference_options)
    for reduction in ("none", "sum", "mean"):
        got = splc_loss(logits, targets.to(dtype), epoch=epoch, reduction=reduction, **options, **kwargs)
        expected = peer_ref.reduce(
            elements, valid=valid, class_weights=kwargs.get("class_weights"), reduction=reduction
        )
        torch.testing.assert_close(got, torch.as_tensor(expected, dtype=got.dtype), **TOLERANCE[dtype])


@pytest.mark.parametrize("epoch", [0, 1, 4])
def test_equals_the_released_code(epoch, ral_ref):
    logits, targets = make_inputs(7)
    targets = (targets > 0.5).double()
    x = logits.clone().requires_grad_()
    x_ref = logits.clone().requires_grad_()
    got = splc_loss(x, targets, epoch=epoch, reduction="sum")
    expected = ral_ref.official_splc(x_ref, targets, epoch)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=0)
    got.backward()
    expected.backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-10, atol=1e-14)


def test_follows_the_trainers_epoch(peer_ref):
    logits, targets = make_inputs(8)
    loss = build_loss("splc", correction_epoch=2)
    before = loss(logits, targets)
    loss.set_epoch(1)
    assert not loss.correcting
    torch.testing.assert_close(loss(logits, targets), before, rtol=0, atol=0)
    loss.set_epoch(2)
    assert loss.correcting and loss.epoch == 2
    corrected = loss(logits, targets)
    expected = peer_ref.reduce(peer_ref.splc(logits.numpy(), targets.numpy(), True))
    torch.testing.assert_close(corrected, torch.tensor(expected, dtype=torch.float64), rtol=1e-10, atol=0)
    assert corrected.item() != before.item()


def test_positive_term_is_hills_and_threshold_one_never_corrects():
    logits, targets = make_inputs(9)
    positives = torch.ones_like(targets)
    torch.testing.assert_close(
        splc_loss(logits, positives, reduction="none"), HillLoss(reduction="none")(logits, positives), rtol=0, atol=0
    )
    torch.testing.assert_close(splc_loss(logits, targets, epoch=9, threshold=1.0), splc_loss(logits, targets))


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: SPLCLoss(threshold=1.5), r"threshold.*1\.5"),
        (lambda: SPLCLoss(correction_epoch=-1), r"correction_epoch must be an int >= 0, got -1"),
        (lambda: SPLCLoss(correction_epoch=1.0), r"correction_epoch.*1\.0"),
        (lambda: SPLCLoss(margin=-1), r"margin.*-1"),
        (lambda: SPLCLoss(gamma=-0.5), r"gamma.*-0\.5"),
        (lambda: SPLCLoss().set_epoch(-3), r"epoch must be an int >= 0, got -3"),
    ],
)
def test_bad_options_are_rejected(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()
