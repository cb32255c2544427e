"""Label-distribution-aware margin loss, LDAM, with deferred re-weighting (Cao et al.,
NeurIPS 2019)."""

from __future__ import annotations

from dataclasses import field
from typing import ClassVar

from torch import Tensor

from ._base import EpochSchedule, SingleLabelLoss, functional
from ._common import ClassVector, check_epoch, check_in_range, check_nonnegative
from ._space import FloatRange, tunable
from ._terms import effective_number_weights, softmax_focal_terms


def ldam_margins(counts: Tensor, max_margin: float) -> Tensor:
    """Per-class margins proportional to n_c^(-1/4), the largest equal to ``max_margin``.

    Counts below 1 count as 1.
    """
    margins = counts.clamp_min(1.0).pow(-0.25)
    return margins * (max_margin / margins.max())


class LDAMLoss(EpochSchedule, SingleLabelLoss):
    """LDAM loss: cross-entropy with a larger margin for rarer classes, optionally with
    deferred re-weighting (DRW).

    K. Cao, C. Wei, A. Gaidon, N. Arechiga, T. Ma, "Learning Imbalanced Datasets with
    Label-Distribution-Aware Margin Loss", NeurIPS 2019::

        Delta_c = max_margin * n_c^(-1/4) / max_j n_j^(-1/4)
        loss = -sum_c q_c log softmax(scale * (x - Delta * q))_c

    (with one-hot q only the target logit is lowered by its margin). The paper's
    ``scale = 30`` assumes cosine-similarity logits (a normalised classifier); with a plain
    linear head consider a much smaller scale (e.g. 1). With ``drw_epoch`` set, class-balanced
    weights (1 - drw_beta) / (1 - drw_beta^n_c) (normalised to sum to C) multiply the loss from
    that epoch on; the trainer calls :meth:`set_epoch` at the start of every epoch (DRW applies
    once ``epoch >= drw_epoch``; paper: DRW from epoch 160 of 200). Use for long-tailed single-label data.

    Args:
        class_counts: (C,) training samples per class, >= 0.
        max_margin: largest margin >= 0 (paper 0.5).
        scale: logit scale s > 0 (paper 30).
        drw_epoch: first (0-based) epoch of deferred re-weighting, or None.
        drw_beta: beta of the DRW weights, in [0, 1).
        reduction, class_weights, ignore_index, check_targets: see :class:`CrossEntropyLoss`.

    Raises:
        ValueError: negative ``max_margin``, ``scale`` <= 0, bad ``drw_epoch`` / ``drw_beta``,
            ``class_counts`` missing, of the wrong length or negative.

    Example:
        >>> import torch
        >>> loss = LDAMLoss([900, 90, 9], scale=1.0)(torch.randn(2, 3), torch.tensor([0, 2]))
    """

    statistics: ClassVar[tuple[str, ...]] = ("class_counts",)

    class_counts: ClassVector
    max_margin: float = tunable(0.5, FloatRange(low=0.1, high=1.0))
    scale: float = tunable(30.0, FloatRange(low=5.0, high=50.0))
    drw_epoch: int | None = field(default=None, kw_only=True)
    drw_beta: float = field(default=0.9999, kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.max_margin = check_nonnegative("max_margin", self.max_margin)
        self.scale = check_nonnegative("scale", self.scale)
        if self.scale == 0:
            raise ValueError(f"scale must be > 0, got {self.scale!r}")
        self.drw_epoch = check_epoch("drw_epoch", self.drw_epoch, optional=True)
        self.drw_beta = check_in_range("drw_beta", self.drw_beta, 0.0, 1.0)
        self.epoch = 0

    @property
    def drw_active(self) -> bool:
        """Whether the deferred re-weighting is switched on at the current epoch."""
        return self.drw_epoch is not None and self.epoch >= self.drw_epoch

    def weights(self) -> Tensor | None:
        if not self.drw_active:
            return self.class_weights
        # float64: exact for float64 input
        return self.times_class_weights(effective_number_weights(self.class_counts.double(), self.drw_beta))

    def elementwise(self, x: Tensor, q: Tensor) -> Tensor:
        margins = ldam_margins(self.class_counts.to(x.dtype), self.max_margin)
        return softmax_focal_terms(self.scale * (x - q * margins), q)


ldam_loss = functional(LDAMLoss, "ldam_loss")
