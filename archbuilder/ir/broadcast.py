"""The output shape of a ``merge: mul`` block: its branch shapes broadcast together."""

from __future__ import annotations

from archbuilder.ir.graph import Shape

__all__ = ["broadcast"]


def broadcast(shapes: list[Shape]) -> Shape | None:
    """The shapes' product shape, or None when they do not broadcast: equal ranks and
    channels, and each spatial size equal to the largest or 1 (a C×1×1 gate over C×H×W)."""
    if len({len(shape) for shape in shapes}) != 1:
        return None
    merged = tuple(max(sizes) for sizes in zip(*shapes))
    for shape in shapes:
        if shape[0] != merged[0] or any(size not in (1, largest) for size, largest in zip(shape, merged)):
            return None
    return merged
