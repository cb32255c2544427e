"""Every bad input of the peer losses raises ValueError naming the argument and the value."""

from __future__ import annotations

import math

import pytest
import torch

from ral.losses import (
    AsymmetricLoss,
    AsymmetricPolynomialLoss,
    BalancedSoftmaxLoss,
    BinaryCrossEntropyLoss,
    ClassBalancedLoss,
    CrossEntropyLoss,
    DistributionBalancedLoss,
    FocalCrossEntropyLoss,
    HillLoss,
    LDAMLoss,
    LogitAdjustedLoss,
    PolyCrossEntropyLoss,
    SigmoidFocalLoss,
    SPLCLoss,
    TwoWayLoss,
    ZLPRLoss,
    asymmetric_loss,
    asymmetric_polynomial_loss,
    binary_cross_entropy,
    class_balanced_loss,
    cross_entropy,
    distribution_balanced_loss,
    hill_loss,
    ldam_loss,
    logit_adjusted_cross_entropy,
    sigmoid_focal_loss,
    splc_loss,
    two_way_loss,
    zlpr_loss,
)

COUNTS = [100, 10, 1]


# ----------------------------------------------------------------------------- options
@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: SigmoidFocalLoss(gamma=-1.0), r"gamma.*-1\.0"),
        (lambda: SigmoidFocalLoss(alpha=1.5), r"alpha.*1\.5"),
        (lambda: SigmoidFocalLoss(gamma=math.nan), r"gamma.*nan"),
        (lambda: AsymmetricLoss(gamma_pos=-0.5), r"gamma_pos.*-0\.5"),
        (lambda: AsymmetricLoss(gamma_neg=-2), r"gamma_neg.*-2"),
        (lambda: AsymmetricLoss(clip=1.0), r"clip.*1\.0"),
        (lambda: AsymmetricLoss(clip=-0.1), r"clip.*-0\.1"),
        (lambda: AsymmetricLoss(detach_focal="yes"), r"detach_focal.*'yes'"),
        (lambda: AsymmetricPolynomialLoss(eps_pos=(1.0, "a")), r"eps_pos.*'a'"),
        (lambda: AsymmetricPolynomialLoss(eps_neg=(math.inf,)), r"eps_neg.*inf"),
        (lambda: AsymmetricPolynomialLoss(eps_pos="12"), r"eps_pos.*'12'"),
        (lambda: AsymmetricPolynomialLoss(gamma_neg=-4), r"gamma_neg.*-4"),
        (lambda: HillLoss(lam=0.9), r"lam.*0\.9"),
        (lambda: HillLoss(margin=-1), r"margin.*-1"),
        (lambda: HillLoss(gamma=-2), r"gamma.*-2"),
        (lambda: BinaryCrossEntropyLoss(pos_weight=-1.0), r"pos_weight.*-1\.0"),
        (lambda: BinaryCrossEntropyLoss(pos_weight=[1.0, -2.0]), r"pos_weight.*-2\.0"),
        (lambda: ClassBalancedLoss(COUNTS, beta=1.0), r"beta.*1\.0"),
        (lambda: ClassBalancedLoss(COUNTS, base="ce"), r"base.*'ce'"),
        (lambda: ClassBalancedLoss(COUNTS, gamma=-1), r"gamma.*-1"),
        (lambda: ClassBalancedLoss([10, -1, 3]), r"class_counts.*-1"),
        (lambda: ClassBalancedLoss([[10, 1]]), r"class_counts.*\(1, 2\)"),
        (lambda: DistributionBalancedLoss(COUNTS, 50), r"num_samples.*50.*100"),
        (lambda: DistributionBalancedLoss(COUNTS, 1), r"num_samples.*1"),
        (lambda: DistributionBalancedLoss(COUNTS, 1000, neg_scale=0), r"neg_scale.*0"),
        (lambda: DistributionBalancedLoss(COUNTS, 1000, map_beta=-1), r"map_beta.*-1"),
        (lambda: DistributionBalancedLoss(COUNTS, 1000, init_bias=-0.1), r"init_bias.*-0\.1"),
        (lambda: DistributionBalancedLoss(COUNTS, 1000, gamma=-1), r"gamma.*-1"),
        (lambda: CrossEntropyLoss(label_smoothing=1.0), r"label_smoothing.*1\.0"),
        (lambda: FocalCrossEntropyLoss(gamma=-3), r"gamma.*-3"),
        (lambda: LDAMLoss(COUNTS, max_margin=-0.5), r"max_margin.*-0\.5"),
        (lambda: LDAMLoss(COUNTS, scale=0), r"scale.*0"),
        (lambda: LDAMLoss(COUNTS, drw_beta=1.0), r"drw_beta.*1\.0"),
        (lambda: LogitAdjustedLoss(COUNTS, tau=-1), r"tau.*-1"),
        (lambda: BalancedSoftmaxLoss([1, 2, math.nan]), r"class_counts.*nan"),
        (lambda: SigmoidFocalLoss(reduction="avg"), r"reduction.*'avg'"),
        (lambda: LDAMLoss(COUNTS, reduction="max"), r"reduction.*'max'"),
        (lambda: BinaryCrossEntropyLoss(class_weights=[1.0, -1.0]), r"class_weights.*-1\.0"),
        (lambda: BinaryCrossEntropyLoss(class_weights="abc"), r"class_weights.*'abc'"),
        (lambda: PolyCrossEntropyLoss(epsilon=-1.5), r"epsilon.*-1\.5"),
        (lambda: PolyCrossEntropyLoss(epsilon=math.nan), r"epsilon.*nan"),
        (lambda: SPLCLoss(threshold=-0.1), r"threshold.*-0\.1"),
        (lambda: TwoWayLoss(temperature_pos=math.inf), r"temperature_pos.*inf"),
        (lambda: ZLPRLoss(reduction="avg"), r"reduction.*'avg'"),
        (lambda: ZLPRLoss(class_weights=[1.0, 2.0]), r"ZLPRLoss takes no class_weights"),
    ],
)
def test_bad_options_are_rejected_at_construction(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


# ----------------------------------------------------------------------------- inputs
MULTILABEL = [
    lambda x, y, **k: binary_cross_entropy(x, y, **k),
    lambda x, y, **k: sigmoid_focal_loss(x, y, **k),
    lambda x, y, **k: class_balanced_loss(x, y, COUNTS, **k),
    lambda x, y, **k: distribution_balanced_loss(x, y, COUNTS, 1000, **k),
    asymmetric_loss,
    asymmetric_polynomial_loss,
    hill_loss,
    splc_loss,
    zlpr_loss,
    two_way_loss,
]
ML_IDS = ["bce", "focal", "cb", "db", "asl", "apl", "hill", "splc", "zlpr", "twoway"]
#: The losses that take per-class weights (ZLPR and the two-way loss refuse them).
WEIGHTED = [(loss, name) for loss, name in zip(MULTILABEL, ML_IDS) if name not in ("zlpr", "twoway")]


@pytest.mark.parametrize("loss", MULTILABEL, ids=ML_IDS)
def test_multilabel_shape_mismatch(loss):
    with pytest.raises(ValueError, match=r"targets.*\(2, 3\).*\(2, 4\)"):
        loss(torch.zeros(2, 3), torch.zeros(2, 4))


@pytest.mark.parametrize("loss", MULTILABEL, ids=ML_IDS)
def test_multilabel_wrong_ndim(loss):
    with pytest.raises(ValueError, match=r"logits.*\(N, C\).*\(6,\)"):
        loss(torch.zeros(6), torch.zeros(6))


@pytest.mark.parametrize("loss", MULTILABEL, ids=ML_IDS)
@pytest.mark.parametrize("bad", [1.5, -0.5, math.nan])
def test_multilabel_targets_outside_unit_interval(loss, bad):
    targets = torch.zeros(2, 3)
    targets[1, 2] = bad
    with pytest.raises(ValueError, match=f"targets.*{bad}"):
        loss(torch.zeros(2, 3), targets)


@pytest.mark.parametrize("loss", MULTILABEL, ids=ML_IDS)
def test_multilabel_other_values_than_ignore_value_still_checked(loss):
    targets = torch.tensor([[-1.0, 0.0, 2.0]])
    with pytest.raises(ValueError, match=r"targets.*2\.0"):
        loss(torch.zeros(1, 3), targets, ignore_value=-1)


@pytest.mark.parametrize("loss", [loss for loss, _ in WEIGHTED], ids=[name for _, name in WEIGHTED])
def test_multilabel_wrong_class_weights_length(loss):
    with pytest.raises(ValueError, match=r"class_weights.*3.*got 2"):
        loss(torch.zeros(2, 3), torch.zeros(2, 3), class_weights=[1.0, 2.0])


@pytest.mark.parametrize("loss", MULTILABEL, ids=ML_IDS)
def test_multilabel_mask_shape(loss):
    with pytest.raises(ValueError, match=r"mask.*\(2, 3\).*\(3,\)"):
        loss(torch.zeros(2, 3), torch.zeros(2, 3), mask=torch.ones(3))


@pytest.mark.parametrize(
    "call",
    [
        lambda: class_balanced_loss(torch.zeros(2, 3), torch.zeros(2, 3), [1, 2]),
        lambda: distribution_balanced_loss(torch.zeros(2, 3), torch.zeros(2, 3), [1, 2, 3, 4], 100),
        lambda: LogitAdjustedLoss([5, 6])(torch.zeros(2, 3), torch.tensor([0, 1])),
        lambda: LDAMLoss([5, 6, 7, 8])(torch.zeros(2, 3), torch.tensor([0, 1])),
        lambda: BalancedSoftmaxLoss([5, 6])(torch.zeros(2, 3), torch.tensor([0, 1])),
    ],
    ids=["cb", "db", "logit_adjusted", "ldam", "balanced_softmax"],
)
def test_class_counts_of_wrong_length(call):
    with pytest.raises(ValueError, match=r"class_counts must have 3 entries"):
        call()


@pytest.mark.parametrize(
    "call",
    [
        lambda: class_balanced_loss(torch.zeros(2, 3), torch.zeros(2, 3), None),
        lambda: distribution_balanced_loss(torch.zeros(2, 3), torch.zeros(2, 3), None, 100),
        lambda: ldam_loss(torch.zeros(2, 3), torch.tensor([0, 1]), None),
        lambda: logit_adjusted_cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1]), None),
    ],
    ids=["cb", "db", "ldam", "logit_adjusted"],
)
def test_functional_without_class_counts(call):
    with pytest.raises(ValueError, match=r"class_counts must be given.*got None"):
        call()


