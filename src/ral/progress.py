"""Progress bars of the long steps: simulation, image-cache builds, inference, benchmark runs.

One library, tqdm (the one Lightning's training bar uses), writing to stderr. A bar shows only
where someone watches it:

- off when stderr is not a terminal (CI logs, pipes, files: tqdm's ``disable=None``), so logs
  never fill with one line per update;
- off inside :func:`quiet` (what ``ral ... --quiet`` runs its command in).

Example::

    from ral.progress import progress

    with progress(total=len(rows), desc="image cache", unit="image") as bar:
        for chunk in chunks:
            ...
            bar.update(len(chunk))  # "1200/2000 [00:03<00:02, 380image/s]": count, elapsed<ETA, rate

This module imports nothing else from :mod:`ral`, so every layer (data, engine, bench) may use it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from tqdm import tqdm

T = TypeVar("T")

# A context variable, not a module setting: it holds inside a `with quiet():` block (and the
# threads it starts) and is restored when the block ends, so one command's --quiet never leaks.
_QUIET: ContextVar[bool] = ContextVar("ral_progress_quiet", default=False)


@contextmanager
def quiet(on: bool = True) -> Iterator[None]:
    """Inside this block, :func:`progress` bars are off (``on=False`` keeps the surrounding state)."""
    token = _QUIET.set(on or _QUIET.get())
    try:
        yield
    finally:
        _QUIET.reset(token)


def is_quiet() -> bool:
    """Whether bars are switched off by :func:`quiet` (a bar may still be off for lack of a terminal)."""
    return _QUIET.get()


def bars_shown(stream: Any = None) -> bool:
    """Whether a bar is drawn on ``stream`` (default: stderr): a terminal, outside :func:`quiet`. The
    rule of :func:`progress`, for bars drawn by another library (Lightning's training bar)."""
    stream = sys.stderr if stream is None else stream
    return not _QUIET.get() and callable(getattr(stream, "isatty", None)) and stream.isatty()


def progress(
    iterable: Iterable[T] | None = None,
    *,
    desc: str,
    total: float | None = None,
    unit: str = "it",
    **options: Any,
) -> tqdm:
    """A tqdm bar on stderr: count, elapsed and remaining time (ETA) and rate, redrawn in place at
    most twice a second; off when stderr is not a terminal or inside :func:`quiet`.

    Args:
        iterable: iterate through the bar (``for x in progress(items, desc=...)``); or None and
            call ``bar.update(n)``.
        desc: what is counted, e.g. ``"image cache"``.
        total: the expected count (default: ``len(iterable)`` where it has one).
        unit: the counted thing, e.g. ``"image"``, ``"batch"``, ``"run"``.
        options: further tqdm options (``file``, ``disable``: ``False`` forces the bar on, ...).
    """
    options.setdefault("disable", True if _QUIET.get() else None)
    options.setdefault("mininterval", 0.5)
    options.setdefault("dynamic_ncols", True)
    return tqdm(iterable, desc=desc, total=total, unit=unit, **options)


def printing() -> AbstractContextManager[None]:
    """Print lines inside this block without breaking the bars on screen: they are cleared first
    and redrawn below the text afterwards (tqdm's ``external_write_mode``)."""
    return tqdm.external_write_mode()
