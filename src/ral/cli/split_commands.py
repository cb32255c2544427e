"""``ral data split``: patient-level, stratified K-fold tables (flags from :func:`ral.data.folds.write_folds`)."""

from __future__ import annotations

from pydantic_settings import CliPositionalArg

from ral.cli.command import Command, from_function
from ral.data.folds import write_folds


class _Split(Command):
    """patient-level, stratified K-fold tables of a label table (fold{i}_train.csv / fold{i}_val.csv)

    Split TABLE by patient into K folds, stratified by label (multi-label: iterative stratification of the
    patients' label vectors; single-label: by class), and write fold{i}_train.csv / fold{i}_val.csv (i = 1..K)
    and, with --test-fraction, test.csv into --out, in TABLE's own layout. Train fold i with
    dataset.train=OUT/fold{i}_train.csv dataset.val=OUT/fold{i}_val.csv; evaluate the K runs with
    ral evaluate --out-of-fold.
    """

    def cli_cmd(self) -> None:
        from ral.data.folds import format_folds

        print(format_folds(write_folds(**self.arguments())))


SplitCommand = from_function(
    write_folds, _Split, flags={"out_dir": "out"}, types={"table": CliPositionalArg[str], "out_dir": str}
)
