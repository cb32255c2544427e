"""``ral train`` / ``ral evaluate`` / ``ral predict``: flags derived from the config schema and the functions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import Field, model_validator
from pydantic_settings import CliImplicitFlag, CliPositionalArg

from ral.cli.command import Command, Quiet, from_function
from ral.engine import evaluate, predict
from ral.engine.config import Config
from ral.engine.configfile import apply_overrides, config_from_dict, dump_yaml, merge, read_yaml


def _parsed(given: Mapping[str, Any]) -> dict[str, Any]:
    """Flag values as YAML, as ``key=value`` overrides read them (``--train.epochs 3`` is the integer 3)."""
    return {
        key: _parsed(value)
        if isinstance(value, Mapping)
        else yaml.safe_load(value)
        if isinstance(value, str)
        else value
        for key, value in given.items()
    }


class ConfigCommand(Config, Quiet):
    """A command reading a run's config: a YAML file, then ``section.key=value`` overrides, then ``--section.key``."""

    config: str | None = Field(None, description="YAML config file (see docs/usage.md); its keys are also flags")
    overrides: CliPositionalArg[list[str]] = Field(
        default_factory=list, description="section.key=value overrides (values parsed as YAML)"
    )

    @model_validator(mode="before")
    @classmethod
    def _read_file(cls, given: Any) -> Any:
        if not isinstance(given, Mapping):
            return given
        own = set(cls.model_fields) - set(Config.model_fields)
        command = {name: value for name, value in given.items() if name in own}
        flags = _parsed({name: value for name, value in given.items() if name not in own})
        raw = read_yaml(command["config"]) if command.get("config") else {}
        return {**merge(apply_overrides(raw, command.get("overrides") or []), flags), **command}

    def run_config(self) -> Config:
        """The validated run config (without the command's own flags)."""
        return config_from_dict(self.model_dump(include=set(Config.model_fields)))


class TrainCommand(ConfigCommand):
    """train a classifier from a YAML config

    Train a classifier. Every config key is a flag (--loss.name asl, --train.epochs 5); overrides may also be
    written section.key=value after the options, e.g. train.epochs=5 loss.params.gamma_neg=2 (values are parsed
    as YAML).
    """

    resume: CliImplicitFlag[bool] = Field(
        False, description="continue the run in output_dir from its newest checkpoint (last.ckpt or mid-epoch.ckpt)"
    )
    overwrite: CliImplicitFlag[bool] = Field(
        False, description="start the run in output_dir anew, replacing its checkpoints and logs"
    )
    print_config: CliImplicitFlag[bool] = Field(
        False, description="print the resulting config as YAML and exit without training"
    )

    def cli_cmd(self) -> None:
        from ral.engine import train

        config = self.run_config()
        if self.print_config:
            print(dump_yaml(config), end="")
            return
        if self.resume and self.overwrite:
            raise ValueError("give --resume or --overwrite, not both")
        result = train(config, resume=self.resume, overwrite=self.overwrite)
        if not result["is_global_zero"]:
            return
        metrics = "  ".join(f"{k} {v:.4f}" for k, v in result["val_metrics"].items() if isinstance(v, float))
        print(f"best epoch {result['best_epoch']}: {metrics}")
        print(f"checkpoints: {result['best_checkpoint']}, {result['last_checkpoint']}")
        print(f"seconds per epoch (training only): {result['train_seconds_per_epoch']:.2f}")


class _Evaluate(Command):
    """metrics, per-class table, intervals and plots of a checkpoint (or an ensemble)

    With --aggregate, the metrics with and without the aggregation are printed side by side. Repeat --checkpoint
    for an ensemble.
    """

    def cli_cmd(self) -> None:
        from ral.metrics import metric_names

        report = evaluate(**self.arguments())
        columns = {f"aggregate {report['aggregate']}": report}
        if "without_aggregation" in report:
            columns = {"no aggregation": report["without_aggregation"], **columns}
            print(f"{'':18s} " + "".join(f"{title:32s}" for title in columns).rstrip())
        for name in metric_names(report["task"]):
            cells = []
            for scores in columns.values():
                ci = scores.get("ci95", {})
                interval = f" (95% CI {ci[name][0]:.4f}-{ci[name][1]:.4f})" if name in ci else ""
                cells.append(f"{scores[name]:.4f}{interval}")
            print(f"{name:18s} " + "".join(f"{cell:32s}" for cell in cells).rstrip())
        if "class_map" in report:  # external validation: which classes were scored, and how mapped
            from ral.data.class_map import format_mapping

            print(format_mapping(report["class_map"]))
        if "out_of_fold" in report:
            runs = len(report["out_of_fold"])
            print(f"out-of-fold: {report['n_images']} images, the validation tables of {runs} runs")
        if "ECE" in report:
            print(f"{'ECE':18s} {report['ECE']:.4f} (calibration; per group in metrics.json)")
        print(f"written to {report['out_dir']} (open report.html)")


class _Predict(Command):
    """class probabilities as a CSV (CXR-LT submission layout)

    Repeat --checkpoint for an ensemble, or give --model: a folder written by ral export.
    """

    def cli_cmd(self) -> None:
        frame = predict(**self.arguments())
        print(f"wrote {len(frame)} rows x {frame.shape[1] - 1} columns to {self.out}")


_CHECKPOINTS = {"checkpoint": list[str]}  # one --checkpoint per file of an ensemble
EvaluateCommand = from_function(
    evaluate,
    _Evaluate,
    skip=("seed", "cache_dir"),
    flags={"out_dir": "out"},
    types=_CHECKPOINTS,
    repeated=("checkpoint",),
)
PredictCommand = from_function(
    predict,
    _Predict,
    positional=("images",),
    types={**_CHECKPOINTS, "images": list[str]},
    repeated=("checkpoint",),
    defaults={"out": ...},  # the command writes a file (predict(out=None) only returns the table)
)
