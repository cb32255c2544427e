"""``ral report``: rebuild report.html of an evaluation, of a run's evaluations, or of a loss benchmark."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import CliPositionalArg

from ral.cli.command import Command, from_function
from ral.report.evalreport import ReportOptions
from ral.report.html import report


class _Report(Command):
    """write report.html of an evaluation, a run or a loss benchmark

    PATH is an evaluation folder of `ral evaluate` (report.html beside its metrics.json), a run folder of
    `ral train` or its eval folder (every evaluation in it), or a `ral bench losses` folder (the comparison
    page). The page is one self-contained file: open it from disk in any browser.
    """

    path: CliPositionalArg[str] = Field(
        description="an evaluation folder of ral evaluate (with metrics.json), a run folder of ral train or its eval "
        "folder (every evaluation in it), or a ral bench losses folder (the comparison page)"
    )

    def cli_cmd(self) -> None:
        for path in report(self.path, ReportOptions(**self.arguments(without=("path",)))):
            print(f"wrote {path}")


ReportCommand = from_function(ReportOptions, _Report)
