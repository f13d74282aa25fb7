"""The JSON Schema of spec files, generated from the spec models.

Editors (VS Code's YAML extension, any yaml-language-server client) use it to complete and
check keys as a spec is typed. It is JSON Schema draft-07, the draft those editors support
fully. Beyond ``ArchSpec`` it describes what a spec *file* may hold: a file with
``extends`` is a patch over its base, so its keys are all optional, ``null`` removes one, and
a list of entries may be patched by entry name (``blocks: {3a: {ch1x1: 32}}``).

The schema is an editing aid; ``load_spec`` stays the authority (it also checks names,
taps and shapes, which no schema can).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

from archbuilder.spec.model import ArchSpec

__all__ = ["SCHEMA_DRAFT", "SCHEMA_FILE", "SHIPPED_SCHEMA", "json_schema", "schema_reference", "schema_text"]

SCHEMA_DRAFT = "http://json-schema.org/draft-07/schema#"
SCHEMA_FILE = "archbuilder.schema.json"  # its name in the repository's schema/ folder
# Installed with the package (archbuilder/schema links to the repository's schema/ in a checkout).
SHIPPED_SCHEMA = (Path(__file__).parents[1] / "schema" / SCHEMA_FILE).resolve()
_PATCH = "Patch"  # suffix of the definitions that describe a patch (a spec with extends)

JSON = dict[str, Any]


def json_schema() -> JSON:
    """The JSON Schema (draft-07) of a spec file, as a dict."""
    raw = ArchSpec.model_json_schema(ref_template="#/definitions/{model}")
    definitions = {name: _draft07(body) for name, body in raw.pop("$defs", {}).items()}
    definitions["ArchSpec"] = _draft07(raw)
    patches = {f"{name}{_PATCH}": _patch_of(body) for name, body in definitions.items()}
    spec_patch = patches["ArchSpecPatch"]
    spec_patch["properties"] = {
        "extends": {"type": "string", "minLength": 1, "description": _EXTENDS},
        **spec_patch["properties"],
    }
    spec_patch["required"] = ["extends"]
    return {
        "$schema": SCHEMA_DRAFT,
        "title": "archbuilder spec",
        "description": "A convolutional network described as data (archbuilder spec format 1).",
        "if": {"type": "object", "required": ["extends"]},
        "then": {"$ref": "#/definitions/ArchSpecPatch"},
        "else": {"$ref": "#/definitions/ArchSpec"},
        "definitions": {**definitions, **patches},
    }


def schema_text() -> str:
    """:func:`json_schema` as the text ``archbuild schema`` prints (2-space indent, final newline)."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def schema_reference(output: str | os.PathLike[str] | None) -> str | None:
    """What the ``$schema`` line of a spec written to ``output`` should say.

    A copy of the schema beside ``output`` (``archbuild schema -o archbuilder.schema.json``)
    is named relatively, so the folder can move; otherwise the schema installed with
    archbuilder, by absolute path. None when neither exists.
    """
    folder = Path(output).absolute().parent if output is not None else Path.cwd()
    if (folder / SCHEMA_FILE).is_file():
        return SCHEMA_FILE
    return SHIPPED_SCHEMA.as_posix() if SHIPPED_SCHEMA.is_file() else None


_EXTENDS = (
    "A spec file this one is written on top of, relative to this file. Its keys are merged "
    "over the base's: a mapping patches a mapping, `null` removes a key, and a mapping over a "
    "list patches entries by name."
)


def _draft07(node: Any) -> Any:
    """Pydantic's 2020-12 output in draft-07 terms, without the keys editors trip over."""
    if isinstance(node, list):
        return [_draft07(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _draft07(value) for key, value in node.items() if key != "discriminator"}
    if "prefixItems" in out:  # a tuple: draft-07 writes it as an items array
        out["items"] = out.pop("prefixItems")
        out["additionalItems"] = False
    if "properties" in out:  # titles pydantic makes from field names ("Num Classes") add nothing
        out["properties"] = {
            name: {k: v for k, v in prop.items() if k != "title"} for name, prop in out["properties"].items()
        }
    if isinstance(out.get("default"), dict):  # a model's default, dumped with its unset (None) fields
        out["default"] = _without_none(out["default"])
    if "$ref" in out and len(out) > 1:  # draft-07 ignores a $ref's siblings (description, default)
        out = {"allOf": [{"$ref": out.pop("$ref")}], **out}
    return out


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_none(item) for key, item in value.items() if item is not None}
    return value


def _patch_of(model: JSON) -> JSON:
    """The schema of a patch of ``model``'s mapping: every key optional, ``null`` removes it."""
    patch = {key: value for key, value in model.items() if key not in ("required", "properties")}
    patch["properties"] = {name: _nullable(_patch_value(prop)) for name, prop in model["properties"].items()}
    return patch


def _patch_value(prop: JSON) -> JSON:
    """What may stand where ``prop`` stands in a patch.

    A mapping there is merged into the base's, so it is a patch of its model; a list replaces
    the base's list whole, or a mapping patches its entries by name (or position).
    """
    if "$ref" in prop:
        return {**prop, "$ref": prop["$ref"] + _PATCH}
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in prop:
            others = {key: value for key, value in prop.items() if key != combinator}
            options = [_patch_value(option) for option in prop[combinator]]
            # allOf [X] is only a $ref wrapper; anyOf/oneOf may now overlap, so anyOf
            return {**others, "allOf" if combinator == "allOf" else "anyOf": options}
    if prop.get("type") == "array" and isinstance(prop.get("items"), dict):
        entries = {
            "type": "object",
            "description": "Entries patched by name (or 0-based position); null removes one.",
            "additionalProperties": _nullable(_patch_value(prop["items"])),
        }
        return {"anyOf": [copy.deepcopy(prop), entries]}
    return prop


def _nullable(schema: JSON) -> JSON:
    """``schema`` or null, with its description and default kept on top for editors' hovers."""
    shown = {key: schema[key] for key in ("description", "default") if key in schema}
    rest = {key: value for key, value in schema.items() if key not in shown}
    return {**shown, "anyOf": [rest, {"type": "null"}]}
