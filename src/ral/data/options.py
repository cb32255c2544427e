"""How to read a label table: every option of :func:`ral.data.load_table`, declared once.

:class:`TableOptions` is the one declaration: the readers get it, the training config's
``dataset`` section extends it, and the CLI flags, the validation and the config reference
come from its fields and their descriptions. The choice types (:data:`UncertainPolicy`,
:data:`TableTask`, ...) are declared here and used everywhere.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict, StrictBool, model_validator
from pydantic_core import PydanticCustomError

from ral.data.classes import CLASS_SETS
from ral.data.table import Task

#: The formats of :data:`ral.data.formats.TABLE_FORMATS`, in detection order.
FormatName = Literal["cxrlt", "nih", "chexpert", "isic2018", "aptos", "padchest", "vindr", "mimic", "generic", "folder"]
#: What a -1 (uncertain) label becomes: NaN (masked in the loss and the metrics), 1 or 0.
UncertainPolicy = Literal["ignore", "ones", "zeros"]
#: The task asked of a table: "auto" lets the format / the table decide.
TableTask = Literal["auto", Task]
#: VinDr-CXR: a class is positive if any radiologist marked it, or a majority did.
VindrAgreement = Literal["any", "majority"]
#: The parts of MIMIC-CXR-JPG's official split file.
MimicSplit = Literal["train", "validate", "test"]

# The choices as tuples, where code lists them: the formats (ral.data.FORMATS), a split file's values.
FORMATS: tuple[str, ...] = get_args(FormatName)
MIMIC_SPLITS: tuple[str, ...] = get_args(MimicSplit)


def _class_set(value: Any) -> Any:
    """``classes: cxrlt2024-task2``: a name of :data:`ral.data.classes.CLASS_SETS` stands for its list."""
    if isinstance(value, str):
        if value not in CLASS_SETS:
            raise PydanticCustomError(
                "class_set", "a list of class names or one of {names}", {"names": tuple(CLASS_SETS)}
            )
        return list(CLASS_SETS[value])
    return value


def _no_repeats(names: list[str] | None) -> list[str] | None:
    """A class listed twice would be trained and counted twice."""
    repeated = sorted({name for name in names or [] if names.count(name) > 1})
    if repeated:
        raise PydanticCustomError("repeated", "each class once, but {names} given more than once", {"names": repeated})
    return names


def _path_text(value: Any) -> Any:
    """A ``pathlib.Path`` (or any path-like) is kept as its text, as YAML writes it."""
    return os.fspath(value) if isinstance(value, os.PathLike) else value


class TableOptions(BaseModel):
    """How to read a label table (a CSV, ``.csv.gz`` or folder-per-class tree); every field has a default.

    Build one with keywords (``TableOptions(format="nih", skip_bad=True)``) or pass the keywords
    to :func:`ral.data.load_table` directly. Frozen: change one with ``model_copy(update=...)``
    or, validated, ``TableOptions(**{**options.model_dump(), "skip_bad": True})``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: FormatName | None = Field(None, description="the table's format; null detects it from the CSV header")
    root: Annotated[str, BeforeValidator(_path_text)] | None = Field(
        None, description="folder image paths are relative to (default: the table's folder)"
    )
    uncertain: UncertainPolicy = Field(
        "ignore",
        description="-1 labels (CheXpert, MIMIC-CXR-JPG): `ignore` (masked in loss and metrics), `ones`, `zeros`",
    )
    task: TableTask = Field(
        "auto",
        description="`auto`: the table decides (a generic table with 0/1 class columns is multi-label); "
        "`single` reads such a table as single-label (exactly one 1 per row)",
    )
    classes: Annotated[list[str] | None, BeforeValidator(_class_set), AfterValidator(_no_repeats)] = Field(
        None,
        min_length=1,
        description=f"keep these classes only, in this order; or a list's name: {', '.join(CLASS_SETS)}",
    )
    max_classes: Annotated[int, Strict()] | None = Field(
        None, ge=1, description="keep the N most frequent classes only (PadChest's open label list); not with classes"
    )
    views: list[Annotated[str, Field(min_length=1)]] | None = Field(
        None,
        min_length=1,
        description="keep these views only: the table's names (`PA`, `LATERAL`...), `frontal`, `lateral`",
    )
    split: MimicSplit | None = Field(None, description="MIMIC-CXR-JPG: read this part of the official split file only")
    vindr_agreement: VindrAgreement = Field(
        "any", description="VinDr-CXR: a class is positive if `any` radiologist marked it, or a `majority` did"
    )
    skip_bad: StrictBool = Field(
        False,
        description="drop rows with invalid labels or missing / undecodable images (a warning) instead of failing",
    )
    allow_outside_root: StrictBool = Field(False, description="accept relative image paths that lead out of the root")

    @model_validator(mode="after")
    def _classes_or_max_classes(self) -> TableOptions:
        if self.classes is not None and self.max_classes is not None:
            raise PydanticCustomError("classes_or_max_classes", "give classes or max_classes, not both")
        return self


def table_options(options: TableOptions | None = None, /, **fields: Any) -> TableOptions:
    """``options`` (a ``TableOptions`` or a model extending it) with ``fields`` replaced, validated.

    Raises:
        pydantic.ValidationError (a ValueError): an unknown field or a value it does not accept.
    """
    if options is None:
        return TableOptions(**fields)
    if type(options) is TableOptions and not fields:
        return options
    return TableOptions(**{**options.model_dump(include=set(TableOptions.model_fields)), **fields})
