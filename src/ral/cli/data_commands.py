"""``ral data simulate|cache|stats``: flags derived from the simulator's signature and :class:`TableOptions`."""

from __future__ import annotations

import json

from pydantic import Field
from pydantic_settings import CliImplicitFlag, CliPositionalArg

from ral.cli.command import Command, from_function
from ral.cli.engine_commands import ConfigCommand
from ral.data import TableOptions, load_table
from ral.data.simulate import simulate_dataset, simulation_key

_OVERWRITE = "replace what an earlier run of this command wrote there (refused without it)"


class _Simulate(Command):
    """write the embedded simulated long-tailed dataset (train/val/test CSVs + images)

    Generate the simulated dataset (see docs/dataset.md). Same seed and options give byte-identical CSVs and
    images.
    """

    preview: str | None = Field(None, description="also write a sample grid (one row per class) to this PNG")

    def cli_cmd(self) -> None:
        from ral.data.simulate import preview_grid
        from ral.report.files import check_output

        if self.out_dir is None and self.preview is None:
            raise ValueError("give --out DIR (the dataset) and/or --preview PNG (the sample grid)")
        simulation_key(**self.arguments(without=("preview", "out_dir", "overwrite")))  # settings checked before writing
        if self.preview is not None:  # checked before the simulation (which checks --out first) is written
            check_output(self.preview, overwrite=self.overwrite)
        if self.out_dir is not None:
            out = simulate_dataset(**self.arguments(without=("preview",)))
            print(f"wrote {out}/train.csv, val.csv, test.csv, dataset.json and {out}/{self.images_folder}/")
        if self.preview is not None:
            print(f"wrote {preview_grid(self.preview, task=self.task, size=self.size, seed=self.seed)}")

    @property
    def images_folder(self) -> str:
        return "files" if self.task == "multilabel" else "images"


SimulateCommand = from_function(
    simulate_dataset, _Simulate, flags={"out_dir": "out"}, types={"out_dir": str | None}, defaults={"out_dir": None}
)


class CacheCommand(ConfigCommand):
    """build the image caches of a run's training and validation tables (once, for every later process)

    Decode the images of the config's dataset.train and dataset.val into dataset.cache_dir with a pool of
    processes, exactly as `ral train` would (same key), so that runs with dataset.cache_must_exist: true on
    a cluster find them. An existing cache is checked (size, header, sampled checksums; every checksum with
    --verify) and kept, or rebuilt when it does not match; each line says which.
    """

    verify: CliImplicitFlag[bool] = Field(
        False, description="check every block checksum of an existing cache, not only a sample"
    )

    def cli_cmd(self) -> None:
        from ral.data.cache import audit_caches
        from ral.engine.build import build_caches

        with audit_caches(full=self.verify) as actions:
            paths = build_caches(self.run_config())
        for path in paths:
            print(f"image cache {path}: {actions.get(path, 'kept')}")


class StatsCommand(Command, TableOptions):
    """label statistics of a table: counts, prevalence, patients, studies, views, head/medium/tail groups

    Reads only the label table (no images). Groups come from the prevalence of the table itself, or of
    --groups-from (the training table).
    """

    table: CliPositionalArg[str] = Field(description="label table (CSV or .csv.gz) or folder-per-class tree")
    out: str | None = Field(None, description="folder for stats.json, per_class.csv and long_tail.png")
    head_threshold: float | None = Field(None, description="head if training prevalence >= this (default 0.13)")
    tail_threshold: float | None = Field(None, description="tail if training prevalence < this (default 0.014)")
    groups: str | None = Field(None, description='JSON file of explicit groups: {"class": "head", ...}')
    groups_from: str | None = Field(None, description="training table whose prevalence defines the groups")
    overwrite: CliImplicitFlag[bool] = Field(False, description=_OVERWRITE)

    def cli_cmd(self) -> None:
        from ral.data.groups import DEFAULT_HEAD_THRESHOLD, DEFAULT_TAIL_THRESHOLD
        from ral.data.stats import format_stats, table_stats, write_stats
        from ral.report.files import check_output

        if self.out is not None:
            check_output(self.out, folder=True, overwrite=self.overwrite)
        options = TableOptions(
            **self.arguments(without=tuple(set(type(self).model_fields) - set(TableOptions.model_fields)))
        )
        thresholds = None
        if self.head_threshold is not None or self.tail_threshold is not None:
            thresholds = (
                DEFAULT_HEAD_THRESHOLD if self.head_threshold is None else self.head_threshold,
                DEFAULT_TAIL_THRESHOLD if self.tail_threshold is None else self.tail_threshold,
            )
        mapping = None
        if self.groups is not None:
            with open(self.groups, encoding="utf-8") as fh:
                try:
                    mapping = json.load(fh)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"--groups {self.groups}: not valid JSON ({exc})") from None
            if not isinstance(mapping, dict):
                raise ValueError(
                    f'--groups {self.groups}: a JSON object expected ({{"class": "head", ...}} or '
                    f'{{"head": ["class", ...], ...}}), got a {type(mapping).__name__}'
                )
        table = load_table(self.table, options, check_images="none")
        group_table = None
        if self.groups_from is not None:  # the training part of a split file, with the table's classes
            train_part = "train" if options.split else None
            group_options = options.model_copy(update={"classes": table.class_names, "max_classes": None})
            group_table = load_table(self.groups_from, group_options, check_images="none", split=train_part)
        result = table_stats(table, thresholds=thresholds, mapping=mapping, group_table=group_table)
        print(format_stats(result))
        if self.out is not None:
            paths = write_stats(result, self.out, overwrite=self.overwrite)
            print("wrote " + ", ".join(str(p) for p in paths.values()))
