"""A resumable store of benchmark runs: one folder per run, a ``result.json`` done-marker.

Every benchmark (loss comparison, sensitivity grid) is a list of independent runs. A run's
result is written atomically to ``<root>/runs/<run_id>/result.json`` only after it finished,
so re-running the command after an interruption skips every finished run and repeats only the
one that was cut off. The store also pins the settings of the whole benchmark (``bench.json``):
resuming into a folder that was made with other settings is refused instead of mixing results.
:func:`open_bench_folder` checks the folder before a benchmark starts (and ``--overwrite``
discards it).

Several processes (``--shard I/N``, :mod:`ral.bench.parallel`) may share one store: ``bench.json``
is written once under a lock, and each run is computed under its own lock file
(``<root>/locks/<run_id>.lock``, ``filelock``: the OS releases it when its holder dies), so no
two processes ever work on one run folder. (Hand-written: caches such as ``joblib.Memory`` key
results by arguments but neither pin a benchmark's settings nor keep two processes off one run.)
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ral.bench.parallel import WHOLE, Shard
from ral.progress import printing, progress
from ral.report import to_jsonable, write_text
from ral.report.files import check_writable, is_empty_folder

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=+-]*$")

MARKER = "bench.json"
#: What a benchmark writes before its marker (an interrupted first start leaves only these).
_BEFORE_MARKER = {"data", "cache", "runs", "locks"}


def _other_settings(root: Path, changed: list[str]) -> str:
    return (
        f"output folder {root} holds a benchmark with other settings (differs in {changed}); "
        "use another --out, or --overwrite to discard it"
    )


def _differing(stored: Any, wanted: Any, prefix: str = "") -> list[str]:
    """Keys of ``wanted`` (nested: only its own sub-keys) whose values ``stored`` does not hold."""
    if isinstance(wanted, Mapping) and isinstance(stored, Mapping):
        return [
            key for name, value in wanted.items() for key in _differing(stored.get(name), value, f"{prefix}{name}.")
        ]
    return [] if stored == wanted else [prefix.rstrip(".")]


def open_bench_folder(root: str | Path, *, overwrite: bool = False, settings: Mapping[str, Any]) -> Path:
    """Check, before a benchmark does anything, that it may use the folder ``root``.

    A missing or empty folder is fine. A folder holding a benchmark (its ``bench.json``, or only
    what a benchmark writes before it) is resumed, unless its stored settings differ in one of
    the keys of ``settings`` (those known before the data is prepared, e.g. the budget; nested
    mappings compare only their own keys): then it is refused. With ``overwrite`` a benchmark
    folder is deleted first. A folder holding anything else is refused, also with
    ``overwrite``: nothing but a benchmark is ever deleted.

    Raises:
        FileExistsError: a folder that is not a benchmark. ValueError: other settings.
        OSError: ``root`` cannot be written.
    """
    root = check_writable(root, folder=True)
    if is_empty_folder(root):
        return root
    marker = root / MARKER
    if not marker.is_file() and not {entry.name for entry in root.iterdir()} <= _BEFORE_MARKER:
        raise FileExistsError(f"{root}: the folder holds files that are not a ral benchmark; choose another --out")
    if overwrite:
        shutil.rmtree(root)
        return root
    if marker.is_file():
        changed = _differing(json.loads(marker.read_text(encoding="utf-8")), to_jsonable(dict(settings)))
        if changed:
            raise ValueError(_other_settings(root, changed))
    return root


class RunBusy(RuntimeError):
    """A run that another process is computing at this moment (see :meth:`RunStore.run`)."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id} is being computed by another process")
        self.run_id = run_id


def _read_results(root: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(root.glob("runs/*/result.json"))]


