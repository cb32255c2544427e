"""The tree of ``ral`` commands (pydantic-settings subcommands) and the parser settings."""

from __future__ import annotations

from pydantic import BaseModel
from pydantic_settings import CliSettingsSource

from ral.cli.bench_commands import BENCH_COMMANDS, Bench
from ral.cli.command import group
from ral.cli.data_commands import CacheCommand, SimulateCommand, StatsCommand
from ral.cli.engine_commands import EvaluateCommand, PredictCommand, TrainCommand
from ral.cli.export_commands import ConfigsCommand, ExportCommand, MedmnistCommand
from ral.cli.report_commands import ReportCommand
from ral.cli.split_commands import SplitCommand
from ral.cli.tune_commands import TuneCommand

DATA_COMMANDS: dict[str, type[BaseModel]] = {
    "simulate": SimulateCommand,
    "cache": CacheCommand,
    "stats": StatsCommand,
    "medmnist": MedmnistCommand,
    "split": SplitCommand,
}
Data = group("Data", "simulate datasets and inspect label tables", DATA_COMMANDS)
Ral = group(
    "Ral",
    "Robust Asymmetric Loss toolkit for multi-label, long-tailed medical images.",
    {
        "data": Data,
        "train": TrainCommand,
        "evaluate": EvaluateCommand,
        "predict": PredictCommand,
        "report": ReportCommand,
        "export": ExportCommand,
        "configs": ConfigsCommand,
        "tune": TuneCommand,
        "bench": Bench,
    },
)


def settings_source() -> CliSettingsSource:
    """pydantic-settings' parser of the tree: kebab-case flags, booleans as flags, errors raised (one line
    by :func:`ral.cli.main`)."""
    options = dict(cli_kebab_case=True, cli_exit_on_error=False, cli_hide_none_type=True, cli_avoid_json=True)
    return CliSettingsSource(Ral, cli_prog_name="ral", cli_implicit_flags=True, **options)


#: The command model of each command path (its flags, for "did you mean" and hints).
COMMANDS: dict[tuple[str, ...], type[BaseModel]] = {
    **{("data", name): model for name, model in DATA_COMMANDS.items()},
    ("train",): TrainCommand,
    ("evaluate",): EvaluateCommand,
    ("predict",): PredictCommand,
    ("report",): ReportCommand,
    ("export",): ExportCommand,
    ("configs",): ConfigsCommand,
    ("tune",): TuneCommand,
    **{("bench", name): model for name, model in BENCH_COMMANDS.items()},
}
