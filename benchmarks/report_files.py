"""The files of benchmarks/report.py: its figures' folder and manifest, and its one-line refusals.

The report deletes only what it wrote: the figures it draws are listed in
``<figures' folder>/.report-manifest.json`` as they are drawn; a later report deletes those of them
it no longer draws, and nothing else.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import NoReturn

from ral.report import write_text

#: In the figures' folder: the figures the report wrote there, the only files it ever deletes.
MANIFEST = ".report-manifest.json"


def written_figures(folder: Path) -> set[str]:
    """The figures an earlier report wrote into ``folder`` (its manifest; empty without one)."""
    try:
        return set(json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["figures"])
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def others_files(folder: Path) -> list[str]:
    """The files of ``folder`` no report wrote (not in its manifest)."""
    if not folder.is_dir():
        return []
    ours = written_figures(folder) | {MANIFEST}
    return sorted(entry.name for entry in folder.iterdir() if entry.name not in ours)


class Images:
    """The report's image folder: figures are drawn into it and linked relative to the document.

    Every figure is added to the manifest as it is drawn (so a report that fails half-way still
    owns what it wrote); :meth:`finish` deletes the figures of the last report not drawn again.
    """

    def __init__(self, folder: Path, document: Path) -> None:
        self.folder = folder
        self.link = Path(os.path.relpath(folder, document.parent)).as_posix().rstrip("/") + "/"
        self.before = written_figures(folder)
        self.drawn: list[str] = []

    def _write_manifest(self, names: set[str]) -> None:
        write_text(json.dumps({"figures": sorted(names)}, indent=2) + "\n", self.folder / MANIFEST)

    def record(self, names: list[str]) -> None:
        """Own the figures ``names`` (about to be drawn, or just drawn, into the folder)."""
        self.drawn.extend(names)
        self._write_manifest(self.before | set(self.drawn))

    def path(self, name: str) -> Path:
        self.record([name])
        return self.folder / name

    def markdown(self, name: str, alt: str) -> str:
        return f"![{alt}]({self.link}{name})"

    def finish(self) -> list[str]:
        """Delete the figures the last report drew and this one did not; the files left that no report wrote."""
        for name in sorted(self.before - set(self.drawn)):
            (self.folder / name).unlink(missing_ok=True)
        self._write_manifest(set(self.drawn))
        return others_files(self.folder)


def is_report(path: Path, header: str) -> bool:
    """Whether the document ``path`` was written by the report: it opens with the first two paragraphs of ``header``."""
    opening = "\n\n".join(header.split("\n\n")[:2])
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read(len(opening)) == opening
    except (OSError, UnicodeDecodeError):
        return False


def refuse(message: str) -> NoReturn:
    """Bad arguments: one line on stderr, exit status 2."""
    print(f"benchmarks/report.py: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def check_outputs(runs: Path, folders: list[str], out: Path, img: Path, *, owned: bool, overwrite: bool) -> None:
    """Refuse (:func:`refuse`) before any work: a ``runs`` folder that is missing or holds none of the
    benchmark ``folders``; an existing ``out`` the report does not own (``owned``) without
    ``--overwrite``; a figures' folder ``img`` holding files no report wrote without ``--overwrite``."""
    if not runs.is_dir():
        refuse(f"--runs {runs}: no such folder (run the benchmarks first: make bench-evidence)")
    if not any((runs / folder).is_dir() for folder in folders):
        refuse(f"--runs {runs}: holds none of the benchmark folders ({', '.join(folders)}); nothing to report")
    if out.exists() and not owned and not overwrite:
        refuse(f"--out {out}: the file exists and this report did not write it; pass --overwrite to replace it")
    if (others := others_files(img)) and not overwrite:
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        refuse(
            f"--img {img}: the folder holds files this report did not write ({shown}); pass --overwrite to draw "
            "into it anyway (they are kept), or choose another --img"
        )
