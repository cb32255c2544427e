"""``ral bench losses|sensitivity|step|speed|throughput``: flags derived from the benchmarks' declarations.

The data flags of the training benchmarks are :func:`ral.bench.experiment.prepare_data`'s keyword
arguments; the timing benchmarks' flags are the fields of their settings classes.
"""

from __future__ import annotations

import re
import sys
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field
from pydantic_settings import CliVariadicArg

from ral.bench.experiment import prepare_data
from ral.bench.speed import SpeedConfig
from ral.bench.step_time import StepTimeConfig
from ral.bench.timing import ThroughputConfig
from ral.bench.tune import DEFAULT_SEARCHES, DEFAULT_TRIALS, benchmark_tune
from ral.cli.command import Command, from_function, group

_OVERWRITE = "replace the files of an earlier run in --out (refused without it)"


def _command_line() -> str:
    """The command line to record in a report, without ``--shard`` (the report covers every shard)."""
    return re.sub(r"\s--shard(=|\s+)\S+", "", "ral " + " ".join(sys.argv[1:]))


def set_threads(threads: int) -> None:
    """``torch.set_num_threads(threads)``; 0 keeps torch's default (every core)."""
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def _grid_items(values: Any) -> Any:
    """``gamma_neg=1,2,4 lam=1,2`` as typed: the parser splits values at commas; a value without ``=``
    continues the item before it."""
    if not isinstance(values, list):
        return values
    items: list[str] = []
    for value in map(str, values):
        if "=" in value or not items:
            items.append(value)
        else:
            items[-1] += "," + value
    return items


class _TrainingBench(Command):
    """Options every training benchmark has: its budget, output folder, shard and threads."""

    budget: Literal["quick", "grid", "default", "long"] | None = Field(
        None, description="quick, grid, default or long (see docs/results.md; default: default, sensitivity: grid)"
    )
    quick: bool = Field(False, description="same as --budget quick (a smoke run of about a minute)")
    epochs: int | None = Field(None, ge=1, description="override the budget's epochs")
    image_size: int | None = Field(None, description="override the budget's image size")
    batch_size: int | None = Field(None, ge=1, description="override the budget's batch size")
    backbone: str | None = Field(None, description="override the budget's backbone (default: tiny)")
    out: str | None = Field(None, description="output folder (default: runs/bench/<command>-<task>-<budget>)")
    overwrite: bool = Field(
        False,
        description="discard the benchmark in --out and start again (without it, the same settings resume it "
        "and other settings are refused)",
    )
    shard: str | None = Field(
        None,
        description="I/N: run only the runs i with i % N == I - 1 (e.g. 1/2 and 2/2 in two processes sharing "
        "--out); the process finishing the last run writes the summary",
    )
    threads: int = Field(
        1,
        ge=0,
        description="torch CPU threads (default 1: small models gain little from more, and on a shared machine "
        "extra threads can make training many times slower; 0 = torch default)",
    )

    def setup(self, command: str, default_budget: str) -> tuple[object, str, dict]:
        """The budget (with overrides), the output folder and the keyword arguments of every training benchmark."""
        from ral.bench.experiment import budget_with, get_budget
        from ral.bench.parallel import RunOptions, Shard

        set_threads(self.threads)
        name = "quick" if self.quick else self.budget or default_budget
        sizes = dict(epochs=self.epochs, image_size=self.image_size, batch_size=self.batch_size)
        budget = budget_with(get_budget(name), **sizes, backbone=self.backbone)
        task = self.task or ("multilabel" if self.simulate else "data")
        out = self.out or f"runs/bench/{command}-{task}-{budget.name}"
        run = RunOptions(shard=Shard.parse(self.shard), command=_command_line(), overwrite=self.overwrite)
        data = {name: getattr(self, name) for name in _DATA_FLAGS}
        return budget, out, {**data, "run": run}


_DATA_FLAGS = ("data", "simulate", "task", "val_data", "test_data", "format", "root")
_TrainingBench = from_function(prepare_data, _TrainingBench, skip=("out_dir", "budget", "missing_rate"))


def _written(text: str, out: str) -> None:
    print(text)
    print(f"written to {out}")


