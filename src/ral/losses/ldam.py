"""Label-distribution-aware margin loss, LDAM, with deferred re-weighting (Cao et al.,
NeurIPS 2019)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._common import ClassVector, check_in_range, check_nonnegative, single_label_loss
from ._module import SingleLabelLoss
from ._terms import effective_number_weights, per_class_counts, softmax_focal_terms


def ldam_margins(counts: Tensor, max_margin: float) -> Tensor:
    """Per-class margins proportional to n_c^(-1/4), the largest equal to ``max_margin``.

    Counts below 1 count as 1.
    """
    margins = counts.clamp_min(1.0).pow(-0.25)
    return margins * (max_margin / margins.max())


def ldam_loss(
    logits: Tensor, targets: Tensor, class_counts: ClassVector, *, max_margin: float = 0.5,
    scale: float = 30.0,
    reduction: str = "mean", class_weights: ClassVector = None, ignore_index: int = -100,
) -> Tensor:
    """LDAM loss: cross-entropy with a larger margin for rarer classes.

    K. Cao, C. Wei, A. Gaidon, N. Arechiga, T. Ma, "Learning Imbalanced Datasets with
    Label-Distribution-Aware Margin Loss", NeurIPS 2019::

        Delta_c = max_margin * n_c^(-1/4) / max_j n_j^(-1/4)
        loss = -sum_c q_c log softmax(scale * (x - Delta * q))_c

    (with one-hot q only the target logit is lowered by its margin). The paper's
    ``scale = 30`` assumes cosine-similarity logits (a normalised classifier); with a plain
    linear head consider a much smaller scale (e.g. 1). Deferred re-weighting (DRW) is a
    schedule: see :class:`LDAMLoss` ``drw_epoch``.

    Args:
        logits: (N, C) raw scores, any float dtype.
        targets: (N,) int class indices or (N, C) one-hot rows.
        class_counts: (C,) training samples per class, >= 0.
        max_margin: largest margin >= 0 (paper 0.5).
        scale: logit scale s > 0 (paper 30).
        reduction, class_weights, ignore_index: as in :func:`ral.losses.ce.focal_cross_entropy`.

    Returns:
        Scalar loss, or (N,) for ``reduction="none"``.

    Raises:
        ValueError: negative ``max_margin``, ``scale`` <= 0, ``class_counts`` of the wrong
            length or negative, bad targets or ``reduction``.

    Example:
        >>> import torch
        >>> loss = ldam_loss(torch.randn(2, 3), torch.tensor([0, 2]), [900, 90, 9], scale=1.0)
    """
    max_margin = check_nonnegative("max_margin", max_margin)
    if check_nonnegative("scale", scale) == 0:
        raise ValueError(f"scale must be > 0, got {scale!r}")

    def elementwise(x: Tensor, q: Tensor) -> Tensor:
        counts = per_class_counts(class_counts, x)
        return softmax_focal_terms(scale * (x - q * ldam_margins(counts, max_margin)), q)

    return single_label_loss(
        elementwise, logits, targets, reduction=reduction,
        class_weights=class_weights, ignore_index=ignore_index,
    )


def _is_epoch(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class LDAMLoss(SingleLabelLoss):
    """LDAM loss with optional deferred re-weighting (Cao et al., NeurIPS 2019).

    See :func:`ldam_loss`. With ``drw_epoch`` set, class-balanced weights
    (1 - drw_beta) / (1 - drw_beta^n_c) (normalised to sum to C) multiply the loss from that
    epoch on; call :meth:`set_epoch` at the start of every epoch. Use for long-tailed
    single-label data, typically with DRW switched on late in training (paper: epoch 160
    of 200).
    """

    def __init__(
        self, class_counts: ClassVector, max_margin: float = 0.5, scale: float = 30.0, *,
        drw_epoch: int | None = None, drw_beta: float = 0.9999,
        reduction: str = "mean", class_weights: ClassVector = None, ignore_index: int = -100,
    ) -> None:
        if drw_epoch is not None and not _is_epoch(drw_epoch):
            raise ValueError(f"drw_epoch must be None or an int >= 0, got {drw_epoch!r}")
        self.drw_epoch = drw_epoch
        self.drw_beta = check_in_range("drw_beta", drw_beta, 0.0, 1.0)
        self.epoch = 0
        super().__init__(
            ldam_loss, class_counts=class_counts, max_margin=max_margin, scale=scale,
            reduction=reduction, class_weights=class_weights, ignore_index=ignore_index,
        )

    def set_epoch(self, epoch: int) -> None:
        """Tell the loss the current (0-based) epoch; DRW weights apply once ``epoch >= drw_epoch``."""
        if not _is_epoch(epoch):
            raise ValueError(f"epoch must be an int >= 0, got {epoch!r}")
        self.epoch = epoch

    @property
    def drw_active(self) -> bool:
        """Whether the deferred re-weighting is switched on at the current epoch."""
        return self.drw_epoch is not None and self.epoch >= self.drw_epoch

    def call_options(self) -> dict:
        options = super().call_options()
        if self.drw_active:
            # float64 so that float64 inputs stay exact; cast to the compute dtype on use.
            weights = effective_number_weights(self.class_counts.to(torch.float64), self.drw_beta)
            user = options["class_weights"]
            options["class_weights"] = weights if user is None else weights * user.to(torch.float64)
        return options

    def extra_repr(self) -> str:
        schedule = f"drw_epoch={self.drw_epoch}, drw_beta={self.drw_beta}, epoch={self.epoch}"
        return f"{super().extra_repr()}, {schedule}"
