"""The validated hyper-parameters of the Robust Asymmetric Loss and its named presets.

Both RAL implementations (the closed-form fused one and the plain autograd one) read one
frozen :class:`RALParams`, so validation happens once, in :func:`make_ral_params`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ral.losses._common import (
    check_float_tuple,
    check_in_range,
    check_nonnegative,
    check_reduction,
)

#: Forms of the negative weight: Eq. 6's Hill weight, or the authors' released code.
WEIGHT_FORMS = ("paper", "official-code")
#: Implementations: closed-form forward/backward, or plain autograd (for verification).
IMPLS = ("fused", "autograd")

#: Named presets (see docs/losses.md, "Robust Asymmetric Loss in depth").
PRESETS: dict[str, dict[str, Any]] = {
    # Eq. 6 of the paper with the authors' released constants, project conventions (mean).
    "paper": dict(
        gamma_pos=0.0, gamma_neg=4.0, tau=0.05, lam=1.5, eps_pos=(-1.0, 1.25), eps_neg=(),
        alpha=None, beta=None, hill=True, weight_form="paper", reduction="mean",
    ),
    # kalelpark/RAL `Ralloss`: w_neg(p) = (lam - p) * p^2 * (lam - 1 + p_tau), summed.
    "official-code": dict(
        gamma_pos=0.0, gamma_neg=4.0, tau=0.05, lam=1.5, eps_pos=(-1.0, 1.25), eps_neg=(),
        alpha=None, beta=None, hill=True, weight_form="official-code", reduction="sum",
    ),
}


@dataclass(frozen=True)
class RALParams:
    """Validated RAL hyper-parameters (see :func:`make_ral_params` for their meaning).

    ``alpha`` / ``beta`` are ``None`` for the log form of that side and a tuple of series
    coefficients (alpha_1..alpha_M / beta_1..beta_N) for the series form (Eq. 6).
    """

    gamma_pos: float = 0.0
    gamma_neg: float = 4.0
    tau: float = 0.05
    lam: float = 1.5
    eps_pos: tuple[float, ...] = (-1.0, 1.25)
    eps_neg: tuple[float, ...] = ()
    alpha: tuple[float, ...] | None = None
    beta: tuple[float, ...] | None = None
    hill: bool = True
    weight_form: str = "paper"
    detach_focal: bool = False


def for_dtype(params: RALParams, dtype: torch.dtype) -> RALParams:
    """``params`` with a tau below the resolution of ``dtype`` (1 - tau == 1) read as 0.

    Such a tau moves p by less than one unit in the last place, but would make
    1 - p_tau round to 0 where p rounds to 1; tau = 0 computes -log(1 - p) exactly instead.
    """
    if 0 < params.tau < torch.finfo(dtype).eps:
        return dataclasses.replace(params, tau=0.0)
    return params


def _check_series(name: str, values: Sequence[float] | None) -> tuple[float, ...] | None:
    if values is None:
        return None
    coefficients = check_float_tuple(name, values)
    if not coefficients:
        raise ValueError(f"{name} must hold at least one series coefficient, got {values!r}")
    return coefficients


def make_ral_params(
    *,
    gamma_pos: float = 0.0,
    gamma_neg: float = 4.0,
    tau: float = 0.05,
    lam: float = 1.5,
    eps_pos: Sequence[float] = (-1.0, 1.25),
    eps_neg: Sequence[float] = (),
    alpha: Sequence[float] | None = None,
    beta: Sequence[float] | None = None,
    hill: bool = True,
    weight_form: str = "paper",
    detach_focal: bool = False,
) -> RALParams:
    """Validate RAL hyper-parameters and freeze them.

    Raises:
        ValueError: negative or non-finite gammas, ``tau`` outside [0, 1), ``lam`` < 1 with
            ``hill`` on (or not finite), non-numeric ``eps_pos`` / ``eps_neg``, empty or
            non-numeric ``alpha`` / ``beta``, unknown ``weight_form``, non-bool flags.
    """
    if not isinstance(hill, bool):
        raise ValueError(f"hill must be True or False, got {hill!r}")
    if not isinstance(detach_focal, bool):
        raise ValueError(f"detach_focal must be True or False, got {detach_focal!r}")
    if weight_form not in WEIGHT_FORMS:
        raise ValueError(f"weight_form must be one of {WEIGHT_FORMS}, got {weight_form!r}")
    try:
        lam_value = float(lam)
    except (TypeError, ValueError):
        raise ValueError(f"lam must be a number, got {lam!r}") from None
    if not math.isfinite(lam_value):
        raise ValueError(f"lam must be finite, got {lam!r}")
    if hill and lam_value < 1.0:
        raise ValueError(f"lam must be >= 1 when hill=True (keeps lam - p > 0), got {lam!r}")
    return RALParams(
        gamma_pos=check_nonnegative("gamma_pos", gamma_pos),
        gamma_neg=check_nonnegative("gamma_neg", gamma_neg),
        tau=check_in_range("tau", tau, 0.0, 1.0),
        lam=lam_value,
        eps_pos=check_float_tuple("eps_pos", eps_pos),
        eps_neg=check_float_tuple("eps_neg", eps_neg),
        alpha=_check_series("alpha", alpha),
        beta=_check_series("beta", beta),
        hill=hill,
        weight_form=weight_form,
        detach_focal=detach_focal,
    )


def check_impl(impl: str) -> str:
    """Return ``impl`` if it is "fused" or "autograd"; raise ``ValueError`` otherwise."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    return impl


def preset_kwargs(name: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of preset ``name`` updated with ``overrides`` (validated later)."""
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {tuple(PRESETS)}, got {name!r}")
    kwargs = dict(PRESETS[name])
    kwargs.update(overrides)
    check_reduction(kwargs["reduction"])
    return kwargs
