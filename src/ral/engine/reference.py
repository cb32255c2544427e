"""The config reference of docs/usage.md, generated from the declarations of :mod:`ral.engine.config`.

``python -m ral.engine.reference docs/usage.md`` rewrites the part between the markers.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from pydantic.fields import FieldInfo

from ral.engine.config import Config, section_type, yaml_text

START = "<!-- config-reference:start -->"
END = "<!-- config-reference:end -->"


def _table(fields: Mapping[str, FieldInfo]) -> str:
    rows = ["| key | default | meaning |", "| --- | --- | --- |"]
    for name, info in fields.items():
        default = "—" if info.is_required() else yaml_text(info.get_default(call_default_factory=True))
        meaning = (info.description or "").replace("|", "\\|")
        rows.append(f"| `{name}` | {default} | {meaning} |")
    return "\n".join(rows)


def config_reference() -> str:
    """Markdown: one table (key, default, meaning) for the top-level keys and one per section."""
    sections = {name: info for name, info in Config.model_fields.items() if section_type(info) is not None}
    blocks = ["**top level**", _table({n: f for n, f in Config.model_fields.items() if n not in sections})]
    for name, info in sections.items():
        blocks += [f"**`{name}`**: {info.description}", _table(section_type(info).model_fields)]
    return "\n\n".join(blocks) + "\n"


def with_reference(text: str) -> str:
    """``text`` (docs/usage.md) with the part between the config-reference markers regenerated.

    Raises:
        ValueError: the markers are missing or out of order.
    """
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the text needs {START!r} followed by {END!r}")
    return text[: start + len(START)] + "\n\n" + config_reference() + "\n" + text[end:]


if __name__ == "__main__":
    doc = Path(sys.argv[1])
    doc.write_text(with_reference(doc.read_text(encoding="utf-8")), encoding="utf-8")
