"""Name -> loss class registry, so that configs and the command line can name a loss."""

from __future__ import annotations

from typing import Any

from ._base import Loss
from ._common import ClassVector
from .asl import AsymmetricLoss, AsymmetricPolynomialLoss
from .balanced import ClassBalancedLoss, DistributionBalancedLoss
from .bce import BinaryCrossEntropyLoss
from .ce import CrossEntropyLoss, FocalCrossEntropyLoss, PolyCrossEntropyLoss
from .focal import SigmoidFocalLoss
from .hill import HillLoss, SPLCLoss
from .ldam import LDAMLoss
from .logit_adjusted import BalancedSoftmaxLoss, LogitAdjustedLoss
from .pairwise import TwoWayLoss, ZLPRLoss
from .ral import RobustAsymmetricLoss, RobustAsymmetricLossSingleLabel
from .ral_long_tail import RobustAsymmetricLossClassBalanced, RobustAsymmetricLossLogitAdjusted

#: Every loss by name. Each class has ``task = "multilabel"`` or ``"single"``.
LOSSES: dict[str, type[Loss]] = {
    # multi-label (sigmoid)
    "bce": BinaryCrossEntropyLoss,
    "focal": SigmoidFocalLoss,
    "asl": AsymmetricLoss,
    "apl": AsymmetricPolynomialLoss,
    "hill": HillLoss,
    "splc": SPLCLoss,
    "cb": ClassBalancedLoss,
    "db": DistributionBalancedLoss,
    "zlpr": ZLPRLoss,
    "twoway": TwoWayLoss,
    "ral": RobustAsymmetricLoss,
    "ral_cb": RobustAsymmetricLossClassBalanced,
    # single-label (softmax)
    "ce": CrossEntropyLoss,
    "focal_ce": FocalCrossEntropyLoss,
    "poly_ce": PolyCrossEntropyLoss,
    "ldam": LDAMLoss,
    "logit_adjusted": LogitAdjustedLoss,
    "balanced_softmax": BalancedSoftmaxLoss,
    "ral_single": RobustAsymmetricLossSingleLabel,
    "ral_la": RobustAsymmetricLossLogitAdjusted,
}


def build_loss(
    name: str,
    *,
    class_counts: ClassVector = None,
    num_samples: int | None = None,
    **kwargs: Any,
) -> Loss:
    """Build the loss registered as ``name`` (see :data:`LOSSES`).

    ``class_counts`` (C,) (positive TRAINING samples per class) and ``num_samples`` (number
    of training images) are passed only to the losses that list them in their ``statistics``
    (needed: None is an error) or ``optional_statistics`` (passed when given) class
    attributes, so a caller may always pass both; ``kwargs`` go to the constructor.

    Example:
        >>> loss = build_loss("cb", class_counts=[900, 90, 9], beta=0.999)
        >>> loss.task
        'multilabel'

    Raises:
        ValueError: unknown ``name`` (the message lists the names), or a statistic the loss
            needs (``class_counts`` / ``num_samples``) was not given.
    """
    cls = loss_class(name)
    given = {"class_counts": class_counts, "num_samples": num_samples}
    for stat in cls.statistics:
        if given[stat] is None:
            raise ValueError(f"loss {name!r} needs {stat} (from the training set), got None")
        kwargs[stat] = given[stat]
    for stat in cls.optional_statistics:
        if given[stat] is not None:
            kwargs[stat] = given[stat]
    return cls(**kwargs)


def loss_class(name: str) -> type[Loss]:
    """The class registered as ``name``; ``ValueError`` listing the names otherwise."""
    if name not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {name!r}")
    return LOSSES[name]


def loss_task(name: str) -> str:
    """``"multilabel"`` or ``"single"`` for the loss registered as ``name``."""
    return loss_class(name).task
