"""The tree of ``ral`` commands (pydantic-settings subcommands) and the parser settings."""

from __future__ import annotations

from pydantic import BaseModel, Field
from pydantic_settings import CliApp, CliSettingsSource, CliSubCommand

from ral.cli.bench_commands import BENCH_COMMANDS, Bench
from ral.cli.command import summary
from ral.cli.data_commands import CacheCommand, SimulateCommand, StatsCommand
from ral.cli.engine_commands import EvaluateCommand, PredictCommand, TrainCommand


class Data(BaseModel):
    """simulate datasets and inspect label tables"""

    simulate: CliSubCommand[SimulateCommand] = Field(description=summary(SimulateCommand.__doc__))
    cache: CliSubCommand[CacheCommand] = Field(description=summary(CacheCommand.__doc__))
    stats: CliSubCommand[StatsCommand] = Field(description=summary(StatsCommand.__doc__))

    def cli_cmd(self) -> None:
        CliApp.run_subcommand(self)


class Ral(BaseModel):
    """Robust Asymmetric Loss toolkit for multi-label, long-tailed medical images."""

    data: CliSubCommand[Data] = Field(description=summary(Data.__doc__))
    train: CliSubCommand[TrainCommand] = Field(description=summary(TrainCommand.__doc__))
    evaluate: CliSubCommand[EvaluateCommand] = Field(description=summary(EvaluateCommand.__doc__))
    predict: CliSubCommand[PredictCommand] = Field(description=summary(PredictCommand.__doc__))
    bench: CliSubCommand[Bench] = Field(description=summary(Bench.__doc__))

    def cli_cmd(self) -> None:
        CliApp.run_subcommand(self)


#: The command model of each command path (its flags, for "did you mean" and hints).
COMMANDS: dict[tuple[str, ...], type[BaseModel]] = {
    ("data", "simulate"): SimulateCommand,
    ("data", "cache"): CacheCommand,
    ("data", "stats"): StatsCommand,
    ("train",): TrainCommand,
    ("evaluate",): EvaluateCommand,
    ("predict",): PredictCommand,
    **{("bench", name): model for name, model in BENCH_COMMANDS.items()},
}


def settings_source() -> CliSettingsSource:
    """Kebab-case flags, errors raised (rendered in one line by :func:`ral.cli.main`), no env variables."""
    return CliSettingsSource(
        Ral,
        cli_prog_name="ral",
        cli_kebab_case=True,
        cli_exit_on_error=False,
        cli_use_class_docs_for_groups=False,
        cli_hide_none_type=True,
        cli_avoid_json=True,
        cli_implicit_flags=True,
    )
