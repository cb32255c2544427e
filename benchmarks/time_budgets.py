"""Time ONE run of each benchmark budget (and the simulation of its data) on this machine.

The evidence plan of ``benchmarks/evidence_plan.py`` multiplies these times by the number of runs;
run this on a quiet machine (``uptime``: load well below the number of cores) with one torch thread,
the setting of every ``ral bench`` run, and copy the seconds into its ``MEASURED_SECONDS``:

    .venv/bin/python benchmarks/time_budgets.py [--out runs/bench/budget-times]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

from ral.bench.experiment import LossSpec, get_budget, simulated_data, train_and_evaluate
from ral.bench.timing import machine_description

#: (budget, simulated set, loss): one run each.
CASES = (
    ("quick", "multilabel", "ral"),
    ("grid", "multilabel", "ral"),
    ("default", "multilabel", "ral"),
    ("default", "single", "ral_single"),
    ("default", "fundus", "ral_single"),
)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bench/budget-times")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    print(f"machine: {machine_description()}")
    for budget_name, task, loss in CASES:
        budget = get_budget(budget_name)
        folder = out / f"{budget_name}-{task}"
        started = time.perf_counter()
        data = simulated_data(folder / "data", budget, task=task)
        simulated = time.perf_counter() - started
        started = time.perf_counter()
        result = train_and_evaluate(
            data, LossSpec(loss, loss), 0, budget, folder / "run", cache_dir=str(folder / "cache")
        )
        run = time.perf_counter() - started
        load = os.getloadavg()[0]
        print(
            f"{budget_name:8s} {task:10s} {loss:10s} simulate {simulated:6.1f} s  run {run:6.1f} s "
            f"(train {result['epochs']} x {result['epoch_seconds']:.1f} s/epoch)  load {load:.2f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