class RunStore:
    """Folder of finished and pending runs of one benchmark.

    Args:
        root: output folder of the benchmark (created if missing).
        settings: everything that makes results comparable (data, budget, task ...). Stored in
            ``bench.json`` on first use; a later store on the same folder must pass equal settings.

    Raises:
        ValueError: if ``root`` holds a benchmark made with different settings.
    """

    def __init__(self, root: str | Path, settings: Mapping[str, Any]) -> None:
        self.root = Path(root)
        self.settings = to_jsonable(dict(settings))
        marker = self.root / MARKER
        # under a lock: shards starting together write the marker once and never over each other
        with FileLock(self.root / "locks" / "bench.lock"):
            if not marker.is_file():
                write_text(json.dumps(self.settings, indent=2, sort_keys=True) + "\n", marker)
                return
        stored = json.loads(marker.read_text(encoding="utf-8"))
        if stored != self.settings:
            changed = sorted(k for k in set(stored) | set(self.settings) if stored.get(k) != self.settings.get(k))
            raise ValueError(_other_settings(self.root, changed))

    def run_dir(self, run_id: str) -> Path:
        """Folder of one run (not created)."""
        if not _RUN_ID.match(run_id):
            raise ValueError(f"run_id must match {_RUN_ID.pattern}, got {run_id!r}")
        return self.root / "runs" / run_id

    def result(self, run_id: str, spec: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """The stored result of a finished run, or ``None`` (also when its ``spec`` changed)."""
        path = self.run_dir(run_id) / "result.json"
        if not path.exists():
            return None
        stored = json.loads(path.read_text(encoding="utf-8"))
        if spec is not None and stored.get("spec") != to_jsonable(dict(spec)):
            return None
        return stored

    def run(
        self, run_id: str, spec: Mapping[str, Any], fn: Callable[[Path], Mapping[str, Any]]
    ) -> tuple[dict[str, Any], bool]:
        """Return the result of run ``run_id``, computing it with ``fn(run_dir)`` only if needed.

        ``spec`` describes the run (loss, parameters, seed); a stored result with another spec
        is recomputed. A folder left by an interrupted run is wiped before ``fn`` starts again.

        Returns:
            ``(result, computed)``: the result dict (``spec`` included) and whether it was computed now.

        Raises:
            RunBusy: another process is computing this run now (it holds the run's lock).
        """
        done = self.result(run_id, spec)
        if done is not None:
            return done, False
        folder = self.run_dir(run_id)
        try:  # one process per run: another shard (or a second command on the same folder) skips it
            held = FileLock(self.root / "locks" / f"{run_id}.lock").acquire(blocking=False)
        except Timeout:
            raise RunBusy(run_id) from None
        with held:
            done = self.result(run_id, spec)  # finished by another process since the first look
            if done is not None:
                return done, False
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            result = to_jsonable({**dict(fn(folder)), "run_id": run_id, "spec": dict(spec)})
            write_text(json.dumps(result, indent=2) + "\n", folder / "result.json")
        return result, True

    @staticmethod
    def finished(folder: str | Path, benchmark: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """``(settings, results)`` of a benchmark folder of kind ``benchmark`` ("losses",
        "sensitivity"), or None when it holds no finished run. Reads only.

        Raises:
            ValueError: the folder holds another kind of benchmark.
        """
        marker = Path(folder) / MARKER
        if not marker.is_file():
            return None
        settings = json.loads(marker.read_text(encoding="utf-8"))
        if settings.get("benchmark") != benchmark:
            raise ValueError(f"{folder}: not a {benchmark} benchmark (bench.json says {settings.get('benchmark')!r})")
        results = _read_results(Path(folder))
        return (settings, results) if results else None

    def results(self) -> list[dict[str, Any]]:
        """All finished results in this folder, sorted by run id."""
        return _read_results(self.root)


@dataclass(frozen=True)
class Job:
    """One run of a benchmark: its id and spec in the run store, the work, and how to log it."""

    run_id: str
    spec: Mapping[str, Any]
    work: Callable[[Path], Mapping[str, Any]]
    label: str
    metric: str


def run_jobs(
    store: RunStore, jobs: Sequence[Job], shard: Shard = WHOLE, *, log: Callable[[str], None] = print
) -> list[dict[str, Any] | None]:
    """Run (or reuse) this shard's jobs in order, then read back the result of every job.

    A job another process is computing (:class:`RunBusy`) is skipped with a log line.

    Returns:
        One entry per job of the whole benchmark (every shard's): its stored result, or None
        while it has not finished (in this or another process).
    """
    mine = [(position, job) for position, job in enumerate(jobs) if shard.takes(position)]
    with progress(total=len(mine), desc="runs", unit="run") as bar:
        for position, job in mine:
            head = f"[{position + 1}/{len(jobs)}] {job.label}"
            bar.set_description(f"run {position + 1} of {len(jobs)} ({job.label})")
            started = time.perf_counter()
            try:
                result, computed = store.run(job.run_id, job.spec, job.work)
                how = f"{time.perf_counter() - started:.0f} s" if computed else "done before, reused"
                line = f"{head}: {job.metric} {result[job.metric]:.4f} ({how})"
            except RunBusy:
                line = f"{head}: being computed by another process, skipped"
            with printing():  # above the bar
                log(line)
            bar.update()
    return [store.result(job.run_id, job.spec) for job in jobs]
