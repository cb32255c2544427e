"""Loss functions for multi-label and single-label long-tailed classification.

Every loss has a functional form and a thin ``nn.Module`` (class attribute ``task``:
"multilabel" or "single"), shares validation, masking, class weights and reduction
(``_common``), computes in float32 in log space, and imports nothing else from ``ral``::

    from ral.losses import RobustAsymmetricLoss, build_loss
    criterion = RobustAsymmetricLoss()              # or build_loss("asl", gamma_neg=4)
    loss = criterion(logits, targets)               # logits, targets: (N, C)

See docs/losses.md for the table of losses, formulas, papers and defaults.
"""

from .apl import AsymmetricPolynomialLoss, asymmetric_polynomial_loss
from .asl import AsymmetricLoss, asymmetric_loss
from .balanced import (
    ClassBalancedLoss,
    DistributionBalancedLoss,
    class_balanced_loss,
    distribution_balanced_loss,
)
from .bce import BinaryCrossEntropyLoss, binary_cross_entropy
from .ce import CrossEntropyLoss, FocalCrossEntropyLoss, cross_entropy, focal_cross_entropy
from .focal import SigmoidFocalLoss, sigmoid_focal_loss
from .hill import HillLoss, hill_loss
from .ldam import LDAMLoss, ldam_loss
from .logit_adjusted import (
    BalancedSoftmaxLoss,
    LogitAdjustedLoss,
    balanced_softmax_loss,
    logit_adjusted_cross_entropy,
)
from .ral import (
    RobustAsymmetricLoss,
    RobustAsymmetricLossSingleLabel,
    robust_asymmetric_loss,
    robust_asymmetric_loss_single_label,
)
from .registry import LOSSES, build_loss, loss_task

__all__ = [
    "LOSSES",
    "AsymmetricLoss",
    "AsymmetricPolynomialLoss",
    "BalancedSoftmaxLoss",
    "BinaryCrossEntropyLoss",
    "ClassBalancedLoss",
    "CrossEntropyLoss",
    "DistributionBalancedLoss",
    "FocalCrossEntropyLoss",
    "HillLoss",
    "LDAMLoss",
    "LogitAdjustedLoss",
    "RobustAsymmetricLoss",
    "RobustAsymmetricLossSingleLabel",
    "SigmoidFocalLoss",
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
    "loss_task",
    "robust_asymmetric_loss",
    "robust_asymmetric_loss_single_label",
    "sigmoid_focal_loss",
]
