"""docs/spec.md: the list of layer kinds and one field table per spec model (target ``spec``).

The page holds the region ``kinds`` and one region ``fields/MODEL`` per spec model (the
lines of ``tools.docs.regions``), placed by hand where the prose needs it. Each table lists
the fields the model itself declares (for layers: besides ``name``, ``repeat`` and ``kind``)
with their types, defaults and descriptions, all read from the JSON Schema that
``archbuild schema`` prints: a field's description is the docstring under it in
archbuilder/spec/. A model added to the spec needs its region in docs/spec.md; the tool
refuses to write the page without it, naming the model.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Literal

from pydantic import TypeAdapter

from archbuilder.spec import blocks, layers
from archbuilder.spec.layers import SpecModel
from archbuilder.spec.schema import _draft07
from archbuilder.spec.schema import json_schema as _json_schema
from tools.docs import markdown, regions
from tools.docs.target import Output, Tree

DOC = "docs/spec.md"
KINDS = "kinds"
FIELDS = "fields/"  # the prefix of each model's region
NO_FIELDS = "No fields of its own.\n"

# Names for the value types the prose defines once (docs/spec.md "Values"), by their schema.
VOCABULARY = [
    (layers.Width, "width"),
    (layers.PairOrInt, "size"),
    (layers.NonNegative | layers.PaddingPair, "integer or pair"),
    (layers.NonNegative | layers.PaddingPair | Literal["same"], "padding"),
    (layers.Name, "name"),
    (layers.ActivationFunction, "[activation function](#conv)"),
    (blocks.SliceSize, "count (width), ratio 0 < x < 1, fraction `a/b` or `rest`"),
]
# What a mapping of a model is called in the tables, and where the prose explains it.
MODEL_NAMES = {
    "ConvOptions": "[conv settings](#conv-settings-and-inheritance)",
    "InputShape": "`{channels, height, width}`",
    "Defaults": "`{conv: conv settings}`",
    "Scale": "[`{width, depth, divisor}`](#scale)",
    "InceptionPool": "mapping, [below](#inception-blocks)",
    "Branch": "branch",
    "AuxHead": "[aux head](#aux-heads)",
    "Precision": "[`{keep_fp32}`](#precision)",
}


@functools.cache
def json_schema() -> dict[str, Any]:
    return _json_schema()


def _plain(schema: Any) -> Any:
    """A schema without the keys that describe rather than constrain."""
    if isinstance(schema, list):
        return [_plain(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    return {k: _plain(v) for k, v in schema.items() if k not in ("title", "description", "default")}


_NAMED = [(_plain(_draft07(TypeAdapter(kind).json_schema())), name) for kind, name in VOCABULARY]


def models() -> dict[str, type[SpecModel]]:
    """Every spec model class, by name."""
    found: dict[str, type[SpecModel]] = {}
    pending = [SpecModel]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            found[sub.__name__] = sub
            pending.append(sub)
    return found


def documented_models() -> list[str]:
    """The models a spec can contain (from ``ArchSpec`` down) with fields of their own: each
    needs a table in docs/spec.md."""
    return [
        name
        for name in json_schema()["definitions"]
        if not name.endswith("Patch") and table(name) != NO_FIELDS
    ]


def _number(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else repr(value)


def _range(schema: dict) -> str:
    low = (
        (">", schema["exclusiveMinimum"])
        if "exclusiveMinimum" in schema
        else (("≥", schema["minimum"]) if "minimum" in schema else None)
    )
    high = (
        ("<", schema["exclusiveMaximum"])
        if "exclusiveMaximum" in schema
        else (("≤", schema["maximum"]) if "maximum" in schema else None)
    )
    if schema.get("type") == "integer" and low and high and low[0] == "≥" and high[0] == "≤":
        return f" {_number(low[1])}–{_number(high[1])}"
    if low and high:
        return f", {_number(low[1])} {'<' if low[0] == '>' else '≤'} x {high[0]} {_number(high[1])}"
    if low:
        return f" {low[0]} {_number(low[1])}"
    if high:
        return f" {high[0]} {_number(high[1])}"
    return ""


def type_text(schema: dict) -> str:
    """A field's type as the tables write it."""
    options = schema.get("anyOf") or schema.get("oneOf")
    if options is not None and len(schema.get("anyOf", [])) > 1:
        options = [option for option in options if option != {"type": "null"}]
        if len(options) == 1:
            return type_text(options[0])
        schema = {"anyOf": options}  # optional: the type is what it is when set
    for named, name in _NAMED:
        if _plain(schema) == named:
            return name
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return type_text(schema["allOf"][0])
    if "$ref" in schema:
        model = schema["$ref"].rsplit("/", 1)[1]
        return MODEL_NAMES.get(model, f"`{model}` mapping")
    if "oneOf" in schema:  # the discriminated union of layer kinds
        return "layer"
    if options is not None:
        return " or ".join(type_text(option) for option in options)
    if "const" in schema:
        return f"`{_yaml(schema['const'])}`"
    if "enum" in schema:
        return " | ".join(f"`{_yaml(value)}`" for value in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items", {})
        if isinstance(items, list):
            return "pair of " + type_text(items[0]) if len(items) == 2 else "list"
        text = f"list of {_plural(type_text(items))}"
        if schema.get("minItems"):
            text += f", at least {schema['minItems']}" if schema["minItems"] > 1 else ", at least one"
        return text
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"mapping of names to {_plural(type_text(schema['additionalProperties']))}"
    if kind == "integer":
        return "integer" + _range(schema)
    if kind == "number":
        return "float" + _range(schema)
    if kind == "boolean":
        return "bool"
    if kind == "string":
        if "maxLength" in schema:
            return f"string, {schema.get('minLength', 0)}–{schema['maxLength']} characters"
        return "string"
    return "any"


def _plural(noun: str) -> str:
    if noun.endswith("]") or noun.endswith(")"):  # a link: pluralize the text inside
        text, sep, rest = noun.partition("](")
        return f"{_plural(text)}{sep}{rest}" if sep else noun
    return noun + ("es" if noun.endswith(("s", "sh", "ch", "x")) else "s")


def _yaml(value: Any) -> str:
    """A default as it would be written in a spec."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value else '""'
    if isinstance(value, list):
        return "[" + ", ".join(_yaml(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_yaml(item)}" for key, item in value.items()) + "}"
    if isinstance(value, float) and "e" in repr(value):  # 1e-05 → 1.0e-5, which YAML reads as a float
        mantissa, exponent = repr(value).split("e")
        return f"{float(mantissa)!r}e{int(exponent)}"
    return json.dumps(value)


def default_text(name: str, prop: dict, required: list[str]) -> str:
    if name in required:
        return "required"
    if "default" not in prop or prop["default"] is None:
        return "unset"
    return f"`{_yaml(prop['default'])}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def table(model: str) -> str:
    """The markdown table of the fields ``model`` itself declares."""
    schema = json_schema()["definitions"]
    cls = models()[model]
    if model in schema:
        body = schema[model]
    else:  # a base class (LayerBase): its fields as its first subclass in the schema has them
        body = next(
            schema[sub] for sub, sub_cls in models().items() if sub in schema and issubclass(sub_cls, cls)
        )
    fields = cls.model_fields  # keys as written in a spec (an alias such as `with` for `with_`)
    own = [fields[name].alias or name for name in cls.__annotations__ if name in fields]
    properties = dict(body.get("properties", {}))
    if model == "ArchSpec":  # a file may also say what it extends (ArchSpec never holds it)
        own.append("extends")
        properties["extends"] = {**schema["ArchSpecPatch"]["properties"]["extends"], "type": "file path"}
    rows = []
    for name in own:
        prop = properties[name]
        if name == "kind" and "const" in prop:
            continue  # the layer's kind is the heading
        kind = "file path" if prop.get("type") == "file path" else type_text(prop)
        meaning = _cell(prop.get("description", ""))
        default = default_text(name, prop, body.get("required", []))
        rows.append([f"`{name}`", _cell(kind), default, meaning])
    if not rows:
        return NO_FIELDS
    return markdown.table(["Field", "Type", "Default", "Meaning"], rows, tight=True) + "\n"


def kinds() -> str:
    """Every layer kind with its model's one-line summary."""
    schema = json_schema()["definitions"]
    rows = []
    for option in schema["ArchSpec"]["properties"]["blocks"]["items"]["oneOf"]:  # the Layer union, in order
        name = option["$ref"].rsplit("/", 1)[1]
        kind = schema[name]["properties"]["kind"]["const"]
        summary = (models()[name].__doc__ or "").strip().split("\n\n")[0]
        rows.append([f"`{kind}`", _cell(summary.replace("``", "`"))])
    return markdown.table(["`kind`", "What"], rows, tight=True) + "\n"


def render(document: str) -> str:
    """``document`` (docs/spec.md) with every generated region replaced."""
    return regions.replace(document, bodies(document), DOC)


def tables(document: str) -> dict[str, str]:
    """The field tables as they stand in ``document``, by model."""
    return regions.regions(document, FIELDS)


def bodies(document: str) -> dict[str, str]:
    """What each region of ``document`` should hold, by region name: the kinds, each model's table."""
    known = models()
    for model in tables(document):
        if model not in known:
            raise ValueError(f"{DOC} has a field table for {model}, which is no spec model")
    return {KINDS: kinds()} | {FIELDS + model: table(model) for model in tables(document)}


def begin_line(model: str) -> str:
    return regions.begin_line(FIELDS + model)


def end_line(model: str) -> str:
    return regions.end_line(FIELDS + model)


def outputs(tree: Tree) -> list[Output]:
    """The regions of docs/spec.md; a model without its table is an error naming it."""
    document = tree.read(DOC) or ""
    missing = [model for model in documented_models() if model not in tables(document)]
    if missing:
        raise ValueError(
            f"{DOC} has no field table for {', '.join(missing)}: add the lines "
            f"{begin_line(missing[0])!r} and {end_line(missing[0])!r} where the model is explained"
        )
    return [Output(DOC, name, text) for name, text in bodies(document).items()]
