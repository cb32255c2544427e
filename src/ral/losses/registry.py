"""Name -> loss class registry, so that configs and the command line can name a loss."""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from ._common import ClassVector
from .apl import AsymmetricPolynomialLoss
from .asl import AsymmetricLoss
from .balanced import ClassBalancedLoss, DistributionBalancedLoss
from .bce import BinaryCrossEntropyLoss
from .ce import CrossEntropyLoss, FocalCrossEntropyLoss
from .focal import SigmoidFocalLoss
from .hill import HillLoss
from .ldam import LDAMLoss
from .logit_adjusted import BalancedSoftmaxLoss, LogitAdjustedLoss
from .ral import RobustAsymmetricLoss, RobustAsymmetricLossSingleLabel

#: Every loss by name. Each class has ``task = "multilabel"`` or ``"single"``.
LOSSES: dict[str, type[nn.Module]] = {
    # multi-label (sigmoid)
    "bce": BinaryCrossEntropyLoss,
    "focal": SigmoidFocalLoss,
    "asl": AsymmetricLoss,
    "apl": AsymmetricPolynomialLoss,
    "hill": HillLoss,
    "cb": ClassBalancedLoss,
    "db": DistributionBalancedLoss,
    "ral": RobustAsymmetricLoss,
    # single-label (softmax)
    "ce": CrossEntropyLoss,
    "focal_ce": FocalCrossEntropyLoss,
    "ldam": LDAMLoss,
    "logit_adjusted": LogitAdjustedLoss,
    "balanced_softmax": BalancedSoftmaxLoss,
    "ral_single": RobustAsymmetricLossSingleLabel,
}

#: Training-set statistics that ``build_loss`` hands only to the losses that take them.
_STATISTICS = ("class_counts", "num_samples")


def build_loss(
    name: str,
    *,
    class_counts: ClassVector = None,
    num_samples: int | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build the loss registered as ``name`` (see :data:`LOSSES`).

    ``class_counts`` (C,) (positive TRAINING samples per class) and ``num_samples`` (number
    of training images) are passed only to losses whose constructor takes them, so a caller
    may always pass both; ``kwargs`` go to the constructor.

    Example:
        >>> loss = build_loss("cb", class_counts=[900, 90, 9], beta=0.999)
        >>> loss.task
        'multilabel'

    Raises:
        ValueError: unknown ``name`` (the message lists the names), or a statistic the loss
            needs (``class_counts`` / ``num_samples``) was not given.
    """
    if name not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {name!r}")
    cls = LOSSES[name]
    parameters = inspect.signature(cls).parameters
    given = {"class_counts": class_counts, "num_samples": num_samples}
    for stat in _STATISTICS:
        if stat not in parameters:
            continue
        if given[stat] is not None:
            kwargs[stat] = given[stat]
        elif parameters[stat].default is inspect.Parameter.empty:
            raise ValueError(f"loss {name!r} needs {stat} (from the training set), got None")
    return cls(**kwargs)


def loss_task(name: str) -> str:
    """``"multilabel"`` or ``"single"`` for the loss registered as ``name``."""
    if name not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {name!r}")
    return LOSSES[name].task
