"""On a CUDA GPU (`pytest -m gpu`; skipped without one): RAL on the device equals the CPU result,
autocast stays finite at extreme logits, the training step never waits for the device, a short
training run on the simulated set, and prediction with autocast."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ral.engine import train
from ral.engine.inference import load_eval_table, load_trained_model, predict_probabilities
from ral.engine.module import ClassifierModule
from ral.losses import RobustAsymmetricLoss

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def _batch(n: int = 256, c: int = 26, scale: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, c, generator=generator) * scale
    y = (torch.rand(n, c, generator=generator) < 0.2).float()
    y[torch.rand(n, c, generator=generator) < 0.1] = math.nan  # ignored
    return x, y


def _value_and_grad(loss: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    leaf = x.detach().clone().requires_grad_()
    value = loss(leaf, y)
    value.backward()
    return value.detach().cpu(), leaf.grad.cpu()


@pytest.mark.parametrize("impl", ["compiled", "eager"])
def test_ral_on_cuda_equals_the_cpu_result(impl):
    x, y = _batch()
    loss = RobustAsymmetricLoss(ignore_value=math.nan, impl=impl)
    cpu = _value_and_grad(loss, x, y)
    cuda = _value_and_grad(loss.cuda(), x.cuda(), y.cuda())
    torch.testing.assert_close(cuda[0], cpu[0], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(cuda[1], cpu[1], rtol=1e-4, atol=1e-8)
    outer = torch.compile(RobustAsymmetricLoss(ignore_value=math.nan, impl=impl).cuda())  # inside a user's compile
    compiled = _value_and_grad(outer, x.cuda(), y.cuda())
    torch.testing.assert_close(compiled[0], cpu[0], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(compiled[1], cpu[1], rtol=1e-4, atol=1e-8)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_autocast_stays_finite_at_logits_of_1e4_with_a_grad_scaler(dtype):
    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 26).cuda()
    with torch.no_grad():
        layer.weight.mul_(1e4 / layer.weight.abs().max())
    inputs = torch.sign(torch.randn(64, 8, device="cuda"))
    _, targets = _batch(64)
    targets = targets.cuda()
    optimizer = torch.optim.SGD(layer.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype is torch.float16)
    loss_fn = RobustAsymmetricLoss(ignore_value=math.nan).cuda()
    for _ in range(3):
        with torch.autocast("cuda", dtype=dtype):
            logits = layer(inputs)
            assert logits.dtype == dtype and logits.abs().max() > 1e3
            loss = loss_fn(logits, targets)  # half-precision logits: RAL computes in float32
        assert torch.isfinite(loss)
        optimizer.zero_grad()
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        assert all(torch.isfinite(p.grad).all() for p in layer.parameters())
        scaler.step(optimizer)
        scaler.update()
    assert scaler.get_scale() == (65536.0 if dtype is torch.float16 else 1.0)  # no step was skipped


@pytest.fixture
def gpu_config(gpu_config, tiny_config):
    """``gpu_config(data, out, **train_options)``: ResNet-18 with RAL on one GPU, 64 px, 2 epochs."""

    def make(data, out, **train_options):
        return tiny_config(
            data,
            out,
            dataset={
                "image_size": 64,
                "channels": 3,
                "normalize": "imagenet",
                "augment": "cxr",
                "cache_dir": str(out / "cache"),
            },
            model={"backbone": "resnet18", "options": {}},
            loss={"name": "ral", "params": {}},
            train={"accelerator": "gpu", "devices": 1, "epochs": 2, "batch_size": 32, **train_options},
        )

    return make


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    from ral.data.simulate import simulate_dataset

    root = simulate_dataset(tmp_path_factory.mktemp("sim"), size=64, n_train=512, n_val=200, n_test=200)
    return {split: root / f"{split}.csv" for split in ("train", "val", "test")}


def test_two_epochs_on_the_simulated_set_then_predict_with_autocast(gpu_config, simulated, tmp_path):
    result = train(gpu_config(simulated, tmp_path / "run", precision="16-mixed", ema_decay=0.99, num_workers=2))
    assert result["epochs_completed"] == 2 and 0 < result["val_metrics"]["mAP"] <= 1
    model, meta = load_trained_model(result["best_checkpoint"], device="cuda")
    assert meta["channels_last"] and meta["image_channels"] == 1 and meta["in_channels"] == 3
    table = load_eval_table(simulated["val"], meta)
    autocast = predict_probabilities(model, table, task="multilabel", image_size=64)  # autocast by default on CUDA
    exact = predict_probabilities(model, table, task="multilabel", image_size=64, amp=False)
    assert autocast.shape == (200, 26) and np.isfinite(autocast).all()
    assert np.abs(autocast - exact).max() < 0.02
    from ral.engine.module import compute_metrics

    reported = result["history"][-1]["val_mAP"]  # the last epoch's validation, on the same averaged weights
    last, _ = load_trained_model(result["last_checkpoint"], device="cuda")
    probs = predict_probabilities(last, table, task="multilabel", image_size=64, amp=False)
    assert compute_metrics("multilabel", table.labels, probs, meta["groups"])["mAP"] == pytest.approx(
        reported, abs=0.01
    )


def test_a_training_step_never_waits_for_the_device(gpu_config, simulated, tmp_path, monkeypatch):
    """Forward, loss, backward, AdamW and the moving average under ``set_sync_debug_mode("error")``
    (bf16: a float16 GradScaler reads its inf check back by design); the first steps compile the
    loss and pick kernels and are left out."""
    original = ClassifierModule.optimizer_step
    checked = []

    def step(self, *args, **kwargs):
        if self.global_step < 2:
            return original(self, *args, **kwargs)
        torch.cuda.set_sync_debug_mode("error")
        try:
            return original(self, *args, **kwargs)
        finally:
            torch.cuda.set_sync_debug_mode("default")
            checked.append(self.global_step)

    monkeypatch.setattr(ClassifierModule, "optimizer_step", step)
    train(gpu_config(simulated, tmp_path / "run", precision="bf16-mixed", ema_decay=0.99, epochs=1))
    assert len(checked) >= 10
