"""Commands derived from typed declarations, parsed by pydantic-settings' CLI.

A command's flags are the fields of a pydantic model. Where the package already declares the
options (the training :class:`~ral.engine.config.Config`, :class:`~ral.data.TableOptions`, a
benchmark's settings model) the command model derives from that declaration; a function's
typed keyword parameters and its docstring's ``Args:`` become a model with :func:`from_function`.
Names turn into kebab-case flags (``n_boot`` -> ``--n-boot``).
"""

from __future__ import annotations

import collections.abc
import inspect
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from docstring_parser import parse
from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic_settings import CliApp, CliPositionalArg, CliSubCommand, CliVariadicArg, get_subcommand


class Quiet(BaseModel):
    """The ``--quiet`` flag of every command: its group runs the command inside :func:`ral.progress.quiet`."""

    quiet: bool = Field(False, description="no progress bars (they show only when stderr is a terminal anyway)")


class Command(Quiet):
    """A subcommand: its fields are its flags; ``cli_cmd`` runs it (pydantic-settings' ``CliApp``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def arguments(self, *, without: tuple[str, ...] = ()) -> dict[str, Any]:
        """The fields by their Python names (what the implementing function takes), without ``--quiet``."""
        skipped = (*without, *Quiet.model_fields)
        return {name: getattr(self, name) for name in type(self).model_fields if name not in skipped}


def summary(doc: str | None) -> str:
    """The first paragraph of a docstring as one line (a command's help in its group's list)."""
    return " ".join((doc or "").strip().split("\n\n")[0].split())


def _plain(text: str) -> str:
    """Docstring markup as plain text: ``:func:`name``` and ````code```` -> name, code."""
    return re.sub(r":\w+:`~?([^`]+)`", r"\1", text).replace("``", "")


def parameter_docs(func: Callable[..., Any]) -> dict[str, str]:
    """``{name: description}`` from the docstring's ``Args:`` (``a, b: text`` documents both)."""
    docs = {}
    for param in parse(inspect.getdoc(func) or "").params:
        for name in param.arg_name.split(","):
            docs[name.strip()] = _plain(" ".join((param.description or "").split()))
    return docs


def _resolved(annotation: Any, namespace: dict[str, Any]) -> Any:
    """A parameter's annotation as a type (modules with ``from __future__ import annotations`` hold strings)."""
    return eval(annotation, namespace) if isinstance(annotation, str) else annotation  # noqa: S307 (own code)


def _variadic(annotation: Any) -> Any:
    """A list option takes its values after one flag (``--losses bce asl ral``); ``X | None`` becomes ``X``
    (the default None stays)."""
    members = [t for t in typing.get_args(annotation) if t is not type(None)] if _is_union(annotation) else []
    sequence = members[0] if len(members) == 1 else annotation
    origin = typing.get_origin(sequence)
    return CliVariadicArg[sequence] if origin in (list, tuple, collections.abc.Sequence) else annotation


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def from_function(
    func: Callable[..., Any],
    base: type[Command],
    *,
    skip: tuple[str, ...] = (),
    positional: tuple[str, ...] = (),
    flags: Mapping[str, str] | None = None,
    types: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
    repeated: tuple[str, ...] = (),
) -> type[Command]:
    """A :class:`Command` whose fields are ``func``'s keyword parameters: type, default, docstring help.

    Args:
        func: the implementing function (its signature declares the options).
        base: the command class with ``cli_cmd`` (and any fields of its own).
        skip: parameters that are no flags (the command fills them).
        positional: parameters given without a flag name.
        flags: a flag name other than the parameter's, e.g. ``{"out_dir": "out"}``.
        types: the type to parse a parameter as, where its Python type is wider (a path or a list
            of paths for one ``--checkpoint``: ``list[str]``, given once per file).
        defaults: a default other than the parameter's (an option the command may do without).
        repeated: list parameters given as one flag per value (``--checkpoint a --checkpoint b``); other
            lists take their values after one flag (``--losses bce asl ral``).
    """
    namespace = vars(sys.modules[func.__module__])
    try:  # a settings class: its fields' annotations, each in the namespace of the class declaring it
        hints = typing.get_type_hints(func, include_extras=True) if isinstance(func, type) else {}
    except NameError:
        hints = {}
    docs = parameter_docs(func)
    fields: dict[str, Any] = {}
    for param in inspect.signature(func).parameters.values():
        if param.name in skip or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = (types or {}).get(param.name) or hints.get(param.name) or _resolved(param.annotation, namespace)
        if param.name in positional:
            annotation = CliPositionalArg[annotation]
        elif param.name not in repeated:
            annotation = _variadic(annotation)
        default = ... if param.default is param.empty else param.default
        default = (defaults or {}).get(param.name, default)
        alias = (flags or {}).get(param.name)
        fields[param.name] = (annotation, Field(default, description=docs.get(param.name), alias=alias))
    return create_model(base.__name__.lstrip("_"), __base__=base, __doc__=base.__doc__, **fields)


class _Group(BaseModel):
    def cli_cmd(self) -> None:
        from ral.progress import quiet

        with quiet(getattr(get_subcommand(self, is_required=False), "quiet", False)):
            CliApp.run_subcommand(self)


def group(name: str, doc: str, commands: Mapping[str, type[BaseModel]]) -> type[BaseModel]:
    """A command whose subcommands are ``commands`` (``ral``, ``ral data``, ``ral bench``)."""
    fields = {key: (CliSubCommand[cls], Field(description=summary(cls.__doc__))) for key, cls in commands.items()}
    return create_model(name, __base__=_Group, __doc__=doc, **fields)
