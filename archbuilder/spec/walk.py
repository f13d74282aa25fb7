"""Walking spec data (plain dicts, as ``ArchSpec.to_dict`` gives) layer by layer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["walk_layers"]


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
