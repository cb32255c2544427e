"""docs/results.md's tuning section: claim 2 measured as the gain that tuning buys (``ral bench tune``).

Read from the bench folder: ``results.csv`` (one row per study, ``ral.bench.tune.study_row``),
``bench.json`` (budget and data) and the studies in ``study.db`` (best-so-far curves, wall time).

Rule of the verdict: claim 2 predicts that tuning buys RAL less than ASL and APL (the *test* gain of
the best trial over the defaults: the validation gain is a maximum over noisy trials and always >= 0)
and that RAL's validation score varies less over its search space (std over a search's trials).
*shown*: both smaller for RAL than for ASL and for APL; *not shown*: neither; otherwise *partly
shown*, saying which.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from report_files import Images

from ral.bench.tune import tune_summary
from ral.metrics import headline_metric

PEERS = ("asl", "apl")
MEASURES = {"gain_test": "test gain", "val_std": "validation std over trials"}


def tuning_verdict(results: pd.DataFrame) -> str:
    """Claim 2 by the tuning gain, by the rule of this module."""
    means = results.groupby("loss")[list(MEASURES)].mean()
    if not {"ral", *PEERS} <= set(means.index):
        return "**not tested** (ral, asl and apl were not all tuned)"
    smaller = [
        name for column, name in MEASURES.items() if (means.loc["ral", column] < means.loc[list(PEERS), column]).all()
    ]
    if len(smaller) == len(MEASURES):
        return "**shown**: RAL's test gain and validation std over trials are both smaller than ASL's and APL's"
    if not smaller:
        return (
            "**not shown**: neither RAL's test gain nor its validation std over trials is smaller than ASL's and APL's"
        )
    return f"**partly shown**: only RAL's {smaller[0]} is smaller than ASL's and APL's"


def _studies(folder: Path) -> list[Any]:
    import optuna

    storage = f"sqlite:///{(folder / 'study.db').resolve()}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    names = [summary.study_name for summary in optuna.get_all_study_summaries(storage)]
    return [optuna.load_study(study_name=name, storage=storage) for name in sorted(names)]


def _best_so_far(studies: list[Any]) -> dict[str, np.ndarray]:
    """Per loss: the best validation score after each trial, mean over its searches."""
    curves: dict[str, list[np.ndarray]] = {}
    for study in studies:
        values = [
            t.value for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number) if t.value is not None
        ]
        curves.setdefault(study.study_name.rsplit("-", 1)[0], []).append(np.maximum.accumulate(values))
    return {loss: np.mean([c[: min(map(len, runs))] for c in runs], axis=0) for loss, runs in curves.items()}


def _plot(curves: dict[str, np.ndarray], metric: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for loss, curve in curves.items():
        ax.plot(np.arange(1, len(curve) + 1), curve, marker="o", markersize=3, label=loss)
    ax.set_xlabel("trial (trial 1 = the loss's defaults)")
    ax.set_ylabel(f"best validation {metric} so far")
    ax.set_title(f"ral bench tune: best validation {metric} by trial (mean over searches)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _wall_time(studies: list[Any]) -> str:
    trials = [t for study in studies for t in study.get_trials(deepcopy=False) if t.datetime_complete]
    start = min(t.datetime_start for t in trials)
    seconds = (max(t.datetime_complete for t in trials) - start).total_seconds()
    return f"{len(trials)} trials from {start:%Y-%m-%d %H:%M} UTC over {seconds / 60:.0f} min of wall time"


def tune_markdown(folder: Path, images: Images, command: str) -> tuple[str, str] | None:
    """The section's markdown and its verdict, or None when the folder holds no results."""
    if not (folder / "results.csv").is_file():
        return None
    results = pd.read_csv(folder / "results.csv")
    bench = json.loads((folder / "bench.json").read_text(encoding="utf-8"))
    metric = headline_metric(bench["data"]["task"])
    trials = int(results["trials"].max())
    summary = tune_summary(
        results, metric=metric, trials=trials, description=bench["data"]["description"], command=command
    )
    table = summary.split("\n", 2)[2].rsplit("\nCommand:", 1)[0]  # without its title and command line
    studies = _studies(folder)
    _plot(_best_so_far(studies), metric, images.path("tune_history.png"))
    budget = bench["budget"]
    verdict = tuning_verdict(results)
    text = (
        f"    {command}\n\n"
        f"Output: `runs/bench/{folder.name}/`. {_wall_time(studies)} (one process, one torch thread, longer "
        f"when other jobs share the machine; backbone `{budget['backbone']}`, {budget['epochs']} epochs, "
        f"{budget['image_size']} px).\n\n"
        + table.replace("## Importances", "#### Importances")
        + "\n"
        + images.markdown("tune_history.png", "best validation score by trial")
        + f"\n\nVerdict on claim 2 by the tuning gain: {verdict}. With {results['search'].nunique()} searches per "
        "loss the intervals are wide; RAL searches 7 parameters and ASL 3, so its importances are shared by more "
        "parameters, and the std over trials also depends on how wide each loss's declared ranges are "
        "(`ral tune --print-space`).\n\n"
    )
    return text, verdict
