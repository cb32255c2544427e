"""What ``ral tune`` writes once its trials are done: best.yaml, trials.csv, summary.md and plots.

Every worker writes them from the whole study (atomically), so the files show the study as the last
worker to finish saw it. Plots are Optuna's matplotlib ones; the importances are fANOVA's
(:class:`optuna.importance.FanovaImportanceEvaluator`, seeded), computed on the complete trials.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ral.engine.config import Config, yaml_text
from ral.losses import Choice
from ral.losses._space import value_of
from ral.report import markdown_table, write_csv, write_text
from ral.tune.space import current_values, stored_params, trial_config
from ral.tune.study import COUNTED, finished, shown_url

if TYPE_CHECKING:
    import optuna
    import pandas as pd

#: Folder (under ``out``) that best.yaml trains into.
BEST_RUN = "best"
TOP_TRIALS = 10


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The complete trial with the highest value, or None."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return max(complete, key=lambda t: t.value, default=None)


def best_config_text(config: Config, values: dict[str, Any], out: Path, header: str) -> str:
    """best.yaml: ``config`` with the best trial's ``values``, training into ``out/best``; the ``tune``
    section is left out (a plain training config)."""
    best = trial_config(config, values, str(out / BEST_RUN)).to_dict()
    best.pop("tune", None)
    return "".join(f"# {line}\n" for line in header.splitlines()) + yaml.safe_dump(best, sort_keys=False)


def importances(study: optuna.Study) -> dict[str, float]:
    """fANOVA importance of each parameter (summing to 1) over the complete trials; empty when fewer
    than two complete trials or no parameter varies."""
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    try:
        return dict(get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0)))
    except (RuntimeError, ValueError, ZeroDivisionError):
        return {}


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: number, state, value, start / end times, parameters, user attributes."""
    frame = study.trials_dataframe(attrs=("number", "state", "value", "datetime_start", "duration", "params"))
    frame["user_attrs"] = [t.user_attrs for t in study.get_trials(deepcopy=False)]
    attrs = frame.pop("user_attrs").apply(lambda attrs: {f"user_attrs_{k}": v for k, v in attrs.items()})
    import pandas as pd

    return pd.concat([frame, pd.DataFrame(list(attrs), index=frame.index)], axis=1)


def _save_axes(axes: Any, path: Path) -> Path:
    """Save the figure of Optuna's matplotlib ``axes`` (an Axes or an array of them) and close it."""
    import matplotlib.pyplot as plt
    import numpy as np

    from ral.report import atomic_write

    figure = np.asarray(axes).flat[0].figure
    figure.set_size_inches(max(figure.get_size_inches()[0], 6), max(figure.get_size_inches()[1], 4))
    try:
        return atomic_write(path, lambda handle: figure.savefig(handle, format="png", dpi=120, bbox_inches="tight"))
    finally:
        plt.close(figure)


def plots(study: optuna.Study, out: Path, ranked: list[str]) -> tuple[list[Path], list[str]]:
    """history.png, importances.png, slice.png and contour.png (the two most important parameters);
    returns the written files and a note per plot that could not be drawn."""
    import matplotlib
    from optuna.importance import FanovaImportanceEvaluator
    from optuna.visualization import matplotlib as vis

    top = ranked[:2]
    wanted = {
        "history.png": lambda: vis.plot_optimization_history(study),
        "importances.png": lambda: vis.plot_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0)),
        "slice.png": lambda: vis.plot_slice(study, params=top or None),
        "contour.png": lambda: vis.plot_contour(study, params=top),
    }
    if len(top) < 2:
        wanted.pop("contour.png")
    if not ranked:
        wanted.pop("importances.png")
    written, notes = [], []
    with matplotlib.rc_context():  # optuna's plots switch pyplot's style: restored afterwards
        for name, draw in wanted.items():
            try:
                written.append(_save_axes(draw(), out / name))
            except (RuntimeError, ValueError, TypeError, IndexError) as exc:
                notes.append(f"{name} not drawn: {exc}")
    return written, notes


