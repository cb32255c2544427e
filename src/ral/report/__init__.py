"""Outputs of evaluations and benchmarks: atomic JSON / CSV / Markdown writers and plots.

Writers never leave a half-written file (:func:`atomic_path`: temp file in the same folder,
fsync, ``os.replace``);
plots use matplotlib's Agg canvas per figure, so importing this package loads no backend.
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
    "stale_temporaries",
    "to_jsonable",
    "write_csv",
    "write_json",
    "write_text",
]
