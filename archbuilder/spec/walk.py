"""Walking spec data (plain dicts, as ``ArchSpec.to_dict`` gives) layer by layer, and comparing it by hash."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["frozen", "walk_layers"]


def walk_layers(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every layer mapping of a spec, blocks before the layers of their branches, aux heads last."""
    lists = [data.get(section, []) for section in ("stem", "blocks", "head")]
    lists += [head.get("layers", []) for head in data.get("aux_heads", [])]
    for layers in lists:
        yield from _walk(layers)


def _walk(layers: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for layer in layers:
        yield layer
        for branch in layer.get("branches", []):
            yield from _walk(branch.get("layers", []))


def frozen(value: Any) -> Any:
    """A hashable stand-in for spec data (YAML or JSON values), equal exactly when the data
    are (``==``): a key for tables of entries or options compared by content."""
    if isinstance(value, dict):
        return frozenset((key, frozen(item)) for key, item in value.items())
    if isinstance(value, list):
        return ("list", tuple(frozen(item) for item in value))
    return value