SINGLE = [
    CrossEntropyLoss(),
    FocalCrossEntropyLoss(),
    LDAMLoss(COUNTS),
    LogitAdjustedLoss(COUNTS),
    BalancedSoftmaxLoss(COUNTS),
    PolyCrossEntropyLoss(),
]
SL_IDS = ["ce", "focal_ce", "ldam", "logit_adjusted", "balanced_softmax", "poly_ce"]


@pytest.mark.parametrize("loss", SINGLE, ids=SL_IDS)
def test_single_label_bad_targets(loss):
    logits = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\).*got 3"):
        loss(logits, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"integers.*float32"):
        loss(logits, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"targets must have shape \(2,\) or \(2, 3\)"):
        loss(logits, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"probability targets.*1\.5"):
        loss(logits, torch.tensor([[1.5, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    with pytest.raises(ValueError, match=r"logits.*\(N, C\)"):
        loss(torch.zeros(3), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"logits.*floating.*int64"):
        loss(torch.zeros(2, 3, dtype=torch.long), torch.tensor([0, 1]))


def test_single_label_wrong_class_weights():
    with pytest.raises(ValueError, match=r"class_weights must have 3 entries.*got 4"):
        cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1]), class_weights=[1, 1, 1, 1])
    with pytest.raises(ValueError, match=r"class_weights.*-1\.0"):
        cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1]), class_weights=[1.0, -1.0, 1.0])


def test_functional_rejects_unknown_reduction():
    with pytest.raises(ValueError, match=r"reduction.*'mea'"):
        binary_cross_entropy(torch.zeros(2, 3), torch.zeros(2, 3), reduction="mea")
    with pytest.raises(ValueError, match=r"reduction.*'total'"):
        cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1]), reduction="total")
