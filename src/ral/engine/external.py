"""What ``ral evaluate`` scores beyond a table of the checkpoint's own classes.

- **External validation** (``class_map``): a table of another label set (NIH ChestX-ray14 for a
  CXR-LT model) is read with its own classes, mapped onto the model's by
  :func:`ral.data.class_map.map_classes`, and only the classes both sides share are scored, under the
  model's names; metrics.json's ``class_map`` lists how each was mapped and what each side drops.
- **Out-of-fold** (``out_of_fold``): the K checkpoints of K fold runs (``ral data split``) each
  predict the validation table of their own run (the fold it did not train on); the K predictions
  are concatenated and scored once.

:func:`eval_tables` reads the tables; :class:`Scored` says which outputs of the checkpoint are
scored and which checkpoint predicts which row.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ral.data.table import LabelTable
from ral.engine.ensemble import Member, ensemble_probabilities
from ral.engine.inference import load_eval_table

#: The ``data`` name of an out-of-fold evaluation (its folder: ``<first run>/eval/out-of-fold-ensembleK``).
OUT_OF_FOLD = "out-of-fold"


class _Outputs(nn.Module):
    """A model's outputs ``columns`` only (so that output j of the report's Grad-CAM is scored class j)."""

    def __init__(self, model: nn.Module, columns: list[int]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("columns", torch.as_tensor(columns, dtype=torch.long), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images).index_select(1, self.columns)


@dataclass
class Scored:
    """Which outputs of the ensemble are scored, and by which checkpoint each row is predicted.

    Attributes:
        meta: the lead checkpoint's metadata with ``class_names`` / ``train_counts`` / ``groups``
            restricted to the scored classes.
        columns: the output columns scored, in ``meta``'s order; None: all, in the lead's order.
        owner: out-of-fold: the index of the checkpoint that predicts each row; None: the ensemble predicts all.
        report: entries for metrics.json (``class_map``, ``out_of_fold``, ``data``, ``thresholds``).
    """

    meta: dict[str, Any]
    columns: list[int] | None = None
    owner: np.ndarray | None = None
    report: dict[str, Any] | None = None

    def probabilities(self, members: list[Member], table: LabelTable, **options: Any) -> np.ndarray:
        """(N, C) probabilities of the scored classes on ``table`` (options: :func:`ensemble_probabilities`)."""
        if self.owner is None:
            probs = ensemble_probabilities(members, table, **options)
        else:
            names = list(members[0].meta["class_names"])
            probs = np.zeros((len(table), len(names)))
            for k, member in enumerate(members):
                rows = np.flatnonzero(self.owner == k)
                own = ensemble_probabilities([member], table.subset(rows), **options)  # the member's class order
                probs[rows] = own[:, [list(member.meta["class_names"]).index(name) for name in names]]
        return probs if self.columns is None else probs[:, self.columns]

    def members(self, members: list[Member]) -> list[Member]:
        """``members`` as the scored classes see them (metadata and outputs restricted to them)."""
        if self.columns is None:
            return members
        names = self.meta["class_names"]
        return [
            replace(m, model=_Outputs(m.model, [list(m.meta["class_names"]).index(c) for c in names]), meta=self.meta)
            for m in members
        ]


def _restricted(meta: dict[str, Any], classes: list[str]) -> dict[str, Any]:
    """``meta`` with its per-class lists restricted to ``classes`` (in that order)."""
    index = [list(meta["class_names"]).index(name) for name in classes]
    per_class = {key: [meta[key][i] for i in index] for key in ("train_counts", "groups")}
    return {**meta, "class_names": list(classes), **per_class}


def _mapped_table(path: str | os.PathLike, meta: dict[str, Any], class_map: str, key: str, split: str, **tables):
    """The table at ``path`` read with its own classes and mapped onto the model's; and the mapping."""
    from ral.data.class_map import map_classes

    raw = load_eval_table(path, meta, key=key, split=split, own_classes=True, **tables)
    mapping = map_classes(meta["class_names"], raw.class_names, class_map)
    return mapping.apply(raw), mapping


