"""``ral report``: rebuild report.html of an evaluation, of a run's evaluations, or of a loss benchmark."""

from __future__ import annotations

from ral.cli.command import Command, from_function
from ral.report.html import report


class _Report(Command):
    """write report.html of an evaluation, a run or a loss benchmark

    PATH is an evaluation folder of `ral evaluate` (report.html beside its metrics.json), a run folder of
    `ral train` (every eval/* folder in it), or a `ral bench losses` folder (the comparison page). The page
    is one self-contained file: open it from disk in any browser.
    """

    def cli_cmd(self) -> None:
        for path in report(**self.arguments()):
            print(f"wrote {path}")


ReportCommand = from_function(report, _Report, positional=("path",))
