"""The full evidence of docs/results.md: which benchmarks, how many runs, how long, in which folders.

:func:`evidence_plan` counts the runs from the code (the default loss lists, the default arms and
grids, the budgets' seeds, the default missing rates) and multiplies them by :data:`MEASURED`, the
wall time of ONE run of each budget (train + evaluate, one torch thread) measured with
``benchmarks/time_budgets.py`` on the 2-core development machine; the training benchmarks run as
:data:`SHARDS` shards in parallel (``make bench-evidence``). ``benchmarks/report.py`` writes the
resulting table into docs/results.md's "How to reproduce", so the arithmetic there always matches
the code. Timing benchmarks (step time, loss speed, throughput) must run alone afterwards.

The arithmetic at the measured seconds (``make bench-evidence``, one torch thread per shard, 2 cores):

    losses:      (14 multi-label + 8 ISIC-like + 8 APTOS-like) losses x 5 seeds = 150 runs x 37 s =  5,550 s
    sensitivity: 4 arms x 9 grid points x 5 seeds x 4 missing rates          = 720 runs x 18 s = 12,960 s
    (5,550 + 12,960) s / 2 shards = 9,255 s = 2 h 34 min; + 7 simulated sets (about 1 min, one
    shard simulates while the other waits) + the timing benchmarks, alone afterwards (step time,
    loss speed twice, throughput, the quick smoke run twice: about 14 min) = about 2 h 50 min.
    tune:        5 losses x 2 searches x 24 trials = 240 trials x 15 s (one process)   =  3,600 s
    = about 3 h 50 min in all.

``--quick``: 40 s for ``ral bench losses --simulate --quick`` (14 runs) and 52 s for
``ral bench sensitivity --simulate --quick`` (16 runs), simulation and start-up included.
"""

from __future__ import annotations

from dataclasses import dataclass

#: (budget, simulated set) -> (seconds of one run: training + test evaluation, one torch thread;
#: seconds to simulate that set once), measured by ``benchmarks/time_budgets.py`` (record:
#: benchmarks/budget_times.md).
MEASURED_SECONDS: dict[tuple[str, str], tuple[float, float]] = {
    ("quick", "multilabel"): (2.5, 1.0),
    ("grid", "multilabel"): (18.0, 9.0),
    ("default", "multilabel"): (37.0, 9.0),
    ("default", "single"): (37.0, 7.0),
    ("default", "fundus"): (37.0, 15.0),
}
MEASURED = {key: run for key, (run, _) in MEASURED_SECONDS.items()}
SIMULATION = {key: simulation for key, (_, simulation) in MEASURED_SECONDS.items()}
#: Folder of the second quick smoke run (the report compares it with the first).
QUICK_AGAIN = "losses-multilabel-quick-again"
#: Processes the training benchmarks are split over (``--shard 1/2`` and ``--shard 2/2``).
SHARDS = 2
#: Wall time of the timing benchmarks, which run alone after the training ones (seconds; from their records).
#: Seconds of one ``ral bench tune`` trial at the grid budget (a grid run without its test evaluation):
#: about 14 s measured on a quiet machine on 2026-12-07 (benchmarks/tune_2026-12-07.md), rounded up.
TUNE_TRIAL_SECONDS = 15.0
TIMING_SECONDS = {"step": 105.0, "speed": 240.0, "speed-1thread": 240.0, "throughput": 120.0}


@dataclass(frozen=True)
class Step:
    """One benchmark of the evidence.

    Attributes:
        folder: its output folder under ``runs/bench`` (the default of its command).
        command: the command without ``--shard`` (the shards add ``--shard I/N``).
        runs: training runs (0 for a timing benchmark).
        run_seconds: measured seconds of one run; simulations: datasets it simulates.
        sharded: whether it runs as :data:`SHARDS` shards.
        seconds: its wall time (sharded: divided by the shards; timing: the recorded wall time).
    """

    folder: str
    command: str
    runs: int
    run_seconds: float
    simulations: int
    sharded: bool
    seconds: float


def _training(folder: str, command: str, runs: int, budget: str, simulated: str, simulations: int) -> Step:
    simulate = simulations * SIMULATION[(budget, simulated)]
    total = runs * MEASURED[(budget, simulated)] / SHARDS + simulate  # shards wait for one simulation
    return Step(folder, command, runs, MEASURED[(budget, simulated)], simulations, True, total)


