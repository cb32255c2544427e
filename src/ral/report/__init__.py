"""Outputs of evaluations and benchmarks: atomic JSON / CSV / Markdown writers and plots.

Writers never leave a half-written file (:func:`atomic_path`: temp file in the same folder,
fsync, ``os.replace``);
plots use matplotlib's Agg canvas per figure, so importing this package loads no backend.
The HTML pages (:mod:`ral.report.evalreport`: report.html of an evaluation; :mod:`ral.report.html`:
the templates, the loss-benchmark page and ``ral report``) load on first use of
:func:`write_eval_report` / :func:`report`.
"""

from ral.report.files import (
    atomic_path,
    atomic_write,
    markdown_table,
    stale_temporaries,
    to_jsonable,
    write_csv,
    write_json,
    write_text,
)
from ral.report.plots import (
    GROUP_COLOURS,
    metric_columns,
    plot_ap_vs_frequency,
    plot_heatmap,
    plot_long_tail,
    plot_metric_bars,
    plot_pr_curves,
)

__all__ = [
    "GROUP_COLOURS",
    "atomic_path",
    "atomic_write",
    "markdown_table",
    "metric_columns",
    "plot_ap_vs_frequency",
    "plot_heatmap",
    "plot_long_tail",
    "plot_metric_bars",
    "plot_pr_curves",
    "report",
    "stale_temporaries",
    "to_jsonable",
    "write_csv",
    "write_eval_report",
    "write_json",
    "write_text",
]


def __getattr__(name: str):
    """The HTML pages on first use (they import the data and engine packages)."""
    if name == "write_eval_report":
        from ral.report.evalreport import write_eval_report

        return write_eval_report
    if name == "report":
        from ral.report.html import report

        return report
    raise AttributeError(f"module 'ral.report' has no attribute {name!r}")
