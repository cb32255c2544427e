"""``ral tune``: every config key is a flag (as in ``ral train``), plus the study's flags, derived from
:func:`ral.tune.tune`'s signature."""

from __future__ import annotations

from dataclasses import asdict

import yaml
from pydantic import Field
from pydantic_settings import CliImplicitFlag

from ral.cli.command import from_function
from ral.cli.engine_commands import ConfigCommand
from ral.tune import tune


class _Tune(ConfigCommand):
    """tune the loss's hyper-parameters with Optuna (each trial a ral train; resumable, many workers)

    Search the loss's hyper-parameters (the search space declared on the loss, changed by tune.space in the
    config) on the validation metric. Every config key is a flag, and section.key=value overrides work as in ral
    train. Workers on one --storage share the study; re-running resumes it. See docs/tune.md.
    """

    print_space: CliImplicitFlag[bool] = Field(
        False, description="print the search space (the loss's declaration with tune.space applied) and exit"
    )

    def cli_cmd(self) -> None:
        from ral.tune.report import shown

        own = (*ConfigCommand.model_fields, "print_space")
        flags = {name: getattr(self, name) for name in type(self).model_fields if name not in own}
        if self.print_space:
            from ral.tune.space import search_space

            for name, entry in search_space(self.run_config()).items():
                shown = {k: v for k, v in asdict(entry).items() if (k, v) not in (("type", "float"), ("log", False))}
                print(f"{name}: {yaml.safe_dump(shown, default_flow_style=True, sort_keys=False).strip()}")
            return
        if self.trials is None:  # not needed by --print-space
            raise ValueError("--trials is required: the study's total of trials, e.g. --trials 20")
        result = tune(self.run_config(), **flags)
        best = result["best"]
        print(f"study {result['study']} in {result['storage']}: {result['finished']} finished trials")
        if best is not None:
            params = ", ".join(f"{name} {shown(value)}" for name, value in best["params"].items())
            print(f"best: trial {best['number']}, value {best['value']:.4f} ({params})")
        print(f"written to {self.out}")


TuneCommand = from_function(tune, _Tune, skip=("config",), types={"trials": int | None}, defaults={"trials": None})
