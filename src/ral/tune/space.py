"""The search space of one ``ral tune`` study and the config of each trial.

The space is the loss's declared ``search_space`` (``ral.losses``: plain ranges on each loss class)
changed by the config's ``tune.space``; ``optimizer.lr`` / ``optimizer.weight_decay`` /
``optimizer.momentum`` may be added. Each range becomes one Optuna ``suggest_*`` call; a
:class:`~ral.losses.Choice` of lists (RAL's ``beta``) is stored in the study as JSON text, since
Optuna's categorical values are scalars, and read back here.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ral.engine.config import Config
from ral.engine.configfile import config_from_dict
from ral.losses import LOSSES, Choice, FloatRange, IntRange
from ral.losses._space import SearchRange, split_name, value_of, with_values

if TYPE_CHECKING:
    import optuna

#: Optimiser settings a study may search besides the loss's options.
OPTIMIZER_KEYS = ("optimizer.lr", "optimizer.weight_decay", "optimizer.momentum")


def _loss_defaults(name: str) -> dict[str, Any]:
    """The constructor defaults of loss ``name`` (options without a default are left out)."""
    parameters = inspect.signature(LOSSES[name]).parameters
    return {key: p.default for key, p in parameters.items() if p.default is not p.empty}


def current_values(config: Config) -> dict[str, Any]:
    """The config's loss options (its ``loss.params`` over the class defaults) and optimiser settings,
    keyed as in a search space (``gamma_neg``, ``optimizer.lr``)."""
    values = {**_loss_defaults(config.loss.name), **config.loss.params}
    return values | {key: getattr(config.optimizer, key.split(".")[1]) for key in OPTIMIZER_KEYS}


def search_space(config: Config) -> dict[str, SearchRange]:
    """The loss's declared space with the config's ``tune.space`` applied (null removes an entry), limited
    to ``tune.params`` when given.

    Raises:
        ValueError: a ``tune.space`` key that is no option of the loss (nor an optimiser key), an
            index past the end of a list option, a ``tune.params`` name outside the space, or an empty space.
    """
    loss = config.loss.name
    options = inspect.signature(LOSSES[loss]).parameters
    values = current_values(config)
    space: dict[str, SearchRange] = dict(LOSSES[loss].search_space)
    for name, entry in config.tune.space.items():
        base, _ = split_name(name)
        if name not in OPTIMIZER_KEYS and base not in options:
            raise ValueError(
                f"tune.space: {name!r} is no option of loss {loss!r} (options: {sorted(options)}; "
                f"optimiser: {list(OPTIMIZER_KEYS)})"
            )
        try:
            value_of(values, name)
        except (KeyError, IndexError, TypeError):
            raise ValueError(f"tune.space: {name!r}: loss {loss!r} has no such element, got {name!r}") from None
        if entry is None:
            space.pop(name, None)
        else:
            space[name] = entry
    if config.tune.params is not None:
        unknown = [name for name in config.tune.params if name not in space]
        if unknown:
            raise ValueError(f"tune.params: {unknown} not in the search space of loss {loss!r}: {sorted(space)}")
        space = {name: space[name] for name in config.tune.params}
    if not space:
        raise ValueError(
            f"loss {loss!r} declares no search space and tune.space adds none; give ranges in tune.space (docs/tune.md)"
        )
    return space


def _stored(value: Any) -> Any:
    """A choice as Optuna stores it: scalars as they are, lists as JSON text."""
    return json.dumps(list(value)) if isinstance(value, (list, tuple)) else value


def _read(value: Any, entry: SearchRange | None) -> Any:
    """A stored value as the loss takes it (JSON text of a list choice back to a list)."""
    if isinstance(entry, Choice) and isinstance(value, str) and value.startswith("["):
        return json.loads(value)
    return value


def sample(trial: optuna.trial.Trial, space: Mapping[str, SearchRange]) -> dict[str, Any]:
    """One value per entry of ``space``, suggested by the study's sampler."""
    values = {}
    for name, entry in space.items():
        if isinstance(entry, FloatRange):
            values[name] = trial.suggest_float(name, entry.low, entry.high, log=entry.log)
        elif isinstance(entry, IntRange):
            values[name] = trial.suggest_int(name, entry.low, entry.high, step=entry.step)
        else:
            choices = [_stored(value) for value in entry.values]
            values[name] = _read(trial.suggest_categorical(name, choices), entry)
    return values


def stored_params(params: Mapping[str, Any], space: Mapping[str, SearchRange]) -> dict[str, Any]:
    """A trial's ``params`` (as Optuna stores them) as the loss and optimiser take them."""
    return {name: _read(value, space.get(name)) for name, value in params.items()}


def starting_point(config: Config, space: Mapping[str, SearchRange]) -> dict[str, Any]:
    """The config's own values of the searched parameters, as Optuna stores them (the study's first
    trial); values outside their range are left to the sampler."""
    values = current_values(config)
    point = {}
    for name, entry in space.items():
        value = value_of(values, name)
        if isinstance(entry, Choice):
            stored = _stored(value)
            if stored in [_stored(v) for v in entry.values]:
                point[name] = stored
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and entry.low <= value <= entry.high:
            point[name] = value
    return point


def grid(space: Mapping[str, SearchRange], points: int) -> dict[str, list[Any]]:
    """The grid of ``--sampler grid``: ``points`` values per range (evenly spaced; geometric for a
    log range; every integer step when there are fewer), every value of a choice."""
    out: dict[str, list[Any]] = {}
    for name, entry in space.items():
        if isinstance(entry, Choice):
            out[name] = [_stored(value) for value in entry.values]
        elif isinstance(entry, IntRange):
            steps = list(range(entry.low, entry.high + 1, entry.step))
            pick = max(1, math.ceil(len(steps) / points))
            out[name] = steps[::pick] if len(steps) > points else steps
        elif entry.log:
            ratio = (entry.high / entry.low) ** (1 / max(points - 1, 1))
            out[name] = [float(f"{entry.low * ratio**i:.6g}") for i in range(points)]
        else:
            width = (entry.high - entry.low) / max(points - 1, 1)
            out[name] = [float(f"{entry.low + width * i:.6g}") for i in range(points)]
    return out


def trial_config(config: Config, values: Mapping[str, Any], output_dir: str) -> Config:
    """``config`` with the sampled ``values`` (loss options and optimiser settings) and ``output_dir``.

    Raises:
        ValueError: a value the config rejects (naming the key).
    """
    raw = config.to_dict()
    loss_values = {name: value for name, value in values.items() if name not in OPTIMIZER_KEYS}
    params = dict(config.loss.params)
    defaults = _loss_defaults(config.loss.name)
    for name in loss_values:  # an element of a list option: start from the config's (or default) list
        base, index = split_name(name)
        if index is not None and base not in params:
            params[base] = list(defaults[base])
    raw["loss"]["params"] = with_values(params, loss_values)
    for name, value in values.items():
        if name in OPTIMIZER_KEYS:
            raw["optimizer"][name.split(".")[1]] = value
    raw["output_dir"] = str(output_dir)
    return config_from_dict(raw)
