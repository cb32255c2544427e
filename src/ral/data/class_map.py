"""Class names across chest X-ray label sets: one table of synonyms, a user's YAML map, and the mapping of
a model's classes onto a table's (external validation: ``ral evaluate --class-map builtin|my.yaml``).

Names are compared after :func:`normalize` (case, ``_`` and spaces ignored), so NIH's
``Pleural_Thickening``, VinDr-CXR's ``Pleural thickening`` and PadChest's ``pleural thickening``
are the CXR-LT class ``Pleural Thickening`` without a table entry. :data:`SYNONYMS` lists only the
names that differ beyond that and mean the same finding. Broader or narrower labels (VinDr-CXR's
``Nodule/Mass``, CheXpert's ``Pleural Other``, ``Lung Lesion`` vs ``Mass``, PadChest's device
labels vs ``Support Devices``) are not synonyms: map them yourself in a YAML file if your study
accepts the difference.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ral.data.table import LabelTable

#: How a model class found its data class: the same name, a built-in synonym (also the same name
#: spelled otherwise: case, ``_``), or the user's YAML map.
HowMapped = Literal["identity", "synonym", "user"]

#: One row per finding: the names the datasets give it (the first is the CXR-LT / CheXpert name).
SYNONYMS: tuple[tuple[str, ...], ...] = (
    # CheXpert, MIMIC-CXR, CXR-LT 2023/2024; NIH ChestX-ray14; VinDr-CXR / PadChest spell it as CheXpert does
    ("Pleural Effusion", "Effusion"),
    # CXR-LT 2023 (and NIH, CheXpert, MIMIC-CXR); CXR-LT 2024 renamed it; PadChest's "normal"
    ("No Finding", "Normal"),
    # NIH, CXR-LT; VinDr-CXR and PadChest say "pulmonary fibrosis"
    ("Fibrosis", "Pulmonary Fibrosis"),
    # NIH, CheXpert, CXR-LT; PadChest "pulmonary edema"
    ("Edema", "Pulmonary Edema"),
    # NIH, CXR-LT, VinDr-CXR; PadChest "infiltrates"
    ("Infiltration", "Infiltrates"),
    # NIH, CXR-LT (on a chest radiograph: a hiatal hernia); PadChest "hiatal hernia"
    ("Hernia", "Hiatal Hernia"),
    # CXR-LT 2024 "Round(ed) Atelectasis"; PadChest "round atelectasis"
    ("Round(ed) Atelectasis", "Round Atelectasis", "Rounded Atelectasis"),
)


def normalize(name: str) -> str:
    """A class name for comparison: case-folded, ``_`` as a space, runs of spaces as one."""
    return re.sub(r"\s+", " ", str(name).replace("_", " ")).strip().casefold()


_GROUP: dict[str, int] = {normalize(name): i for i, names in enumerate(SYNONYMS) for name in names}


def _finding(name: str) -> str | int:
    """The finding a name stands for: its :data:`SYNONYMS` row, else the normalised name itself."""
    key = normalize(name)
    return _GROUP.get(key, key)


@dataclass(frozen=True)
class ClassMapping:
    """Which model class is scored against which data class, and what each side leaves out.

    Attributes:
        pairs: ``(model class, data class, how)`` in the model's class order.
        model_only: model classes without a data class (not scored).
        data_only: data classes no model class maps to (not scored).
        source: "builtin" or the user's YAML file.
    """

    pairs: list[tuple[str, str, HowMapped]]
    model_only: list[str] = field(default_factory=list)
    data_only: list[str] = field(default_factory=list)
    source: str = "builtin"

    @property
    def model_classes(self) -> list[str]:
        return [model for model, _, _ in self.pairs]

    def apply(self, table: LabelTable) -> LabelTable:
        """``table`` (with the data classes) reduced to the mapped classes, named and ordered as the model's."""
        from dataclasses import replace

        from ral.data.load import select_classes

        selected = select_classes(table, [data for _, data, _ in self.pairs])
        return replace(selected, class_names=self.model_classes)

    def report(self) -> dict:
        """For metrics.json: the map, each scored class and how it was mapped, what each side drops."""
        return {
            "map": self.source,
            "mapped": [{"model": model, "data": data, "how": how} for model, data, how in self.pairs],
            "model_only": list(self.model_only),
            "data_only": list(self.data_only),
        }


