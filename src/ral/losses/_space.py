"""Search spaces of the losses' hyper-parameters: plain data, declared once on each option.

A loss option worth tuning is declared with :func:`tunable` instead of a plain default: its range sits
beside its default (``gamma_neg: float = tunable(4.0, FloatRange(low=0.0, high=8.0))``); a sequence
option takes one range per element (``name.i``: RAL's ``eps_pos.0``, ``eps_pos.1``). A :class:`Choice`
may hold sequences and None (RAL's ``beta``: the log form or a truncated series of the negative term).
Each loss class's ``search_space`` (option name -> range) is derived from its fields, its bases'
included. The ranges bracket each loss's published default and stay inside what its constructor
accepts (tests/losses/test_search_space.py builds every loss at every bound).

``ral tune`` turns the ranges into Optuna distributions (``ral.tune.space``); this module imports no
tuner, and the YAML key ``tune.space`` reads the same classes (a mapping without ``type`` is a
:class:`FloatRange`)::

    tune:
      space:
        gamma_neg: {low: 1, high: 6}                 # FloatRange
        optimizer.lr: {low: 1.0e-4, high: 1.0e-2, log: true}
        beta: {type: choice, values: [null, [1.0]]}  # Choice
        eps_pos.1: null                              # not searched: the config's value is kept
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


#: Pydantic reads these dataclasses from YAML mappings (``tune.space``); a misspelt key is an error.
_STRICT = {"extra": "forbid"}


@dataclass(frozen=True, kw_only=True)
class FloatRange:
    """A real value in ``[low, high]``, sampled on a log scale when ``log`` (then ``low > 0``)."""

    __pydantic_config__ = _STRICT

    low: float
    high: float
    log: bool = False
    type: Literal["float"] = "float"

    def __post_init__(self) -> None:
        low, high = _number("low", self.low), _number("high", self.high)
        if low >= high:
            raise ValueError(f"low must be smaller than high (low={low:g}, high={high:g})")
        if self.log and low <= 0:
            raise ValueError(f"a log range needs low > 0 (low={low:g})")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)


@dataclass(frozen=True, kw_only=True)
class IntRange:
    """An integer in ``[low, high]`` in steps of ``step``."""

    __pydantic_config__ = _STRICT

    low: int
    high: int
    step: int = 1
    type: Literal["int"] = "int"

    def __post_init__(self) -> None:
        for name in ("low", "high", "step"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        if self.low >= self.high or self.step < 1:
            raise ValueError(f"low < high and step >= 1 expected (low={self.low}, high={self.high}, step={self.step})")


@dataclass(frozen=True, kw_only=True)
class Choice:
    """One of ``values`` (numbers, strings, booleans, None or lists of numbers)."""

    __pydantic_config__ = _STRICT

    values: tuple[Any, ...]
    type: Literal["choice"] = "choice"

    def __post_init__(self) -> None:
        values = tuple(tuple(v) if isinstance(v, list) else v for v in self.values)
        if len(values) < 2 or len(set(map(repr, values))) != len(values):
            raise ValueError("values must hold at least two distinct values")
        object.__setattr__(self, "values", values)


SearchRange = Union[FloatRange, IntRange, Choice]  # noqa: UP007 (a runtime alias pydantic reads)
#: Option name (``name.i`` for element i of a sequence option) -> its range.
SearchSpace = Mapping[str, SearchRange]


def split_name(name: str) -> tuple[str, int | None]:
    """``"eps_pos.1"`` -> ``("eps_pos", 1)``; ``"gamma_neg"`` -> ``("gamma_neg", None)``."""
    base, dot, index = name.partition(".")
    if dot and index.isdigit():
        return base, int(index)
    return name, None


def with_values(params: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` (a loss's constructor options) with the sampled ``values`` set; ``name.i`` replaces
    element ``i`` of the sequence ``params[name]`` (which must be at least ``i + 1`` long)."""
    out = dict(params)
    for name, value in values.items():
        base, index = split_name(name)
        if index is None:
            out[name] = list(value) if isinstance(value, tuple) else value
            continue
        sequence = list(out.get(base) or ())
        if index >= len(sequence):
            raise ValueError(f"{name}: {base} has {len(sequence)} element(s), got index {index}")
        sequence[index] = value
        out[base] = sequence
    return out


def value_of(params: Mapping[str, Any], name: str) -> Any:
    """The value of ``name`` (``name.i``: element i) in ``params``; ``KeyError`` / ``IndexError`` if absent."""
    base, index = split_name(name)
    return params[base] if index is None else list(params[base])[index]


_SEARCH = "ral.search_ranges"  # the key of a tunable field's ranges in its dataclass metadata


def tunable(default: Any, *ranges: SearchRange, kw_only: bool = False) -> Any:
    """A loss option (dataclass field) with its search range: one range for the option, or one per
    element of a sequence option (searched as ``name.0``, ``name.1``, ...)."""
    if not ranges:
        raise TypeError("tunable needs at least one range")
    keyword = True if kw_only else dataclasses.MISSING  # MISSING: the class's own kw_only rule
    return dataclasses.field(default=default, kw_only=keyword, metadata={_SEARCH: ranges})


def declared_space(cls: type) -> dict[str, SearchRange]:
    """The search space of the dataclass ``cls``: its :func:`tunable` fields in declaration order."""
    space: dict[str, SearchRange] = {}
    for item in dataclasses.fields(cls):
        ranges = item.metadata.get(_SEARCH, ())
        if len(ranges) == 1:
            space[item.name] = ranges[0]
        else:
            space.update({f"{item.name}.{i}": entry for i, entry in enumerate(ranges)})
    return space
