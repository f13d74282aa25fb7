"""A spec's ``feature_maps``: the stem/blocks entries it names as its stages, checked."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from archbuilder.core.errors import KeyPath, did_you_mean

__all__ = ["declared_stages"]


def declared_stages(
    names: Sequence[str],
    tappable: Sequence[str],
    groups: Mapping[str, str],
    rank: Callable[[str], int | None],
    fail: Callable[[KeyPath, str], None],
) -> tuple[str, ...]:
    """``names`` resolved (a repeated layer's name to its last copy); each problem goes to
    ``fail``. ``rank(name)`` is the entry's output rank (3 for a feature map), None when the
    entry could not be lowered."""
    resolved: list[str] = []
    for index, name in enumerate(names):
        path: KeyPath = ("feature_maps", index)
        if name not in tappable:
            fail(path, f"'{name}' names no stem layer or block{did_you_mean(name, tappable)}")
            continue
        entry = groups.get(name, name)
        if entry in resolved:
            fail(path, f"'{name}' is listed twice")
        elif rank(entry) not in (None, 3):
            fail(path, f"'{name}' outputs flat features, not a feature map")
        resolved.append(entry)
    return tuple(resolved)