def read_user_map(path: str | os.PathLike) -> dict[str, str]:
    """A YAML file ``{model_class: data_class}`` (e.g. ``Tortuous Aorta: aortic elongation``).

    Raises:
        FileNotFoundError: no such file. ValueError: not a mapping of names to names (one line naming the file).
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"class_map: {path} not found (give 'builtin' or a YAML file of model: data names)")
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where is not None else ""
        raise ValueError(f"class_map: {path} is not valid YAML{at}") from None
    if not isinstance(content, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k.strip() and v.strip() for k, v in content.items()
    ):
        raise ValueError(f"class_map: {path} must be a YAML mapping of model class names to data class names")
    return {k.strip(): v.strip() for k, v in content.items()}


def map_classes(
    model_classes: Sequence[str], data_classes: Sequence[str], class_map: str | os.PathLike = "builtin"
) -> ClassMapping:
    """Map each model class to the data class that names the same finding.

    First the user's YAML map (when ``class_map`` is a file), then the same name, then the
    built-in :data:`SYNONYMS`; each data class is used once (the earlier rule, then the earlier
    model class, wins).

    Args:
        model_classes: the checkpoint's classes, in output order.
        data_classes: the evaluated table's classes.
        class_map: "builtin", or a YAML file ``{model_class: data_class}`` applied before the built-in synonyms.

    Raises:
        ValueError: a YAML entry naming a model class the checkpoint lacks, a data class the table
            lacks, or a data class twice; no class in common.
    """
    source = "builtin" if str(class_map) == "builtin" else str(class_map)
    user = {} if source == "builtin" else read_user_map(class_map)
    unknown = [m for m in user if m not in model_classes]
    absent = [d for d in user.values() if d not in data_classes]
    if unknown or absent:
        raise ValueError(
            f"class_map {source}: "
            + "; ".join(
                part
                for part in (
                    f"{unknown} are not classes of the checkpoint ({list(model_classes)})" if unknown else "",
                    f"{absent} are not classes of the table ({list(data_classes)})" if absent else "",
                )
                if part
            )
        )
    twice = sorted({d for d in user.values() if list(user.values()).count(d) > 1})
    if twice:
        raise ValueError(f"class_map {source}: data class(es) {twice} are mapped from two model classes")
    found: dict[str, tuple[str, HowMapped]] = {m: (d, "user") for m, d in user.items()}
    used = set(user.values())
    for rule in ("identity", "synonym"):
        for model in model_classes:
            if model in found:
                continue
            for data in data_classes:
                same = data == model if rule == "identity" else _finding(data) == _finding(model)
                if data not in used and same:
                    found[model] = (data, rule)
                    used.add(data)
                    break
    pairs = [(m, *found[m]) for m in model_classes if m in found]
    if not pairs:
        raise ValueError(
            f"class_map {source}: the checkpoint's classes {list(model_classes)} and the table's "
            f"{list(data_classes)} share no class"
        )
    return ClassMapping(
        pairs=pairs,
        model_only=[m for m in model_classes if m not in found],
        data_only=[d for d in data_classes if d not in used],
        source=source,
    )


def format_mapping(report: dict) -> str:
    """The lines ``ral evaluate`` prints about a class map (``report``: :meth:`ClassMapping.report`)."""
    mapped = report["mapped"]
    counts = {how: sum(1 for pair in mapped if pair["how"] == how) for how in ("identity", "synonym", "user")}
    lines = [
        f"class map {report['map']}: {len(mapped)} classes scored ("
        + ", ".join(f"{n} {how}" for how, n in counts.items() if n)
        + ")"
    ]
    renamed = [f"{p['model']} = {p['data']} ({p['how']})" for p in mapped if p["model"] != p["data"]]
    if renamed:
        lines.append("  mapped: " + "; ".join(renamed))
    lines.append(f"  not scored, model only: {report['model_only'] or 'none'}")
    lines.append(f"  not scored, table only: {report['data_only'] or 'none'}")
    return "\n".join(lines)
