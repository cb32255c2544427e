"""Claim 2, controlled: does the Hill weight make RAL less sensitive to gamma_neg and tau?

Reads the grid.csv of ``ral bench sensitivity --simulate --loss ral asl apl`` and compares, on the
same 3 x 3 grid of (gamma_neg, tau = ASL/APL "clip"), losses that differ only in the Hill weight:

    ASL (gamma_pos = 0)            vs  RAL with eps_pos = ()        and lam = 1.5  (ASL + Hill)
    APL (eps_pos = paper)          vs  RAL with eps_pos = paper     and lam = 1.5  (APL + Hill = RAL)

and prints mean, sample std, worst, best and range of the test mAP over the 9 points of each.

    .venv/bin/python benchmarks/sensitivity_matched.py [runs/bench/sensitivity-multilabel-grid/grid.csv]
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from ral.bench.sensitivity import grid_statistics
from ral.report import markdown_table

PAPER_EPS = "(-1, 1.25)"
SUBGRIDS = [
    ("asl (gamma_pos=0)", "asl", {"gamma_pos": "0"}, "clip"),
    ("ral, eps_pos=(), lam=1.5 (= asl + Hill)", "ral", {"eps_pos": "()", "lam": "1.5"}, "tau"),
    ("apl (eps_pos=paper)", "apl", {"eps_pos": PAPER_EPS}, "clip"),
    ("ral, eps_pos=paper, lam=1.5 (= apl + Hill)", "ral", {"eps_pos": PAPER_EPS, "lam": "1.5"}, "tau"),
]


def matched_table(grid: pd.DataFrame, metric: str = "mAP") -> pd.DataFrame:
    """One row per sub-grid of :data:`SUBGRIDS` with the spread of ``metric`` over its points."""
    rows = []
    for label, loss, fixed, shift in SUBGRIDS:
        part = grid[grid["loss"] == loss]
        for column, value in fixed.items():
            part = part[part[column].astype(str) == value]
        if part.empty:
            raise ValueError(f"{label}: no grid points (is the grid the default one of `ral bench sensitivity`?)")
        stats = grid_statistics(part.reset_index(drop=True), metric, ["gamma_neg", shift])
        rows.append({"sub-grid (gamma_neg x tau/clip)": label, "points": stats["points"],
                     "mean": stats["mean"], "std": stats["std"], "worst": stats["worst"], "best": stats["best"],
                     "range": stats["range"]})
    return pd.DataFrame(rows)


def main(argv: list[str]) -> int:
    path = Path(argv[0] if argv else "runs/bench/sensitivity-multilabel-grid/grid.csv")
    grid = pd.read_csv(path, dtype=str).assign(mAP=lambda f: f["mAP"].astype(float))
    print(markdown_table(matched_table(grid)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
