"""HTML pages from the Jinja2 templates in ``ral/report/templates``, and ``ral report``.

- :func:`render`: a template with a context, written atomically.
- :func:`write_bench_report`: the comparison page of a ``ral bench losses`` folder (losses side
  by side, paired differences against RAL, per-class scores).
- :func:`report`: ``ral report PATH``: rebuild report.html of an evaluation folder, of every
  evaluation of a run folder (``<run>/eval/*``), or write a benchmark's comparison page.

Pages are self-contained: styles, the small script that sorts and filters tables, charts (inline
SVG) and pictures (base64 PNG) are inside the file, which makes no network request.
"""

from __future__ import annotations

import base64
import math
import os
from functools import cache
from pathlib import Path
from typing import Any

from ral.report.evalreport import ReportOptions, write_eval_report
from ral.report.files import write_text

#: The page a report folder gets.
REPORT_NAME = "report.html"


def number(value: Any, digits: int = 3) -> str:
    """A table cell: the value with ``digits`` decimals, "n/a" for None / NaN, text as it is."""
    if value is None:
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            return str(value)
    if math.isnan(value):
        return "n/a"
    return str(int(value)) if float(value).is_integer() and digits == 0 else f"{value:.{digits}f}"


def signed(value: Any, digits: int = 4) -> str:
    """A difference with its sign (``+0.0226``); "n/a" for None / NaN."""
    shown = number(value, digits)
    return shown if shown == "n/a" else f"{float(value):+.{digits}f}"


def sort_key(value: Any) -> str:
    """A cell's ``data-sort``: the number (NaN: empty, sorted last by the page's script) or the text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "" if math.isnan(value) else repr(float(value))
    return str(value)


@cache
def environment():
    """The Jinja2 environment of the package's templates (HTML autoescaped)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("ral.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = number
    env.filters["signed"] = signed
    env.filters["sortkey"] = sort_key
    return env


def render(template: str, context: dict[str, Any], path: str | os.PathLike) -> Path:
    """Render ``template`` with ``context`` into ``path`` (atomically) and return the path."""
    import yaml
    from markupsafe import Markup

    html = environment().get_template(template).render(markup=Markup, yaml=yaml.safe_dump, **context)
    return write_text(html, path)


def _png(path: Path) -> str:
    """A ``data:`` URL of a PNG file ("" when it is missing)."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii") if path.is_file() else ""


def write_bench_report(folder: str | os.PathLike) -> Path:
    """Write ``report.html`` of a finished ``ral bench losses`` folder and return its path.

    Raises:
        ValueError: the folder holds another benchmark or no finished run.
    """
    import numpy as np

    from ral.bench.losses import collect_losses
    from ral.bench.losses_report import REFERENCE, SCORE_NAME, paired_frame, summary_frame
    from ral.metrics import metric_names
    from ral.report.evalreport import software_versions

    folder = Path(folder)
    collected = collect_losses(folder)
    if collected is None:
        raise ValueError(f"{folder}: no finished run of `ral bench losses` in this folder")
    settings, results, per_class = collected
    task = settings["data"]["task"]
    metrics = list(metric_names(task))
    summary = summary_frame(results, task)
    paired = []
    for metric in metrics:
        diffs = paired_frame(results, task, metric)
        for row in diffs.to_dict("records"):
            paired.append({"metric": metric, **row, "loss": row[diffs.columns[0]]})
    score = SCORE_NAME[task]
    losses = list(summary["loss"])
    by_class = per_class.groupby(["class", "loss"], sort=False)[score].mean().unstack("loss")
    counts = per_class.drop_duplicates("class").set_index("class")
    class_rows = [
        {
            "class": name,
            "count": counts.loc[name, "count"] if "count" in counts else float("nan"),
            "group": counts.loc[name, "group"] if "group" in counts else "",
            "scores": [float(by_class.loc[name, loss]) if loss in by_class else float("nan") for loss in losses],
        }
        for name in by_class.index
    ]
    for row in class_rows:
        finite = [v for v in row["scores"] if np.isfinite(v)]
        row["best"] = max(finite) if finite else None
    context = {
        "title": f"Loss comparison: {folder.name} ({task}, budget {settings['budget'].get('name', '?')})",
        "folder": str(folder.resolve()),
        "metrics": metrics,
        "summary": summary.to_dict("records"),
        "paired": paired,
        "reference": REFERENCE[task],
        "losses": losses,
        "score": score,
        "class_rows": class_rows,
        "settings": settings,
        "figures": {name: _png(folder / name) for name in ("metrics.png", "per_class.png")},
        "command": (folder / "command.txt").read_text(encoding="utf-8").strip()
        if (folder / "command.txt").is_file()
        else "",
        "versions": software_versions(),
    }
    return render("bench.html.j2", context, folder / REPORT_NAME)


def report(path: str | os.PathLike, options: ReportOptions | None = None) -> list[Path]:
    """(Re)write report.html: of an evaluation folder, of every evaluation of a run, or of a loss benchmark.

    Args:
        path: an evaluation folder of ``ral evaluate`` (with metrics.json), a run folder of
            ``ral train`` or its ``eval`` folder (every evaluation in it), or a ``ral bench losses``
            folder (the comparison page).
        options: the gallery and how to read the evaluations' inputs (:class:`ReportOptions`; None: defaults).

    Returns:
        The written report.html files.

    Raises:
        FileNotFoundError / ValueError: ``path`` is none of these folders, or its files do not fit.
    """
    options = options or ReportOptions()
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"path: {folder} is not a folder")
    if (folder / "metrics.json").is_file():
        return [write_eval_report(folder, options)]
    if (folder / "bench.json").is_file():
        return [write_bench_report(folder)]
    patterns = ("eval/metrics.json", "eval/*/metrics.json", "*/metrics.json")  # a run folder, or its eval/
    evaluations = sorted({found.parent for pattern in patterns for found in folder.glob(pattern)})
    if not evaluations:
        raise FileNotFoundError(
            f"path: {folder} holds no metrics.json (an evaluation folder), no eval/*/metrics.json (a run folder) "
            "and no bench.json (a loss benchmark)"
        )
    return [write_eval_report(found, options) for found in evaluations]