class _Losses(_TrainingBench):
    """train every loss with the same backbone and schedule, several seeds (resumable)

    Compare losses at equal budget: results.csv, summary.md (mean ± std over seeds, paired differences against RAL
    with t intervals, the long-tail variants), metrics.png, per_class.png in --out. Re-running the same command
    resumes: finished runs are kept; --shard splits the runs over processes.
    """

    seeds: int | None = Field(None, ge=1, description="seeds per loss (default: the budget's, 5; quick: 1)")
    losses: CliVariadicArg[list[str]] = Field(
        None, description="labels of the default list (bce ... ral, ral_cb, ral_cb_both, ral_prior) or registry names"
    )

    def cli_cmd(self) -> None:
        from ral.bench.losses import benchmark_losses

        budget, out, common = self.setup("losses", "default")
        _written(benchmark_losses(out, budget, seeds=self.seeds, losses=self.losses, **common), out)


class _Sensitivity(_TrainingBench):
    """grid over the losses' hyper-parameters with seeds and missing rates, the Hill weight isolated (claim 2)

    Train each arm (a loss and a grid of its parameters) at every grid point with the same seeds, on one simulated
    set per missing rate; report mean, std, range and worst value of the test metric over the grid with bootstrap
    intervals over seeds, the matched comparisons ASL vs ASL+Hill and APL vs RAL, a verdict per missing rate, and
    heat maps. Resumable; --shard splits the runs over processes.
    """

    loss: CliVariadicArg[list[str]] = Field(
        None,
        description="arms to sweep (default: asl asl_hill apl ral, the matched comparisons of the Hill weight) or "
        "losses with a grid (focal, hill, cb, db, ...; see docs/results.md)",
    )
    grid: Annotated[CliVariadicArg[list[str]], BeforeValidator(_grid_items)] = Field(
        default_factory=list,
        description="PARAM=V1,V2: replace or add a parameter's values, e.g. gamma_neg=1,2,4 (one --loss only)",
    )
    seed: int = Field(0, ge=0, description="first training seed")
    seeds: int | None = Field(
        None, ge=1, description="seeds per grid point, the same for every arm (default: the budget's, 5; quick: 1)"
    )
    missing_rate: CliVariadicArg[list[float]] = Field(
        None,
        description="simulated multi-label set: share of training positives hidden, one dataset per rate "
        "(default 0 0.15 0.3 0.5; quick: 0.15)",
    )

    def cli_cmd(self) -> None:
        from ral.bench.sensitivity import DEFAULT_ARMS, benchmark_sensitivity

        budget, out, common = self.setup("sensitivity", "grid")
        arms = dict(losses=self.loss or DEFAULT_ARMS, grid_overrides=self.grid)
        text = benchmark_sensitivity(
            out, budget, seed=self.seed, seeds=self.seeds, missing_rate=self.missing_rate, **arms, **common
        )
        _written(text, out)


class _TuneBench(_TrainingBench):
    """tune ral, asl, apl, hill and ral_cb with ral tune at an equal trial budget: the gain tuning buys (claim 2)

    For each loss and search seed, one Optuna study (TPE, the loss's declared search space, the first trial at the
    loss's defaults) on the validation metric; the default and the best trial are evaluated on the test split.
    Writes results.csv and summary.md (gains with t intervals over searches, trials needed to come within 0.005
    of the best, fANOVA importances). Resumable. Run it in one process: the searches are seeded, so a second
    process sharing them would sample the same first trials.
    """

    losses: CliVariadicArg[list[str]] = Field(None, description="losses to tune (default: ral asl apl hill ral_cb)")
    trials: int = Field(DEFAULT_TRIALS, ge=2, description="trials per search")
    searches: int = Field(
        DEFAULT_SEARCHES, ge=1, description="searches per loss (search s: sampler and training seed s)"
    )

    def cli_cmd(self) -> None:
        budget, out, common = self.setup("tune", "grid")
        counts = dict(losses=self.losses, trials=self.trials, searches=self.searches)
        _written(benchmark_tune(out, budget, **counts, **common), out)


class _Timing(Command):
    """Options of the timing benchmarks besides their settings."""

    out: str = Field("runs/bench/speed", description="output folder")
    overwrite: bool = Field(False, description=_OVERWRITE)
    threads: int = Field(0, ge=0, description="torch CPU threads (0 = torch default: every core)")

    #: Flags of the command that are not fields of the benchmark's settings.
    own_flags: ClassVar[tuple[str, ...]] = ()

    def settings(self) -> dict[str, Any]:
        """The flags that are fields of the benchmark's settings."""
        return self.arguments(without=(*_Timing.model_fields, *self.own_flags))