def evidence_plan() -> list[Step]:
    """Every benchmark of docs/results.md, in the order ``make bench-evidence`` runs them."""
    from ral.bench.experiment import get_budget
    from ral.bench.losses import loss_specs
    from ral.bench.sensitivity import DEFAULT_ARMS, DEFAULT_MISSING_RATES, resolve_arms

    default, grid = get_budget("default"), get_budget("grid")
    steps = []
    for simulated, task, flag in (
        ("multilabel", "multilabel", ""),
        ("single", "single", " --task single"),
        ("fundus", "single", " --task fundus"),
    ):
        runs = len(loss_specs(task, None, default)) * default.seeds
        steps.append(
            _training(
                f"losses-{simulated}-default", f"ral bench losses --simulate{flag}", runs, "default", simulated, 1
            )
        )
    points = sum(len(arm.points()) for arm in resolve_arms(DEFAULT_ARMS, (), "multilabel", quick=False))
    runs = points * grid.seeds * len(DEFAULT_MISSING_RATES)
    steps.append(
        _training(
            "sensitivity-multilabel-grid",
            "ral bench sensitivity --simulate",
            runs,
            "grid",
            "multilabel",
            len(DEFAULT_MISSING_RATES),
        )
    )
    from ral.bench.tune import DEFAULT_LOSSES, DEFAULT_SEARCHES, DEFAULT_TRIALS

    trials = len(DEFAULT_LOSSES) * DEFAULT_SEARCHES * DEFAULT_TRIALS
    tune_seconds = trials * TUNE_TRIAL_SECONDS + SIMULATION[("grid", "multilabel")]
    # one process: its searches are seeded, so two workers would sample the same first trials
    steps.append(
        Step("tune-multilabel-grid", "ral bench tune --simulate", trials, TUNE_TRIAL_SECONDS, 1, False, tune_seconds)
    )
    quick = len(loss_specs("multilabel", None, get_budget("quick")))
    seconds = quick * MEASURED[("quick", "multilabel")] + SIMULATION[("quick", "multilabel")]
    for folder, command in (
        ("losses-multilabel-quick", "ral bench losses --simulate --quick"),
        # the same again into another folder: the report checks that the numbers are identical
        (QUICK_AGAIN, f"ral bench losses --simulate --quick --out runs/bench/{QUICK_AGAIN}"),
    ):
        steps.append(Step(folder, command, quick, MEASURED[("quick", "multilabel")], 1, False, seconds))
    for folder, command in (
        ("step", "ral bench step --losses bce asl ral --repeats 30 --out runs/bench/step"),
        ("speed", "ral bench speed --threads 0 --out runs/bench/speed"),
        ("speed-1thread", "ral bench speed --threads 1 --clock cpu --breakdown --out runs/bench/speed-1thread"),
        ("throughput", "ral bench throughput --quick --out runs/bench/throughput"),
    ):
        steps.append(Step(folder, command, 0, 0.0, 0, False, TIMING_SECONDS[folder]))
    return steps


def plan_markdown(steps: list[Step]) -> str:
    """The plan as a markdown table with the total wall time."""
    import pandas as pd

    from ral.report import markdown_table

    table = pd.DataFrame(
        {
            "command": [f"`{s.command}`" + (f" (x {SHARDS} shards)" if s.sharded else "") for s in steps],
            "runs": [s.runs if s.runs else "timing" for s in steps],
            "s / run": [f"{s.run_seconds:.0f}" if s.runs else "" for s in steps],
            "simulated sets": [s.simulations for s in steps],
            "wall time": [_duration(s.seconds) for s in steps],
        }
    )
    total = sum(s.seconds for s in steps)
    return (
        markdown_table(table)
        + f"\nTotal: about {_duration(total)} (training benchmarks: runs x s / run / {SHARDS} shards + the "
        "simulations, which one shard makes while the other waits; then the tuning benchmark in one process and "
        "the timing benchmarks alone).\n"
    )


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{max(minutes, 1)} min"


MEDMNIST_RUN = (
    "On real medical images (MedMNIST, nothing of it recorded here): "
    "`ral data medmnist chestmnist --size 64 --npz chestmnist_64.npz --out data/chestmnist`, then "
    "`ral bench losses --data data/chestmnist/train.csv --val-data data/chestmnist/val.csv "
    "--test-data data/chestmnist/test.csv` (dermamnist and retinamnist: `--task single`; one run per loss: "
    '`ral train --config configs/chestmnist.yaml`; see docs/dataset.md, "MedMNIST").'
)


def reproduce_markdown(steps: list[Step]) -> str:
    """docs/results.md's "How to reproduce": the plan, the budgets, the MedMNIST line (from the code only)."""
    import pandas as pd

    from ral.bench.experiment import BUDGETS
    from ral.report import markdown_table

    budgets = pd.DataFrame(
        [
            {
                "budget": b.name,
                "train / val / test images": f"{b.n_train} / {b.n_val} / {b.n_test}",
                "image size": b.image_size,
                "epochs": b.epochs,
                "seeds": b.seeds,
                "backbone": b.backbone,
            }
            for b in BUDGETS.values()
        ]
    )
    return (
        "## How to reproduce\n\n"
        "    make bench-evidence     # training benchmarks as 2 shards, tuning, timing, this report\n\n"
        "or command by command (each training benchmark resumes when re-run; `--shard I/N` runs every N-th run, "
        "and the process that finishes the last run writes the folder's summary):\n\n"
        + plan_markdown(steps)
        + "\nThen `make bench-report` rebuilds this file. Budgets (`--budget NAME`; `--quick` = `--budget quick`; "
        "`--epochs`, `--image-size`, `--batch-size`, `--backbone` override one field; every run: AdamW lr 3e-3, "
        "weight decay 1e-4, cosine decay, batch 64, the best validation epoch evaluated on the test split, one "
        "torch thread):\n\n"
        + markdown_table(budgets)
        + "\nThe seconds per run are measured by `benchmarks/time_budgets.py` (one run per budget on the 2-core "
        "development machine; record in `benchmarks/budget_times.md`) and kept in `benchmarks/evidence_plan.py`.\n\n"
        + MEDMNIST_RUN
        + "\n\n"
    )
