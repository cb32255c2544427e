"""The ``ral`` command: subcommands parse their flags (derived from the package's declarations) and delegate.

Parsing is pydantic-settings' CLI (:mod:`ral.cli.command`); bad input ends in one line naming the
option or config key and the received value, exit status 2, no traceback.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from ral.cli.ranks import peer_failure, report

_GROUPS = ("data", "bench")  # commands whose subcommands do the work
_PACKAGE_DIR = str(Path(__file__).resolve().parent.parent)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """One line per warning: ral's own show their message, others also their category and origin."""
    if str(Path(filename).resolve()).startswith(_PACKAGE_DIR):
        return f"ral: warning: {message}\n"
    return f"warning: {category.__name__} ({Path(filename).name}:{lineno}): {message}\n"


def _command_path(argv: Sequence[str]) -> list[str]:
    """``["data", "stats"]`` for ``ral data stats ...``: the names before the command's own arguments."""
    words = [word for word in argv[:2] if not word.startswith("-")]
    return words[:2] if words and words[0] in _GROUPS else words[:1]


def _flags(model: type, prefix: str = "") -> dict[str, bool]:
    """Every flag of a command model (``n-boot``, ``train.batch-size`` ...) and whether it is a boolean
    (a flag that takes no value)."""
    from pydantic import BaseModel

    flags = {}
    for name, info in model.model_fields.items():
        flag = prefix + (info.alias or name).replace("_", "-")
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            flags |= _flags(info.annotation, flag + ".")
        flags[flag] = "bool" in str(info.annotation)
    return flags


def _unknown_flag(message: str, command: type | None) -> str:
    """argparse's "unrecognized arguments: --los.name asl" with the closest known flag."""
    found = re.search(r"unrecognized arguments: (\S+)", message)
    if not found or command is None:
        return message
    flag = found.group(1).split("=")[0]
    close = difflib.get_close_matches(flag.lstrip("-"), _flags(command), n=1)
    hint = f" (did you mean --{close[0]}?)" if close else ""
    return f"unknown option {flag!r}{hint}"


def _hint(exc: Exception, command: type | None) -> str:
    """A data-layer error names the option that would let the input through; spell it as this command does."""
    from ral.data.errors import with_hint
    from ral.engine.config import Config

    def spell(option: str) -> str | None:
        if command is not None and issubclass(command, Config):
            return f"dataset.{option}: true"
        if command is not None and option in command.model_fields:
            return "--" + option.replace("_", "-")
        return None

    return with_hint(exc, spell)


def _validation_error(exc, path: list[str], command: type | None) -> str:
    from ral.engine.config import Config
    from ral.engine.configfile import config_error, short_repr

    if exc.title != "CliAppBaseSettings":  # raised by the package, not by parsing the command line
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in error["loc"]) or exc.title
        return f"{where}: {error['msg'].removeprefix('Value error, ')}, got {short_repr(error['input'])}"
    if command is not None and issubclass(command, Config):
        return str(config_error(exc, Config, prefix=".".join(path)))
    error = exc.errors(include_url=False)[0]
    names = [str(part) for part in error["loc"][len(path) :]]
    flag = "--" + ".".join(names).replace("_", "-") if names else "the command"
    if error["type"] == "missing":
        return f"{flag} is required"
    reason = error["msg"].removeprefix("Value error, ")
    return f"{flag}: {reason[:1].lower() + reason[1:]}, got {short_repr(error['input'])}"


#: What torch writes into the message of an error raised in a DataLoader worker, before the worker's traceback.
_WORKER_TRACEBACK = "Original Traceback (most recent call last):"
#: The longest error line printed (a value of 25 MB from a YAML alias bomb is cut).
MAX_MESSAGE = 1000


def one_line(message: str, limit: int = MAX_MESSAGE) -> str:
    """An error message as one line of at most ``limit`` characters.

    A loader worker's error (torch puts the worker's traceback into the message) becomes its last
    line without the exception's type; line breaks become spaces; a longer message is cut.
    """
    if _WORKER_TRACEBACK in message:
        message = re.sub(r"^[\w.]+: ", "", message.rstrip().splitlines()[-1])
    message = " ".join(message.splitlines())
    return message if len(message) <= limit else f"{message[:limit]}... ({len(message):,} characters)"


def _quiet_broken_pipe() -> int:
    """The reader of stdout went away (``ral data stats t.csv | head -1``): stop quietly, as a writer killed by
    SIGPIPE does (status 141); stdout now points at /dev/null so that Python's flush at exit stays quiet too."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141


_OVERRIDE = re.compile(r"[A-Za-z_][\w.]*=")  # section.key=value


def _split_overrides(argv: list[str], path: list[str], command: type | None) -> tuple[list[str], list[str]]:
    """``argv`` without its ``section.key=value`` overrides, and those overrides.

    The overrides go to the command as they were typed: pydantic-settings would split their values
    at commas (``dataset.classes=[A,B]``) and read quotes in them.
    """
    from ral.cli.engine_commands import ConfigCommand

    if command is None or not issubclass(command, ConfigCommand):
        return argv, []
    no_value = {f"--{prefix}{flag}" for flag, boolean in _flags(command).items() if boolean for prefix in ("", "no-")}
    kept, overrides = list(argv[: len(path)]), []
    for i, word in enumerate(argv[len(path) :], start=len(path)):
        before = argv[i - 1]
        takes_this = before.startswith("-") and "=" not in before and before not in no_value and i > len(path)
        if _OVERRIDE.match(word) and not takes_this:
            overrides.append(word)
        else:
            kept.append(word)
    return kept, overrides


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ral ARGV``; returns the exit status (2 for bad input, with one line on stderr)."""
    from pydantic import ValidationError
    from pydantic_settings import CliApp, SettingsError

    from ral.cli.app import COMMANDS, Ral, settings_source

    warnings.formatwarning = _one_line_warning
    argv = list(sys.argv[1:] if argv is None else argv)
    path = _command_path(argv)
    command = COMMANDS.get(tuple(path))
    name = " ".join(["ral", *path])
    if argv == ["--version"]:
        from ral import __version__

        print(f"ral {__version__}")
        return 0
    try:
        argv, overrides = _split_overrides(argv, path, command)
        given = {"overrides": overrides} if overrides else {}
        for part in reversed(path):
            given = {part: given} if given else {}
        CliApp.run(Ral, cli_args=argv, cli_settings_source=settings_source(), **given)
    except SettingsError as exc:
        message = str(exc).removeprefix("error parsing CLI: ")
        report(f"{name}: error: {one_line(_unknown_flag(message, command))}")
        return 2
    except ValidationError as exc:
        report(f"{name}: error: {one_line(_validation_error(exc, path, command))}")
        return 2
    except ValueError as exc:  # bad input: one clear line, no traceback
        report(f"{name}: error: {one_line(_hint(exc, command))}")
        return 2
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except OSError as exc:  # a missing file, an unwritable output, a full disk: the path and the reason
        reason = f"{exc.filename}: {exc.strerror}" if exc.filename is not None and exc.strerror else str(exc)
        report(f"{name}: error: {one_line(reason)}")
        return 2
    except RuntimeError:  # a distributed run's collective broke because another process failed: its one line
        if peer_failure():
            return 2
        raise
    except KeyboardInterrupt:  # Ctrl+C outside training (which saves and stops itself: ral.engine.signals)
        report(f"{name}: interrupted")
        return 128 + 2
    return 0
