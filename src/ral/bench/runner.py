"""A resumable store of benchmark runs: one folder per run, a ``result.json`` done-marker.

Every benchmark (loss comparison, sensitivity grid) is a list of independent runs. A run's
result is written atomically to ``<root>/runs/<run_id>/result.json`` only after it finished,
so re-running the command after an interruption skips every finished run and repeats only the
one that was cut off. The store also pins the settings of the whole benchmark (``bench.json``):
resuming into a folder that was made with other settings is refused instead of mixing results.
Several processes (``--shard I/N``) may share one store: ``bench.json`` is created atomically
once, and each run is computed under its own lock file (``<root>/locks/<run_id>.lock``), so no
two processes ever work on one run folder.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ral.bench.parallel import RunBusy, create_exclusive, file_lock
from ral.report import to_jsonable, write_text

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=+-]*$")


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
        self.root.mkdir(parents=True, exist_ok=True)
        self.settings = to_jsonable(dict(settings))
        marker = self.root / "bench.json"
        # created atomically and only once: shards starting together cannot overwrite each other's
        if not create_exclusive(marker, json.dumps(self.settings, indent=2, sort_keys=True) + "\n"):
            stored = json.loads(marker.read_text(encoding="utf-8"))
            if stored != self.settings:
                changed = sorted(k for k in set(stored) | set(self.settings) if stored.get(k) != self.settings.get(k))
                raise ValueError(
                    f"output folder {self.root} holds a benchmark with other settings "
                    f"(differs in {changed}); use another --out or delete the folder"
                )

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
        self,
        run_id: str,
        spec: Mapping[str, Any],
        fn: Callable[[Path], Mapping[str, Any]],
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
        # one process per run: another shard (or a second command on the same folder) skips it
        with file_lock(self.root / "locks" / f"{run_id}.lock", blocking=False) as held:
            if not held:
                raise RunBusy(run_id)
            done = self.result(run_id, spec)  # finished by another process since the first look
            if done is not None:
                return done, False
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            result = to_jsonable({**dict(fn(folder)), "run_id": run_id, "spec": dict(spec)})
            write_text(json.dumps(result, indent=2) + "\n", folder / "result.json")
        return result, True

    def results(self) -> list[dict[str, Any]]:
        """All finished results in this folder, sorted by run id."""
        runs = self.root / "runs"
        if not runs.exists():
            return []
        out = []
        for path in sorted(runs.glob("*/result.json")):
            out.append(json.loads(path.read_text(encoding="utf-8")))
        return out
