"""Page-level layout of a static diagram: wrapping a long chain into columns, and the legend.

Graphviz lays a network out as one tall column. ``plan_columns`` splits the top-level
entries into a few columns of about equal height, estimated from the IR alone (ranks and
branch widths), so equal input still gives equal DOT whatever Graphviz version draws it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence as Seq

import graphviz

from archbuilder.ir.graph import IR, Item, Parallel
from archbuilder.render.compare import STATUS_COLOURS
from archbuilder.render.style import FAMILIES, family_of

__all__ = ["LAYOUTS", "Columns", "legend", "plan_columns"]

LAYOUTS = ("auto", "tall", "compact")
RANK_INCHES = 0.78  # a node and the space under it
MAX_RATIO = 2.6  # auto wraps when the tall picture would be thinner than this (height/width)
COMPACT_RATIO = 0.75  # compact aims at a landscape page


def _height(ir: IR, item: Item, layers: bool) -> int:
    """Ranks an item takes: one per op (three for a conv with its norm and activation at layers
    detail); a block's title, its longest branch and its merge."""
    if isinstance(item, Parallel):
        longest = max((sum(_height(ir, x, layers) for x in b.items) for _, b in item.branches), default=0)
        return longest + 2
    op = ir.op(item)
    if layers and op.kind in ("conv", "separable"):
        return 1 + (op.attrs["norm"] != "none") + (op.attrs["activation"] != "none")
    return 1


def _width(item: Item) -> float:
    """Inches an item is wide: about 2 per op side by side."""
    if isinstance(item, Parallel):
        return sum(max((_width(x) for x in b.items), default=0.3) + 0.2 for _, b in item.branches)
    return 2.0


def plan_columns(ir: IR, units: Seq[Seq[Item]], *, detail: str, layout: str) -> list[int]:
    """The column (0, 1, …) of each unit (a run of top-level items kept together)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    layers = detail == "layers"
    heights = [sum(_height(ir, item, layers) if detail != "blocks" else 1 for item in unit) for unit in units]
    widths = [max(3.0 if detail == "blocks" else _width(item) for item in unit) for unit in units]
    aux = 3.0 if ir.aux_heads else 0.0
    total, width = sum(heights) * RANK_INCHES, max(widths, default=1.0)
    # the legend's one row is about an inch per colour, and sets the width of narrow diagrams
    key = 0.95 * len({family_of(op.kind).name for op in ir.ops()})
    if layout == "tall" or (layout == "auto" and total / max(width + aux, key) <= MAX_RATIO):
        return [0] * len(units)
    ratio = COMPACT_RATIO if layout == "compact" else MAX_RATIO * 0.6
    count = 1
    while count < len(units) and total / count / (count * width + aux) > ratio:
        count += 1
    return _split(heights, count)


def _split(heights: list[int], count: int) -> list[int]:
    """Contiguous runs of about equal height."""
    target = math.ceil(sum(heights) / count)
    columns, column, filled = [], 0, 0
    for index, height in enumerate(heights):
        left = len(heights) - index
        if filled and column < count - 1 and (filled + height / 2 > target or left < count - column):
            column, filled = column + 1, 0
        columns.append(column)
        filled += height
    return columns


class Columns:
    """Which column each top-level entry is drawn in, and the DOT that keeps columns apart."""

    def __init__(self, column: dict[str, int]):
        self.column = column  # top-level name -> its column
        self.heads: dict[int, str] = {}  # column -> the node at its top

    @classmethod
    def plan(cls, ir: IR, detail: str, layout: str) -> Columns:
        items = {(item if isinstance(item, str) else item.id): item for item in ir.body.items}
        units = _units(ir)
        columns = plan_columns(
            ir, [[items.get(n, n) for n in unit] for unit in units], detail=detail, layout=layout
        )
        return cls({name: column for unit, column in zip(units, columns) for name in unit})

    def wraps(self, source_item: str, target_item: str) -> bool:
        """Whether an edge runs from one column's bottom to the next one's top."""
        return target_item in self.column and self.column.get(source_item, 0) != self.column[target_item]

    def top_of(self, name: str, node_id: str) -> None:
        """Note ``node_id`` as the first node of ``name``'s column if it starts one."""
        column = self.column.get(name, 0)
        if column and column not in self.heads:
            self.heads[column] = node_id

    def align(self, graph: graphviz.Digraph) -> None:
        """Every column starts at the top, in order left to right."""
        if not self.heads:
            return
        heads = {0: "input", **self.heads}
        # Invisible points in one row, each above its column's first node: flat edges between
        # records are not allowed, so the points keep the order.
        with graph.subgraph() as row:
            row.attr(rank="same")
            for column in sorted(heads):
                row.node(f"column_{column}", "", shape="point", style="invis", width="0")
                if column:
                    row.edge(f"column_{column - 1}", f"column_{column}", style="invis")
        for column, node_id in heads.items():
            graph.edge(f"column_{column}", node_id, style="invis")


def _units(ir: IR) -> list[list[str]]:
    """Top-level names kept in one column together: a stem or head section, or one entry."""
    sections = {entry.name: entry.section for entry in ir.top_level}
    units: list[list[str]] = []
    for entry in ir.top_level:
        if entry.section == "aux":
            continue
        if units and entry.section in ("stem", "head") and sections[units[-1][0]] == entry.section:
            units[-1].append(entry.name)
        else:
            units.append([entry.name])
    return units


def legend(
    graph: graphviz.Digraph,
    families: list[str],
    rankdir: str,
    statuses: Seq[str] = (),
    removed: Seq[str] = (),
    per_row: int = 12,
) -> None:
    """A key of the colours used (and of compare marks): swatches in one row (a column for LR).

    One rank only: a key spread over several ranks is stretched to the heights of whatever
    else shares them, leaving empty rows in its box.
    """
    by_name = {family.name: family for family in FAMILIES.values()}
    keys = [(name, by_name[name].fill, by_name[name].line, "rounded,filled") for name in families]
    keys += [(status, "#ffffff", STATUS_COLOURS[status], "rounded,bold") for status in statuses]
    if removed:
        keys.append((f"removed: {', '.join(removed)}", "#ffffff", "#cf222e", "rounded,dashed"))
    with graph.subgraph(name="cluster_legend") as box:
        box.attr(label="", style="rounded", color="#cccccc", margin="4")
        box.attr("node", shape="box", fontsize="9", height="0.22", width="0", margin="0.10,0.02")
        box.attr("edge", style="invis", minlen="1")
        for start in range(0, len(keys), per_row):
            with box.subgraph() as row:
                row.attr(rank="same")
                for index in range(start, min(start + per_row, len(keys))):
                    name, fill, line, style = keys[index]
                    row.node(f"legend_{index}", name, fillcolor=fill, color=line, style=style)
                    if index > start:
                        pair = (f"legend_{index - 1}", f"legend_{index}")
                        row.edge(*(pair if rankdir == "TB" else reversed(pair)))
            if start:
                box.edge(f"legend_{start - per_row}", f"legend_{start}")
