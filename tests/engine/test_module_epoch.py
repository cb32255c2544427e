import torch

from ral.engine import config_from_dict
from ral.engine.module import ClassifierModule
from ral.losses import build_loss

CONFIG = config_from_dict({"dataset": {"train": "train.csv"}})


def test_epoch_start_switches_on_ldam_deferred_reweighting(monkeypatch):
    loss = build_loss("ldam", class_counts=[50, 5, 1], drw_epoch=2)
    module = ClassifierModule(torch.nn.Linear(4, 3), loss, task="single", config=CONFIG, meta={})
    for epoch, active in [(0, False), (1, False), (2, True), (3, True)]:
        monkeypatch.setattr(ClassifierModule, "current_epoch", property(lambda self, e=epoch: e))
        module.on_train_epoch_start()
        assert loss.drw_active is active


def test_epoch_start_ignores_losses_without_schedule():
    module = ClassifierModule(torch.nn.Linear(4, 3), build_loss("bce"), task="multilabel", config=CONFIG, meta={})
    module.on_train_epoch_start()  # no set_epoch: nothing to do, no error
