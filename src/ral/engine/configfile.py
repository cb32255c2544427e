"""Reading a config: YAML files, ``key=value`` overrides, one-line errors, the config stored in a checkpoint."""

from __future__ import annotations

import copy
import os
import reprlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ral.engine.config import CHECK_INSTALLED, Config, section_type, unknown_key

_SHORT = reprlib.Repr()  # keyword arguments only from Python 3.12
_SHORT.maxstring = _SHORT.maxother = 80
_SHORT.maxlist = _SHORT.maxdict = _SHORT.maxset = _SHORT.maxtuple = 5
_SHORT.maxlevel = 2


def short_repr(value: Any) -> str:
    """``repr(value)`` cut to at most 100 characters (with "..."), however large the value (a YAML alias bomb)."""
    text = _SHORT.repr(value)  # bounded per level, not in total
    return text if len(text) <= 100 else text[:97] + "..."


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last silently:
    a ``train:`` section written twice would drop the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.setdefault(key, key_node.start_mark)
            except TypeError:  # an unhashable key: PyYAML's own error follows
                continue
            if first is not key_node.start_mark:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {short_repr(key)} given twice (first on line {first.line + 1})",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def yaml_error(exc: yaml.YAMLError, source: str) -> str:
    """``source:line:column: problem`` of a PyYAML error, as one line (PyYAML's own text spans several)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is None or problem is None:
        return f"{source}: {' '.join(str(exc).split())}"
    context = getattr(exc, "context", None)
    return f"{source}:{mark.line + 1}:{mark.column + 1}: {problem}" + (f" ({context})" if context else "")


def load_yaml(text: str, source: str) -> Any:
    """``text`` parsed as YAML (safe, no key twice in a mapping).

    Raises:
        ValueError: one line ``source:line:column: problem``.
    """
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        raise ValueError(f"{yaml_error(exc, source)}") from None


def _dotted(loc: Sequence[int | str]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")


def _fields_at(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The field names of the section that ``loc`` (a key's path without its last name) leads to."""
    for part in loc:
        section = section_type(model.model_fields.get(str(part)))
        if section is None:
            return []
        model = section
    return list(model.model_fields)


def config_error(exc: ValidationError, model: type[BaseModel] | None = None, *, prefix: str = "") -> ValueError:
    """One line for the first error of ``exc``: the dotted key, pydantic's reason and the received value.

    ``model`` (default :class:`Config`) is where keys are looked up for "did you mean";
    ``prefix`` is stripped from the error locations (a command's own name).
    """
    errors = exc.errors(include_url=False)
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])  # a typo'd key first
    loc = tuple(error["loc"])[len(prefix.split(".")) if prefix else 0 :]
    key = _dotted(loc)
    if error["type"] == "extra_forbidden":
        return unknown_key(key, _fields_at(model or Config, loc[:-1]))
    if error["type"] == "missing":
        return ValueError(f"config key {key!r} is missing")
    reason = error["msg"].removeprefix("Value error, ")
    received = error["input"]
    names_value = ", got " in reason or (isinstance(received, str) and repr(received) in reason)
    if names_value or not loc:  # a rule between sections names the keys itself
        return ValueError(reason)
    if error["type"] == "value_error" and _fields_at(model or Config, loc):  # a rule between a section's keys
        return ValueError(f"config key {key!r}: {reason}")
    return ValueError(f"config key {key!r}: {reason[:1].lower() + reason[1:]}, got {short_repr(received)}")


def _validate(raw: Any, *, check_installed: bool = True) -> Config:
    try:
        return Config.model_validate(raw, context={CHECK_INSTALLED: check_installed})
    except ValidationError as exc:
        raise config_error(exc) from None


def config_from_dict(raw: Mapping[str, Any]) -> Config:
    """Build and validate a :class:`Config` from a nested dict (missing keys take their defaults).

    Raises:
        ValueError: one line naming the first unknown key, wrong type or bad value.
    """
    return _validate(raw)


def validate_config(config: Config) -> Config:
    """Validate ``config`` again, e.g. after changes in Python (lists, dicts, rules between sections); return it.

    Raises:
        ValueError: naming the key and the received value.
    """
    _validate(config.model_dump())
    return config


def config_from_checkpoint(meta: Mapping[str, Any], path: str | os.PathLike = "checkpoint") -> Config:
    """The :class:`Config` that ``ral train`` stored in ``checkpoint["ral"]`` (``meta``, see
    :func:`ral.engine.checkpoint.checkpoint_metadata`).

    The loss and backbone names are not checked against this installation: a checkpoint stays
    readable when the loss it was trained with is not registered here.

    Raises:
        ValueError: ``meta`` holds no config, or one this version of ``ral`` cannot read.
    """
    raw = meta.get("config")
    if not isinstance(raw, Mapping):
        raise ValueError(f"{path} holds no stored config (checkpoint['ral']['config']), got {raw!r}")
    try:
        return _validate(raw, check_installed=False)
    except ValueError as exc:
        raise ValueError(f"{path}: stored {exc}") from None


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``update`` merged in, section by section (neither is changed)."""
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) and key not in ("params", "options"):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_overrides(raw: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with ``section.key=value`` overrides applied (values parsed as YAML).

    ``loss.params.gamma_neg=2`` creates nested keys; unknown keys are reported when the result is
    validated (:func:`config_from_dict`), with the closest known key.
    """
    out = copy.deepcopy(dict(raw))
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override must look like section.key=value, got {item!r}")
        *parents, leaf = key.strip().split(".")
        node = out
        for depth, part in enumerate(parents):
            child = node.setdefault(part, {})
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ValueError(f"override {item!r}: {'.'.join(parents[: depth + 1])!r} is not a section")
            node = child
        node[leaf] = load_yaml(text, f"override {key.strip()}") if text.strip() else None
    return out


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """The mapping of a YAML config file.

    Raises:
        FileNotFoundError: no such file. ValueError: not YAML (``file:line:column: problem``), a key
            given twice in one mapping, or not a mapping at the top level.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    raw = load_yaml(path.read_text(encoding="utf-8"), str(path)) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"config file {path} must hold a mapping at the top level, got {type(raw).__name__}")
    return raw


def load_config(path: str | os.PathLike | None, overrides: Sequence[str] | None = None) -> Config:
    """Read a YAML config (or start from defaults when ``path`` is None), apply overrides, validate.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: YAML syntax error, unknown key, wrong type or bad value.
    """
    raw = read_yaml(path) if path is not None else {}
    return config_from_dict(apply_overrides(raw, list(overrides or [])))


def dump_yaml(config: Config) -> str:
    """The config as YAML text (what ``ral train`` stores in ``<output_dir>/config.yaml``)."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
