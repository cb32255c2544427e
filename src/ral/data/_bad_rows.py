"""Collects bad rows of a label table: raise on them, or drop them with a warning (``skip_bad``)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ral.data.errors import TableError


@dataclass(frozen=True)
class _Problem:
    """The first row of one kind of problem: its message and the fields of the error."""

    message: str
    row: int
    column: str | None
    value: Any
    error: type[TableError]


class BadRows:
    """Accumulates per-row problems found while reading one table.

    Args:
        source: the file (or folder) being read, named in every message.
        num_rows: number of data rows N.
        csv: whether row i is data row i of a CSV file (its line is ``i + 2``); False for a
            folder or a table's image list, whose errors name no line.
    """

    def __init__(self, source: str | os.PathLike, num_rows: int, *, csv: bool = True) -> None:
        self.source = source
        self.csv = csv
        self.bad = np.zeros(num_rows, dtype=bool)
        self.problems: list[_Problem] = []

    def add(
        self,
        mask: np.ndarray,
        describe: Callable[[int], str],
        *,
        column: str | None = None,
        values: Any = None,
        error: type[TableError] = TableError,
    ) -> None:
        """Mark rows where ``mask`` (N,) is True; ``describe(i)`` gives the message of row i.

        ``values[i]`` is the bad value of row i (anything indexable by the row: a list, a
        Series, a dict). ``error`` is the exception raised when this is the first problem
        found (:class:`~ral.data.errors.MissingFileError` for missing files).
        """
        new = np.flatnonzero(np.asarray(mask, dtype=bool) & ~self.bad)
        if new.size:
            i = int(new[0])
            value = None if values is None else values[i]
            self.problems.append(_Problem(describe(i), i, column, value, error))
            self.bad[new] = True

    @property
    def count(self) -> int:
        return int(self.bad.sum())

    def resolve(self, skip_bad: bool) -> np.ndarray:
        """Raise on any bad row, or (``skip_bad``) warn and return the kept row indices (sorted).

        Raises:
            TableError (MissingFileError for a missing image): the first problem, with
                ``option="skip_bad"``.
        """
        if self.count == 0:
            return np.arange(self.bad.size)
        first = self.problems[0]
        summary = f"{self.count} bad row(s) of {self.bad.size} in {self.source}; first: {first.message}"
        if not skip_bad:
            line = first.row + 2 if self.csv else None
            raise first.error(
                summary, path=self.source, row=line, column=first.column, value=first.value, option="skip_bad"
            )
        warnings.warn("skipped " + summary, stacklevel=3)
        return np.flatnonzero(~self.bad)


def csv_line(row: int) -> str:
    """Human position of 0-based data row ``row`` of a CSV with one header line."""
    return f"line {row + 2} (data row {row + 1})"