def shown(value: Any) -> str:
    """A parameter value as YAML writes it, numbers to 4 significant digits."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return yaml_text(list(value) if isinstance(value, tuple) else value)


def _range_text(entry: Any) -> str:
    if isinstance(entry, Choice):
        return "one of " + ", ".join(shown(value) for value in entry.values)
    log = " (log)" if getattr(entry, "log", False) else ""
    return f"{shown(entry.low)} to {shown(entry.high)}{log}"


def summary_text(
    study: optuna.Study,
    config: Config,
    space: dict[str, Any],
    *,
    url: str,
    metric: str,
    trials: int,
    ranked: dict[str, float],
    notes: list[str],
) -> str:
    """summary.md: the study, its counts, best against starting point, importances, top trials."""
    import pandas as pd

    states: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        states[trial.state.name] = states.get(trial.state.name, 0) + 1
    counts = ", ".join(f"{n} {s.lower()}" for s, n in sorted(states.items()))
    lines = [
        f"# ral tune: study `{study.study_name}`",
        "",
        f"- storage: `{shown_url(url)}` (open it with `optuna-dashboard {shown_url(url)}`)",
        f"- loss: `{config.loss.name}`; objective: `{metric}` (the best validation epoch of each trial), maximised",
        f"- trials: {counts} ({finished(study)} of the study total {trials} count: {' and '.join(COUNTED).lower()})",
    ]
    best = best_trial(study)
    start = next((t for t in study.trials if t.user_attrs.get("starting_point") and t.value is not None), None)
    if best is None:
        return "\n".join([*lines, "", "No complete trial yet.", ""])
    lines.append(f"- best: trial {best.number}, {metric} {best.value:.4f} (`ral train --config best.yaml`)")
    if start is not None:
        lines.append(
            f"- starting point (the config's values): trial {start.number}, {metric} {start.value:.4f}; "
            f"gain {best.value - start.value:+.4f} (validation: optimistic, a maximum over trials)"
        )
    values = current_values(config)
    best_values = stored_params(best.params, space)
    rows = [
        {
            "parameter": name,
            "starting point": shown(value_of(values, name)),
            "best": shown(best_values.get(name)),
            "range": _range_text(entry),
        }
        for name, entry in space.items()
    ]
    lines += ["", "## Parameters", "", markdown_table(pd.DataFrame(rows))]
    if ranked:
        table = pd.DataFrame({"parameter": list(ranked), "importance": list(ranked.values())})
        lines += ["", "## Importances (fANOVA over the complete trials)", "", markdown_table(table, floatfmt=".3f")]
    complete = sorted((t for t in study.trials if t.value is not None), key=lambda t: -t.value)[:TOP_TRIALS]
    top = pd.DataFrame(
        [
            {
                "trial": t.number,
                metric: f"{t.value:.4f}",
                **{k: shown(v) for k, v in stored_params(t.params, space).items()},
            }
            for t in complete
        ]
    )
    lines += ["", f"## Top {len(complete)} trials", "", markdown_table(top)]
    lines += ["", "## Plots", "", *[f"![{p}]({p})" for p in ("history.png", "importances.png", "slice.png")]]
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def write_outputs(
    study: optuna.Study, config: Config, space: dict[str, Any], out: Path, *, url: str, metric: str, trials: int
) -> dict[str, Any]:
    """Write trials.csv, best.yaml (when a trial completed), the plots and summary.md into ``out``.

    Returns:
        ``{"best": {"number", "value", "params"} or None, "files": [written paths]}``.
    """
    files = [write_csv(trials_frame(study), out / "trials.csv")]
    best = best_trial(study)
    summary = None
    if best is not None:
        values = stored_params(best.params, space)
        header = f"ral tune: study {study.study_name}, best trial {best.number}, {metric} {best.value:.4f}"
        files.append(write_text(best_config_text(config, values, out, header), out / "best.yaml"))
        summary = {"number": best.number, "value": best.value, "params": values}
    ranked = importances(study)
    written, notes = plots(study, out, list(ranked))
    text = summary_text(study, config, space, url=url, metric=metric, trials=trials, ranked=ranked, notes=notes)
    files += [*written, write_text(text, out / "summary.md")]
    return {"best": summary, "files": [str(path) for path in files]}
