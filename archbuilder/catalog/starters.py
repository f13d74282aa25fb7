"""A shipped spec's text to print or to start a spec of one's own from: its ``$schema`` line
for editors, and for a new file a header saying what to edit and how to check it."""

from __future__ import annotations

import re
from pathlib import Path

from archbuilder.core.escaping import yaml_header
from archbuilder.ir import load_spec
from archbuilder.spec.schema import schema_reference
from archbuilder.spec.shipped import shipped_path

__all__ = ["new_spec_text", "shipped_spec_text"]

_SCHEMA_LINE = re.compile(r"^# yaml-language-server: \$schema=\S*\n")
_LEADING_COMMENTS = re.compile(r"\A(?:#.*\n)+")  # the shipped file's own header
_NAME_LINE = re.compile(r"^name: .*$", re.MULTILINE)
_VALID_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def shipped_spec_text(name: str, *, schema: str | None = None, output: str | Path | None = None) -> str:
    """The YAML of the shipped spec ``name``, its ``$schema`` line pointing at ``schema`` (by
    default the schema installed with archbuilder, or a copy beside ``output``; '' for none)."""
    text = shipped_path(name).read_text(encoding="utf-8")
    return _schema_line(output, schema) + _SCHEMA_LINE.sub("", text, count=1)


def new_spec_text(output: str | Path, base: str, *, schema: str | None = None) -> str:
    """A new spec for the file ``output``: a copy of the shipped spec ``base``, named after the
    file, with a header saying what to edit and how to check it."""
    output = Path(output)
    body = _LEADING_COMMENTS.sub("", shipped_spec_text(base, schema=""), count=1)
    if _VALID_NAME.fullmatch(output.stem):
        body = _NAME_LINE.sub(f"name: {output.stem}", body, count=1)
    header = [
        f"{output.stem}: started from archbuilder's shipped spec `{base}`.",
        "Edit anything: name, input, num_classes, any block's widths (input channels are inferred).",
        f"Check it with `archbuild validate {output.name}`; see its sizes with `archbuild summary`.",
        f"To change only a few values of `{base}` and follow it otherwise, write instead:",
        f"  extends: {base}",
        "  num_classes: 10",
        f"  blocks: {{{_first_block(base)}: {{...}}}}    # patch an entry by its name",
    ]
    return _schema_line(output, schema) + yaml_header(header) + body


def _schema_line(output: str | Path | None, schema: str | None) -> str:
    """The editors' ``$schema`` comment line (one line whatever the path holds), or ""."""
    reference = schema_reference(output) if schema is None else schema
    return yaml_header([f"yaml-language-server: $schema={reference}"]) if reference else ""


def _first_block(name: str) -> str:
    spec = load_spec(shipped_path(name), check_shapes=False)
    named = [entry.name for entry in spec.blocks if getattr(entry, "name", None)]
    return named[0] if named else "NAME"
