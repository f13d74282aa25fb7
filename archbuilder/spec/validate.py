"""Turn pydantic validation errors into located, actionable Problems."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from archbuilder.core.errors import KeyPath, Problem, did_you_mean
from archbuilder.spec.blocks import LAYER_TYPES, Branch, InceptionPool
from archbuilder.spec.layers import ConvOptions
from archbuilder.spec.model import ArchSpec, AuxHead, Defaults, InputShape, Precision
from archbuilder.spec.source import Source
from archbuilder.spec.templates import Template

__all__ = ["problems_from_validation"]

LAYER_KINDS: dict[str, type[BaseModel]] = {
    cls.model_fields["kind"].annotation.__args__[0]: cls for cls in LAYER_TYPES
}
# The model of a mapping that is not a layer, by the key that holds it.
_MODEL_BY_KEY: dict[str | None, type[BaseModel]] = {
    None: ArchSpec,
    "input": InputShape,
    "defaults": Defaults,
    "conv": ConvOptions,
    "pool": InceptionPool,
    "aux_heads": AuxHead,
    "branches": Branch,
    "precision": Precision,
}


# What a field that takes one of several forms expects, for errors under a union.
_EXPECTED = {
    "kernel": "an integer ≥ 1, or a pair [height, width] of them",
    "stride": "an integer ≥ 1, or a pair [height, width] of them",
    "dilation": "an integer ≥ 1, or a pair [height, width] of them",
    "output": "an integer ≥ 1, or a pair [height, width] of them",
    "padding": "an integer ≥ 0, a pair [height, width] of them, or 'same' (conv only)",
    "out": "an integer ≥ 1 (or, for linear, 'num_classes')",
    "groups": "an integer ≥ 1, or 'depthwise'",
    "channels": "a count ≥ 1, a ratio of the input channels below 1 (0.125 or '1/8'), or 'rest'",
}


def _data_path(data: Any, loc: tuple[str | int, ...]) -> tuple[KeyPath, bool]:
    """Map a pydantic error location onto the data, dropping the tags pydantic inserts.

    Returns the path and whether the error came from one member of a union.
    """
    path: list[str | int] = []
    node = data
    in_list = False  # node is a list item: a layer, whose discriminator tag may come next
    for part in loc:
        if in_list and isinstance(node, dict) and part == node.get("kind"):
            in_list = False  # the tag pydantic puts in the location (even when a key has its name)
            continue
        in_list = isinstance(node, list)
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        ):
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str):
            path.append(part)  # a missing or unknown key
            break
        else:
            return tuple(path), True  # a union member's name, e.g. 'constrained-int'
        path.append(part)
    return tuple(path), False


def _model_of(data: Any, path: KeyPath) -> type[BaseModel] | None:
    """The spec model that validates the mapping at ``path``."""
    node = _value_at(data, path)
    kind = node.get("kind") if isinstance(node, dict) else None
    if isinstance(kind, str) and kind in LAYER_KINDS:
        return LAYER_KINDS[kind]
    if len(path) >= 2 and path[-2] == "templates":
        return Template
    key = next((part for part in reversed(path) if isinstance(part, str)), None)
    if key == "conv" and isinstance(node, dict) and "kind" in node:
        return None
    return _MODEL_BY_KEY.get(key)


def _message(error: dict[str, Any], data: Any, path: KeyPath) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        model = _model_of(data, path[:-1])
        fields = [field.alias or name for name, field in model.model_fields.items()] if model else []
        hint = did_you_mean(str(path[-1]), fields)
        allowed = ", ".join(name for name in fields if name != "kind")
        return f"unknown key '{path[-1]}'{hint or _lookalike([path[-1]])}; allowed keys: {allowed}"
    if kind == "union_tag_invalid":
        tag = error["ctx"]["tag"]
        return f"unknown layer kind '{tag}'{did_you_mean(tag, LAYER_KINDS)}; kinds: {', '.join(LAYER_KINDS)}"
    if kind == "union_tag_not_found":
        return f"missing 'kind'{_lookalike(_keys_at(data, path))}; one of: {', '.join(LAYER_KINDS)}"
    if kind == "missing":
        return f"missing required key '{path[-1]}'{_lookalike(_keys_at(data, path[:-1]))}"
    if kind == "value_error":
        return str(error["ctx"]["error"])
    if kind == "literal_error" and path and path[-1] == "format":
        return "unsupported format version; this archbuilder reads format: 1"
    message = error["msg"][0].lower() + error["msg"][1:]
    value = error.get("input")
    if isinstance(value, (int, float, str)) and len(_shown(value)) < 60:
        message += f" (got {_shown(value)})"
    if kind == "string_type" and isinstance(value, (bool, int, float)):
        message += "; YAML reads unquoted numbers and true/false as such: quote the text"
    return message


def _shown(value: Any) -> str:
    """``repr(value)``, shortened; never fails (a huge int has no repr in Python 3.11+)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        return "a very large integer"
    if isinstance(value, (bool, int, float, str)) or value is None:
        text = repr(value)
    elif isinstance(value, list) and len(value) <= 8 and not any(isinstance(v, (list, dict)) for v in value):
        text = "[" + ", ".join(_shown(item) for item in value) + "]"
    else:
        text = "a list" if isinstance(value, list) else "a mapping" if isinstance(value, dict) else "a value"
    return text if len(text) <= 80 else text[:80] + "…"


def _keys_at(data: Any, path: KeyPath) -> list[Any]:
    try:
        node = _value_at(data, path)
    except (KeyError, IndexError, TypeError):
        return []
    return list(node) if isinstance(node, dict) else []


def _lookalike(keys: list[Any]) -> str:
    """A hint for a key holding a non-ASCII character (``kіnd`` with a Cyrillic і), or ''."""
    import unicodedata

    for key in keys:
        odd = [char for char in str(key) if not char.isascii()]
        if odd:
            char = odd[0]
            name = unicodedata.name(char, "unnamed")
            return (
                f" (the key {str(key)!r} contains the non-ASCII character U+{ord(char):04X} {name}, "
                "which may look like an ASCII letter: retype the key)"
            )
    return ""


def problems_from_validation(exc: ValidationError, data: Any, source: Source) -> list[Problem]:
    """One Problem per pydantic error, placed at the key it concerns."""
    messages: dict[KeyPath, list[str]] = {}
    for error in exc.errors(include_url=False):
        path, in_union = _data_path(data, tuple(error["loc"]))
        if in_union and path and path[-1] in _EXPECTED:
            # A union (``3`` or ``[3, 3]``) fails once per member; say what it takes instead.
            value = _value_at(data, path)
            message = f"expected {_EXPECTED[path[-1]]}, got {_shown(value)}"
            if isinstance(value, str):
                message += did_you_mean(value, ["num_classes", "same"])
        else:
            message = _message(error, data, path)
        if message not in messages.setdefault(path, []):
            messages[path].append(message)
    return [source.problem(path, "; ".join(texts)) for path, texts in messages.items()]


def _value_at(data: Any, path: KeyPath) -> Any:
    for part in path:
        data = data[part]
    return data