class _Step(_Timing):
    """full training-step time of losses against BCE on the demo model (claim 3)

    Forward + loss + backward + AdamW step of the tiny CNN on a fixed batch, losses timed in interleaved rounds
    in one process; reports the median paired time ratio against the first loss.
    """

    out: str | None = Field(None, description="folder for step_time.csv / step_time.md")
    threads: int = Field(1, ge=0, description="torch CPU threads (default 1; 0 = torch default)")

    def cli_cmd(self) -> None:
        from ral.bench.step_time import run_step_time

        set_threads(self.threads)
        _, text = run_step_time(StepTimeConfig(**self.settings()), self.out, overwrite=self.overwrite)
        print(text)


class _Speed(_Timing):
    """forward+backward time and peak memory of RAL (eager and compiled), ASL, focal vs BCE

    Time forward+backward of each loss on random logits in one process (interleaved rounds, median paired ratio
    to BCEWithLogitsLoss) and measure its peak memory; prints a table and writes speed.csv, speed_summary.csv
    and speed.md to --out.
    """

    breakdown: bool = Field(False, description="also time RAL's parts (validation, forward, backward) at each shape")
    profile: bool = Field(False, description="also print torch.profiler's operator table of RAL at each shape")
    own_flags: ClassVar[tuple[str, ...]] = ("breakdown", "profile")

    def cli_cmd(self) -> None:
        from ral.bench.speed import breakdown_report, profile_ral, run_speed, shapes_from_text

        set_threads(self.threads)
        config = SpeedConfig(**{**self.settings(), "shapes": shapes_from_text(self.shapes)})
        _, text = run_speed(config, self.out, command=_command_line(), overwrite=self.overwrite)
        print(text)
        if self.breakdown:
            print(breakdown_report(config, self.out))
        if self.profile:
            for shape in config.shapes:
                print(profile_ral(shape, config))
        print(f"written to {self.out}")


class _Throughput(_Timing):
    """images/s of ral train's full training step against a plain PyTorch loop (same model, data, precision)

    Time ral's real data path (cache, loader, augmentation, normalisation on the device, Lightning module,
    callbacks, logging) and a plain PyTorch loop in one process, in interleaved rounds; writes
    throughput.json (pipeline_images_per_s, plain_images_per_s, ratio, loss_share), throughput.csv and
    throughput.md to --out.
    """

    out: str = Field("runs/bench/throughput", description="output folder")
    quick: bool = Field(False, description="fewer rounds: under 2 minutes on 2 CPU cores")
    data_dir: str = Field(
        "runs/bench/throughput-data", description="where the simulated images are kept for later measurements"
    )
    own_flags: ClassVar[tuple[str, ...]] = ("quick", "data_dir")

    def cli_cmd(self) -> None:
        from ral.bench.throughput import run_throughput
        from ral.bench.timing import QUICK

        set_threads(self.threads)
        quick = (
            {name: value for name, value in QUICK.items() if name not in self.model_fields_set} if self.quick else {}
        )
        config = ThroughputConfig(**{**self.settings(), **quick})
        _, text = run_throughput(
            config, self.out, data_dir=self.data_dir, command=_command_line(), overwrite=self.overwrite
        )
        _written(text, self.out)


StepCommand = from_function(StepTimeConfig, _Step, flags={"model": "backbone", "rounds": "repeats"})
SpeedCommand = from_function(SpeedConfig, _Speed, types={"shapes": list[str] | None}, defaults={"shapes": None})
ThroughputCommand = from_function(ThroughputConfig, _Throughput)


#: The command model of each ``ral bench`` command.
BENCH_COMMANDS: dict[str, type[Command]] = {
    "losses": _Losses,
    "sensitivity": _Sensitivity,
    "tune": _TuneBench,
    "step": StepCommand,
    "speed": SpeedCommand,
    "throughput": ThroughputCommand,
}
Bench = group("Bench", "loss comparison, sensitivity and speed benchmarks", BENCH_COMMANDS)