def eval_tables(
    members: list[Member],
    data: str | os.PathLike | None,
    val_data: str | os.PathLike | None,
    *,
    class_map: str | os.PathLike | None = None,
    out_of_fold: bool = False,
    **tables: Any,
) -> tuple[LabelTable, LabelTable | None, Scored]:
    """The evaluated table, the threshold table (or None) and what is scored, for :func:`ral.engine.evaluate`.

    Args:
        members: the loaded checkpoints (the first leads: class order, metadata).
        data, val_data: the tables (``data`` is not read out-of-fold).
        class_map: "builtin" or a YAML file: score the classes ``data`` shares with the model.
        out_of_fold: each checkpoint predicts its own run's ``dataset.val``.
        tables: ``format``, ``root``, ``allow_outside_root`` of :func:`load_eval_table`.

    Raises:
        ValueError: a class map for a single-label model or out-of-fold; out-of-fold with fewer than
            two checkpoints, a run without a validation table, or an image in two runs' validation tables.
    """
    meta = members[0].meta
    if out_of_fold:
        if class_map is not None:
            raise ValueError("give class_map or out_of_fold, not both")
        return _out_of_fold(members, **tables)
    if class_map is None:
        table = load_eval_table(data, meta, key="data", split="test", **tables)
        val = None if val_data is None else load_eval_table(val_data, meta, key="val_data", split="validate", **tables)
        return table, val, Scored(meta)
    if meta["task"] != "multilabel":
        raise ValueError("class_map: external validation through a class map is for multi-label checkpoints")
    table, mapping = _mapped_table(data, meta, class_map, "data", "test", **tables)
    scored = mapping.model_classes
    val = None
    if val_data is not None:
        val, val_mapping = _mapped_table(val_data, meta, class_map, "val_data", "validate", **tables)
        lacking = [name for name in scored if name not in val_mapping.model_classes]
        if lacking:
            raise ValueError(f"val_data: {val_data} lacks the scored classes {lacking}; give another table or none")
        val = replace(val, class_names=scored, labels=val.labels[:, [val.class_names.index(c) for c in scored]])
    columns = [list(meta["class_names"]).index(name) for name in scored]
    return table, val, Scored(_restricted(meta, scored), columns, None, {"class_map": mapping.report()})


def _concatenated(parts: list[LabelTable]) -> LabelTable:
    """One table of the rows of ``parts`` (same classes), image paths made absolute."""

    def joined(field: str) -> list[str] | None:
        values = [getattr(part, field) for part in parts]
        return None if any(v is None for v in values) else [x for v in values for x in v]

    formats = {part.format for part in parts}
    return LabelTable(
        ids=joined("ids"),
        paths=[os.path.abspath(part.image_path(i)) for part in parts for i in range(len(part))],
        subject_ids=joined("subject_ids"),
        class_names=list(parts[0].class_names),
        labels=np.concatenate([part.labels for part in parts]),
        task=parts[0].task,
        format=formats.pop() if len(formats) == 1 else "generic",
        study_ids=joined("study_ids"),
        views=joined("views"),
    )


def _out_of_fold(members: list[Member], **tables: Any) -> tuple[LabelTable, None, Scored]:
    """Each checkpoint's own run's ``dataset.val``, read with the lead's classes, concatenated."""
    from ral.engine.configfile import config_from_checkpoint

    if len(members) < 2:
        raise ValueError("out_of_fold: give the checkpoints of the K fold runs (--checkpoint once per run)")
    lead = members[0].meta
    parts, runs, seen = [], [], {}
    for member in members:
        dataset = config_from_checkpoint(member.meta, member.path).dataset
        if not dataset.val:
            raise ValueError(f"out_of_fold: the run of {member.path} has no dataset.val (the fold it did not train on)")
        options = {
            **tables,
            "format": tables.get("format") or dataset.format,
            "root": tables.get("root") or dataset.root,
        }
        part = load_eval_table(dataset.val, {**member.meta, "class_names": lead["class_names"]}, **options)
        for i in range(len(part)):
            image = os.path.abspath(part.image_path(i))
            if image in seen:
                raise ValueError(
                    f"out_of_fold: image {image} is in the validation tables of {seen[image]} and {member.path}: "
                    "these runs are not folds of one split"
                )
            seen[image] = member.path
        parts.append(part)
        runs.append({"checkpoint": str(Path(member.path).resolve()), "data": str(Path(dataset.val).resolve())})
        runs[-1]["n_images"] = len(part)
    owner = np.concatenate([np.full(len(part), k) for k, part in enumerate(parts)])
    report = {
        "data": OUT_OF_FOLD,
        "out_of_fold": runs,
        "thresholds": "default 0.5 (out-of-fold: every row is a validation row; no separate table to tune on)",
    }
    return _concatenated(parts), None, Scored(lead, None, owner, report)
