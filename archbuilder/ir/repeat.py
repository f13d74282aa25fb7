"""``repeat: n``: a layer written once, lowered as n copies named ``{name}_1`` … ``{name}_n``."""

from __future__ import annotations

from collections.abc import Sequence

from archbuilder.core.errors import KeyPath
from archbuilder.spec.blocks import InvertedResidual, Layer

__all__ = ["expand_repeats"]


def expand_repeats(
    layers: Sequence[Layer], paths: Sequence[KeyPath]
) -> tuple[list[Layer], list[KeyPath], dict[str, str]]:
    """The layers with each repeated one as its copies (each at the repeated layer's path), and
    each repeated named layer's last copy by its name (what a tap on the name reads)."""
    expanded: list[Layer] = []
    expanded_paths: list[KeyPath] = []
    last_copies: dict[str, str] = {}
    for layer, path in zip(layers, paths):
        if layer.repeat == 1:
            expanded.append(layer)
            expanded_paths.append(path)
            continue
        for copy in range(1, layer.repeat + 1):
            update = {"name": f"{layer.name}_{copy}" if layer.name else None, "repeat": 1}
            if copy > 1 and isinstance(layer, InvertedResidual):  # a stage: only its first copy strides
                update["stride"] = 1
            expanded.append(layer.model_copy(update=update))
            expanded_paths.append(path)
        if layer.name:
            last_copies[layer.name] = f"{layer.name}_{layer.repeat}"
    return expanded, expanded_paths, last_copies
