"""Turn pydantic validation errors into located, actionable Problems."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from archbuilder.errors import KeyPath, Problem, did_you_mean
from archbuilder.spec.blocks import LAYER_TYPES, Branch, InceptionPool
from archbuilder.spec.layers import ConvOptions
from archbuilder.spec.model import ArchSpec, AuxHead, Defaults, InputShape
from archbuilder.spec.source import Source

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
}


def _data_path(data: Any, loc: tuple[str | int, ...]) -> KeyPath:
    """Map a pydantic error location onto the data, dropping union tags it inserts."""
    path: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif isinstance(node, dict) and part == node.get("kind"):
            continue  # the discriminator tag pydantic puts in the location
        elif isinstance(node, dict) and isinstance(part, str):
            path.append(part)  # a missing or unknown key
            break
        else:
            break  # below a scalar: union member names pydantic adds
        path.append(part)
    return tuple(path)


def _model_of(data: Any, path: KeyPath) -> type[BaseModel] | None:
    """The spec model that validates the mapping at ``path``."""
    node = data
    for part in path:
        node = node[part]
    if isinstance(node, dict) and node.get("kind") in LAYER_KINDS:
        return LAYER_KINDS[node["kind"]]
    key = next((part for part in reversed(path) if isinstance(part, str)), None)
    if key == "conv" and isinstance(node, dict) and "kind" in node:
        return None
    return _MODEL_BY_KEY.get(key)


def _message(error: dict[str, Any], data: Any, path: KeyPath) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        model = _model_of(data, path[:-1])
        fields = model.model_fields if model else {}
        hint = did_you_mean(str(path[-1]), fields)
        allowed = ", ".join(name for name in fields if name != "kind")
        return f"unknown key '{path[-1]}'{hint}; allowed keys: {allowed}"
    if kind == "union_tag_invalid":
        tag = error["ctx"]["tag"]
        return f"unknown layer kind '{tag}'{did_you_mean(tag, LAYER_KINDS)}; kinds: {', '.join(LAYER_KINDS)}"
    if kind == "union_tag_not_found":
        return f"missing 'kind'; one of: {', '.join(LAYER_KINDS)}"
    if kind == "missing":
        return f"missing required key '{path[-1]}'"
    if kind == "literal_error" and path and path[-1] == "format":
        return "unsupported format version; this archbuilder reads format: 1"
    return error["msg"][0].lower() + error["msg"][1:]


def problems_from_validation(exc: ValidationError, data: Any, source: Source) -> list[Problem]:
    """One Problem per pydantic error, placed at the key it concerns."""
    messages: dict[KeyPath, list[str]] = {}
    for error in exc.errors(include_url=False):
        path = _data_path(data, tuple(error["loc"]))
        message = _message(error, data, path)
        if message not in messages.setdefault(path, []):
            messages[path].append(message)
    # A union (``3`` or ``[3, 3]``) reports one error per member: join them into one problem.
    return [source.problem(path, "; or ".join(texts)) for path, texts in messages.items()]
