"""Loss functions for multi-label and single-label long-tailed classification.

Every loss is an ``nn.Module`` on one base class (``_base.Loss``; class attribute ``task``:
"multilabel" or "single") with a functional form of the same name in snake case; all share
validation, masking, class weights and reduction (``_common``), compute in float32 in log space,
and import nothing else from ``ral``::

    from ral.losses import RobustAsymmetricLoss, build_loss
    criterion = RobustAsymmetricLoss()              # or build_loss("asl", gamma_neg=4)
    loss = criterion(logits, targets)               # logits, targets: (N, C)

See docs/losses.md for the table of losses, formulas, papers and defaults.
"""

from ._base import EpochSchedule, Loss, MultiLabelLoss, SingleLabelLoss
from ._space import Choice, FloatRange, IntRange, SearchSpace
from .asl import AsymmetricLoss, AsymmetricPolynomialLoss, asymmetric_loss, asymmetric_polynomial_loss
from .balanced import (
    ClassBalancedLoss,
    DistributionBalancedLoss,
    class_balanced_loss,
    distribution_balanced_loss,
)
from .bce import BinaryCrossEntropyLoss, binary_cross_entropy
from .ce import (
    CrossEntropyLoss,
    FocalCrossEntropyLoss,
    PolyCrossEntropyLoss,
    cross_entropy,
    focal_cross_entropy,
    poly_cross_entropy,
)
from .focal import SigmoidFocalLoss, sigmoid_focal_loss
from .hill import HillLoss, SPLCLoss, hill_loss, splc_loss
from .ldam import LDAMLoss, ldam_loss
from .logit_adjusted import (
    BalancedSoftmaxLoss,
    LogitAdjustedLoss,
    balanced_softmax_loss,
    logit_adjusted_cross_entropy,
)
from .pairwise import TwoWayLoss, ZLPRLoss, two_way_loss, zlpr_loss
from .ral import (
    RobustAsymmetricLoss,
    RobustAsymmetricLossSingleLabel,
    robust_asymmetric_loss,
    robust_asymmetric_loss_single_label,
)
from .ral_long_tail import (
    RobustAsymmetricLossClassBalanced,
    RobustAsymmetricLossLogitAdjusted,
    robust_asymmetric_loss_class_balanced,
    robust_asymmetric_loss_logit_adjusted,
)
from .registry import LOSSES, build_loss, loss_class, loss_task

__all__ = [
    "LOSSES",
    "AsymmetricLoss",
    "AsymmetricPolynomialLoss",
    "BalancedSoftmaxLoss",
    "BinaryCrossEntropyLoss",
    "Choice",
    "ClassBalancedLoss",
    "CrossEntropyLoss",
    "DistributionBalancedLoss",
    "EpochSchedule",
    "FloatRange",
    "FocalCrossEntropyLoss",
    "HillLoss",
    "IntRange",
    "LDAMLoss",
    "LogitAdjustedLoss",
    "Loss",
    "MultiLabelLoss",
    "PolyCrossEntropyLoss",
    "RobustAsymmetricLoss",
    "RobustAsymmetricLossClassBalanced",
    "RobustAsymmetricLossLogitAdjusted",
    "RobustAsymmetricLossSingleLabel",
    "SPLCLoss",
    "SearchSpace",
    "SigmoidFocalLoss",
    "SingleLabelLoss",
    "TwoWayLoss",
    "ZLPRLoss",
    "asymmetric_loss",
    "asymmetric_polynomial_loss",
    "balanced_softmax_loss",
    "binary_cross_entropy",
    "build_loss",
    "class_balanced_loss",
    "cross_entropy",
    "distribution_balanced_loss",
    "focal_cross_entropy",
    "hill_loss",
    "ldam_loss",
    "logit_adjusted_cross_entropy",
    "loss_class",
    "loss_task",
    "poly_cross_entropy",
    "robust_asymmetric_loss",
    "robust_asymmetric_loss_class_balanced",
    "robust_asymmetric_loss_logit_adjusted",
    "robust_asymmetric_loss_single_label",
    "sigmoid_focal_loss",
    "splc_loss",
    "two_way_loss",
    "zlpr_loss",
]
