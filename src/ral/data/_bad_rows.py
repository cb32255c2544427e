"""Collects bad rows of a label table: raise on them, or drop them with a warning (``skip_bad``)."""

from __future__ import annotations

import warnings

import numpy as np


class BadRowsError(ValueError):
    """Bad rows were found and ``skip_bad`` is off. ``summary``: the message without a hint."""

    def __init__(self, summary: str, hint: str | None = None) -> None:
        self.summary = summary
        super().__init__(summary + (f" ({hint} drops such rows)" if hint else ""))


class MissingImagesError(FileNotFoundError):
    """Rows whose image file is missing were found and ``skip_bad`` is off (as :class:`BadRowsError`)."""

    def __init__(self, summary: str, hint: str | None = None) -> None:
        self.summary = summary
        super().__init__(summary + (f" ({hint} drops such rows)" if hint else ""))


BAD_ROW_ERRORS = (BadRowsError, MissingImagesError)


class BadRows:
    """Accumulates per-row problems found while reading one table.

    Args:
        source: the file (or folder) being read, named in every message.
        num_rows: number of data rows N.
    """

    def __init__(self, source: object, num_rows: int) -> None:
        self.source = source
        self.bad = np.zeros(num_rows, dtype=bool)
        self.messages: list[str] = []
        self.errors: list[type[Exception]] = []

    def add(self, mask: np.ndarray, describe, error: type[Exception] = BadRowsError) -> None:
        """Mark rows where ``mask`` (N,) is True; ``describe(i)`` gives the message of row i.

        ``error`` is the exception raised when this is the first problem found
        (:class:`MissingImagesError` for missing files, :class:`BadRowsError` otherwise).
        """
        new = np.flatnonzero(np.asarray(mask, dtype=bool) & ~self.bad)
        if new.size:
            self.messages.append(describe(int(new[0])))
            self.errors.append(error)
            self.bad[new] = True

    @property
    def count(self) -> int:
        return int(self.bad.sum())

    def resolve(self, skip_bad: bool, hint: str | None = "skip_bad=True") -> np.ndarray:
        """Raise on any bad row, or (``skip_bad``) warn and return the kept row indices (sorted).

        ``hint`` names the option that drops bad rows in the error (None: no hint).
        """
        if self.count == 0:
            return np.arange(self.bad.size)
        summary = f"{self.count} bad row(s) of {self.bad.size} in {self.source}; first: {self.messages[0]}"
        if not skip_bad:
            raise self.errors[0](summary, hint)
        warnings.warn("skipped " + summary, stacklevel=3)
        return np.flatnonzero(~self.bad)


def csv_line(row: int) -> str:
    """Human position of 0-based data row ``row`` of a CSV with one header line."""
    return f"line {row + 2} (data row {row + 1})"
