"""Fill a space's template with one pick per decision: the data and Source of a plain spec.

Only the containers that hold a decision are rebuilt; everything else is shared with the
template, so a candidate costs the size of its decisions, not of the space. Locations
follow the picks: a key inside a chosen option points at the option's line.
"""

from __future__ import annotations

from typing import Any

from archbuilder.core.errors import KeyPath
from archbuilder.space.parse import DynDict, DynList, Parsed, Same, Slot
from archbuilder.spec.source import Location, Source

__all__ = ["Picks", "fill"]

Picks = dict[str, Any]  # decision name → option index (a choice) or value (a range)


def fill(parsed: Parsed, picks: Picks) -> tuple[dict[str, Any], Source]:
    """The spec data of the candidate ``picks`` describes, and where each of its keys is written.

    ``picks`` holds every decision the picks make active. A decision in a list that comes
    out ``null`` drops the entry.
    """
    filler = _Filler(parsed, picks)
    data = filler.fill(parsed.template, (), True)
    positions = filler.renumbered() if filler.drops else filler.positions
    return data, Source(parsed.file, positions)


class _Filler:
    def __init__(self, parsed: Parsed, picks: Picks):
        self.parsed = parsed
        self.picks = picks
        self.positions: dict[KeyPath, Location] = dict(parsed.static)  # keyed by the template's paths
        self.drops: dict[KeyPath, dict[int, int | None]] = {}  # list path → old index → new

    def fill(self, node: Any, path: KeyPath, record: bool) -> Any:
        if isinstance(node, Slot):
            decision = node.decision
            pick = self.picks[decision.name]
            if decision.kind != "choice":
                return pick
            if record:
                for rest, location in node.positions[pick].items():
                    self.positions[(*path, *rest)] = location
            return self.fill(node.options[pick], path, record)
        if isinstance(node, Same):  # the tied decision's value; errors point at the `same`
            return self.fill(self.parsed.slots[node.target], path, False)
        if isinstance(node, DynDict):
            return {key: self.fill(item, (*path, key), record) for key, item in node.items()}
        if isinstance(node, DynList):
            return self.fill_list(node, path, record)
        return node

    def fill_list(self, node: DynList, path: KeyPath, record: bool) -> list[Any]:
        items: list[Any] = []
        moved: dict[int, int | None] = {}
        for index, item in enumerate(node):
            value = self.fill(item, (*path, index), record)
            if value is None and isinstance(item, (Slot, Same)):
                moved[index] = None
                continue
            moved[index] = len(items)
            items.append(value)
        if len(items) < len(node):
            self.drops[path] = moved
        return items

    def renumbered(self) -> dict[KeyPath, Location]:
        """The locations with list indices moved past the dropped entries."""
        result: dict[KeyPath, Location] = {}
        for path, location in self.positions.items():
            moved: list[Any] = []
            for depth, part in enumerate(path):
                table = self.drops.get(path[:depth])
                if table is not None and isinstance(part, int):
                    part = table.get(part, part)
                    if part is None:
                        break
                moved.append(part)
            else:
                result[tuple(moved)] = location
        return result
