"""Errors of the data layer, with the file, CSV line, column and value as fields.

``str(error)`` is one line that names the file, the line, the column and the value, in no
interface's spelling. ``error.option`` is the :class:`~ral.data.options.TableOptions` field
that would let the input through (``"skip_bad"``, ``"allow_outside_root"``), or None; each
interface names that option its own way with :meth:`TableError.with_hint`:

    except TableError as exc:
        print(exc.with_hint(lambda option: "--" + option.replace("_", "-")))
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

#: What turning an option on does, for the hint (``"... (--skip-bad drops such rows)"``).
_REMEDIES = {"skip_bad": "drops such rows", "allow_outside_root": "allows them"}


class TableError(ValueError):
    """A label table, or a file it names, cannot be read as asked.

    Attributes:
        path: the file (or folder) at fault, when there is one.
        row: the CSV line (1 = the header) of the first bad row, when there is one.
        column: the column of the bad value, when there is one.
        value: the bad value (a cell, an image path), when there is one.
        option: the ``TableOptions`` field (a bool) that would let the input through, or None.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike | None = None,
        row: int | None = None,
        column: str | None = None,
        value: Any = None,
        option: str | None = None,
    ) -> None:
        super().__init__(message)
        self.path, self.row, self.column, self.value, self.option = path, row, column, value, option

    def __reduce__(self):  # picklable (process pools): the fields travel as the state
        return type(self), (str(self),), self.__dict__

    def with_hint(self, spell: Callable[[str], str | None] = lambda option: f"{option}=True") -> str:
        """The message, with how to let the input through when there is an option for it.

        Args:
            spell: how the interface writes an option that is turned on (default: Python's
                ``skip_bad=True``); returning None leaves the hint out (an interface without it).
        """
        name = spell(self.option) if self.option is not None else None
        return f"{self} ({name} {_REMEDIES[self.option]})" if name else str(self)


class MissingFileError(TableError, FileNotFoundError):
    """The table, a file it needs (MIMIC's metadata, split file) or an image file does not exist."""


def with_hint(error: BaseException, spell: Callable[[str], str | None]) -> str:
    """``error.with_hint(spell)`` for a :class:`TableError`, else ``str(error)`` (for a handler of any error)."""
    return error.with_hint(spell) if isinstance(error, TableError) else str(error)
