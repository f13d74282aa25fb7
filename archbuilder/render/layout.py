"""The layout plan of a diagram: roll-ups, columns and routes, decided from the IR alone.

The static picture (:mod:`.graph`) draws what the plan says; the interactive page
(:mod:`.page`) rolls entries up through :func:`roll_ups` too. Equal input gives an equal
plan, so equal DOT whatever Graphviz version draws it.

- **Roll-ups**: consecutive top-level blocks of one structure (the copies a ``repeat`` or a
  template makes, or blocks that happen to be equal) are drawn once, ``×N``.
- **Columns**: a long chain is cut into columns of about equal height, at the boundaries
  where the feature map's size changes when that costs little height.
- **Routes**: an edge from one column into another is not drawn across the picture (where it
  would pass through the blocks between); it leaves its column at a lettered connector and
  arrives at the same letter at the top of the next.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Container, Hashable, Mapping
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field

from archbuilder.ir.graph import IR, Item, Parallel, TopLevel
from archbuilder.render.style import describe, family_of
from archbuilder.spec.compose import frozen

__all__ = ["LAYOUTS", "Plan", "Route", "Run", "plan", "roll_ups", "structure_key"]

LAYOUTS = ("auto", "tall", "compact")
RANK_INCHES = 1.0  # a node and the space under it, as Graphviz draws them
LAYERS_RANK = 1.2  # … taller at layers detail, where more edges carry a label
CHAR_INCHES = 0.075  # a character of 10 pt text
KEY_INCHES = 1.1  # a colour of the legend
MAX_RATIO = 2.6  # auto wraps when the tall picture would be thinner than this (height/width)
LONGEST_INCHES = 30.0  # … or taller than this: 2400 px at 80 dpi, where 9 pt text is 10 px
COMPACT_RATIO = 0.75  # compact aims at a landscape page
MAX_COLUMNS = 6
AUX_INCHES = 2.6  # an aux head beside its tap
BLOCK_NODE_INCHES = 3.0  # a node at blocks detail
COLUMN_GAP_INCHES = 0.4
OFF_STAGE_COST = 0.25  # a column cut inside a stage costs this share of the tallest column
# Entries' attributes that follow the input (a dense layer's growing input) rather than
# what the block is: blocks differing only here still roll up.
_INPUT_ATTRS = frozenset({"in_channels", "in_features", "channels"})


@dataclass(frozen=True)
class Run:
    """Top-level entries drawn as one: a single entry, or ``×N`` copies of one structure."""

    names: tuple[str, ...]
    identical: bool = True  # every copy has the first one's shapes too

    @property
    def first(self) -> str:
        return self.names[0]

    @property
    def last(self) -> str:
        return self.names[-1]

    @property
    def count(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class Route:
    """A tensor going from one column into another, drawn as a pair of connectors lettered
    ``letter``: one below the op it leaves, one at the top of the column it goes into."""

    letter: str
    source: str  # op id (as drawn) the tensor leaves
    source_column: int
    target_column: int


@dataclass(frozen=True)
class Plan:
    """What a static diagram draws, and where."""

    runs: tuple[Run, ...]  # the main chain's units in order (aux heads apart)
    column: Mapping[str, int]  # top-level name -> its column (an aux head: its tap's)
    routes: tuple[Route, ...] = ()
    stand_in: Mapping[str, str] = field(default_factory=dict)  # op id of a rolled-up copy -> op drawn

    @property
    def columns(self) -> int:
        return max(self.column.values(), default=0) + 1

    def drawn(self, op_id: str) -> str:
        """The op id drawn for ``op_id``: itself, or its counterpart in a roll-up's first copy."""
        return self.stand_in.get(op_id, op_id)

    def run_of(self, name: str) -> Run | None:
        """The rolled-up run (two or more copies) whose first entry is ``name``."""
        return next((run for run in self.runs if run.first == name and run.count > 1), None)

    def hidden(self, name: str) -> bool:
        """Whether ``name`` is a copy drawn as its run's first."""
        return any(name in run.names[1:] for run in self.runs)

    def route(self, source: str, target_column: int) -> Route | None:
        """The route carrying ``source``'s output (op id as drawn) into ``target_column``."""
        return next((r for r in self.routes if (r.source, r.target_column) == (source, target_column)), None)


# -- roll-ups --------------------------------------------------------------------


def roll_ups(ir: IR, key: Callable[[TopLevel], Hashable | None]) -> list[Run]:
    """The main chain's top-level entries in order, consecutive ones with the same (not None)
    ``key`` as one run. An entry an aux head taps ends its run: the tap stays drawn."""
    taps = {head.tap for head in ir.aux_heads}
    runs: list[list[str]] = []
    keys: list[Hashable | None] = []
    for entry in ir.top_level:
        if entry.section == "aux":
            continue
        value = key(entry)
        if value is not None and keys and keys[-1] == value and runs[-1][-1] not in taps:
            runs[-1].append(entry.name)
        else:
            runs.append([entry.name])
            keys.append(value)
    return [Run(tuple(names), _identical(ir, names)) for names in runs]


def structure_key(ir: IR, marks: Mapping[str, str] | None = None) -> Callable[[TopLevel], Hashable | None]:
    """A key for :func:`roll_ups` equal for blocks of one structure: the same ops (ids inside
    the block, kinds, attributes other than the input's width) wired alike. Only blocks roll
    up; ``marks`` (compare statuses) keep differently marked blocks apart."""
    blocks = {item.id for item in ir.body.items if isinstance(item, Parallel)}

    def key(entry: TopLevel) -> Hashable | None:
        if entry.name not in blocks:
            return None
        inside = set(entry.ops)
        ops = tuple(
            (
                _relative(op_id, entry.name),
                ir.op(op_id).kind,
                _attrs(ir.op(op_id).attrs, entry.name, ir.graph),
            )
            for op_id in entry.ops
        )
        wiring = tuple(
            (_relative(source, entry.name), _relative(target, entry.name))
            for source, target in ir.graph.edges
            if source in inside and target in inside
        )
        return ops, wiring, (marks or {}).get(entry.name)

    return key


def _relative(op_id: str, name: str) -> str:
    return op_id[len(name) :] if op_id.startswith(name) else op_id


def _attrs(attrs: Mapping, name: str, ops: Container[str]) -> Hashable:
    """Attributes compared across copies: ids of ops (a merge's inputs) made relative to the
    block, any outside it one and the same (the block's input)."""
    return frozen({key: _plain(value, name, ops) for key, value in attrs.items() if key not in _INPUT_ATTRS})


def _plain(value, name: str, ops: Container[str]):
    if isinstance(value, (list, tuple)):
        return [_plain(item, name, ops) for item in value]
    if isinstance(value, str) and value in ops:
        return _relative(value, name) if value.startswith(name) else "(input)"
    return value


def _identical(ir: IR, names: Seq[str]) -> bool:
    entries = {entry.name: entry for entry in ir.top_level}
    first = [(ir.op(op).shape, ir.op(op).params) for op in entries[names[0]].ops]
    return all(
        [(ir.op(op).shape, ir.op(op).params) for op in entries[name].ops] == first for name in names[1:]
    )


def _stand_ins(ir: IR, runs: Seq[Run]) -> dict[str, str]:
    entries = {entry.name: entry for entry in ir.top_level}
    stand_in: dict[str, str] = {}
    for run in runs:
        for name in run.names[1:]:
            for op_id in entries[name].ops:
                stand_in[op_id] = run.first + _relative(op_id, name)
    return stand_in


# -- columns ---------------------------------------------------------------------


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


def _width(ir: IR, item: Item, layers: bool) -> float:
    """Inches an item is wide: its text's, branches side by side."""
    if isinstance(item, Parallel):
        return sum(max((_width(ir, x, layers) for x in b.items), default=0.3) + 0.2 for _, b in item.branches)
    op = ir.op(item)
    return max(len(op.name), len(describe(op, with_norm=not layers))) * CHAR_INCHES + 0.6


def _stage_starts(ir: IR, runs: Seq[Run]) -> list[bool]:
    """Whether a new stage (feature-map size) starts at each run. A lone pooling layer that
    shrinks the map closes the stage before it rather than opening the next."""
    spatial = [ir.op(_entry(ir, run.last).output).shape[1:] for run in runs]
    pooling = [ir.op(_entry(ir, run.first).output).kind in ("maxpool", "avgpool") for run in runs]
    starts = [False] * len(runs)
    for index in range(1, len(runs)):
        changed = spatial[index] != spatial[index - 1]
        closed_by_pool = pooling[index - 1] and index > 1 and spatial[index - 1] != spatial[index - 2]
        starts[index] = (changed and not pooling[index]) or closed_by_pool
    return starts


def _entry(ir: IR, name: str) -> TopLevel:
    return next(entry for entry in ir.top_level if entry.name == name)


def plan(
    ir: IR,
    *,
    detail: str = "branches",
    layout: str = "auto",
    unroll: bool = False,
    marks: Mapping[str, str] | None = None,
) -> Plan:
    """The plan of ``ir``'s diagram at ``detail`` (``blocks``, ``branches`` or ``layers``).

    ``layout``: ``tall`` (one column), ``compact`` (columns for a landscape page) or ``auto``
    (columns when one would be thinner than about 1:2.6). ``unroll`` draws every copy of a
    repeated block; ``marks`` are compare statuses by top-level name.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    runs = roll_ups(ir, (lambda entry: None) if unroll else structure_key(ir, marks))
    columns = _columns(ir, runs, detail, layout)
    column = {name: columns[index] for index, run in enumerate(runs) for name in run.names}
    for head in ir.aux_heads:
        column[head.name] = column.get(head.tap, 0)
    stand_in = _stand_ins(ir, runs)
    return Plan(tuple(runs), column, _routes(ir, column, stand_in), stand_in)


def _columns(ir: IR, runs: Seq[Run], detail: str, layout: str) -> list[int]:
    """The column of each run: for ``auto``, one column when it is short and wide enough,
    else the number of columns whose picture has the shortest longer side (a cut inside a
    stage counted as :data:`OFF_STAGE_COST` more); ``compact`` weighs the height more."""
    if layout == "tall" or len(runs) < 2:
        return [0] * len(runs)
    items = {(item if isinstance(item, str) else item.id): item for item in ir.body.items}
    units = [items.get(run.first, run.first) for run in runs]
    layers = detail == "layers"
    heights = [1 if detail == "blocks" else _height(ir, item, layers) for item in units]
    heights[0] += 1  # the input node
    heights[-1] += 1  # the output node
    widths = [BLOCK_NODE_INCHES if detail == "blocks" else _width(ir, item, layers) for item in units]
    hanging = [0] * len(runs)  # ranks an aux head hangs below the run it taps
    for head in ir.aux_heads:
        index = next(i for i, run in enumerate(runs) if head.tap in run.names)
        size = 1 if detail == "blocks" else 1 + sum(_height(ir, item, layers) for item in head.layers.items)
        hanging[index] = max(hanging[index], size)
    spans = _spans(heights, hanging)
    stage_starts = _stage_starts(ir, runs)
    legend = KEY_INCHES * len({family_of(op.kind).name for op in ir.ops()})
    best: tuple[float, list[int]] | None = None
    for count in range(1, min(MAX_COLUMNS, len(runs)) + 1):
        cuts, off_stage = _cut(spans, stage_starts, count)
        bounds = list(itertools.pairwise([0, *cuts, len(runs)]))
        height = max(spans[a][b] for a, b in bounds) * RANK_INCHES * (LAYERS_RANK if layers else 1.0)
        width = sum(
            max(widths[a:b]) + (AUX_INCHES if any(hanging[a:b]) else 0.0) + COLUMN_GAP_INCHES
            for a, b in bounds
        )
        width = max(width, legend)
        columns = [column for column, (a, b) in enumerate(bounds) for _ in range(a, b)]
        if count == 1 and layout == "auto" and height / width <= MAX_RATIO and height <= LONGEST_INCHES:
            return columns
        tall_side = height if layout == "auto" else height / COMPACT_RATIO
        score = max(tall_side, width) * (1 + OFF_STAGE_COST * off_stage)
        if best is None or score < best[0]:
            best = (score, columns)
    assert best is not None
    return best[1]


def _spans(heights: Seq[int], hanging: Seq[int]) -> list[list[int]]:
    """``spans[a][b]``: the ranks a column holding runs a … b-1 takes, aux heads included."""
    n = len(heights)
    spans = [[0] * (n + 1) for _ in range(n + 1)]
    for a in range(n):
        filled, lowest = 0, 0
        for b in range(a + 1, n + 1):
            filled += heights[b - 1]
            lowest = max(lowest, filled + hanging[b - 1])
            spans[a][b] = lowest
    return spans


def _cut(spans: Seq[Seq[int]], stage_starts: Seq[bool], count: int) -> tuple[list[int], int]:
    """Where ``count`` contiguous columns start (after the first) so that the tallest is as
    short as can be, a cut inside a stage counted as :data:`OFF_STAGE_COST` more height; and
    how many of the cuts are inside a stage."""
    n = len(stage_starts)
    best: tuple[float, list[int]] | None = None
    for off_stage in range(count):
        cuts = _cuts_with_at_most(spans, stage_starts, count, off_stage)
        if cuts is None:
            continue
        tallest = max(spans[a][b] for a, b in itertools.pairwise([0, *cuts, n]))
        used = sum(not stage_starts[cut] for cut in cuts)
        score = tallest * (1 + OFF_STAGE_COST * used)
        if best is None or score < best[0]:
            best = (score, cuts)
    assert best is not None  # with count - 1 cuts allowed inside stages, any cut is possible
    return best[1], sum(not stage_starts[cut] for cut in best[1])


def _cuts_with_at_most(
    spans: Seq[Seq[int]], stage_starts: Seq[bool], count: int, off_stage: int
) -> list[int] | None:
    """Indices where ``count`` columns start (after the first), at most ``off_stage`` of them
    inside a stage, making the tallest column shortest; None when none can be made."""
    n = len(stage_starts)
    # best[c][i][k]: (tallest, cuts) for the first i runs in c columns, k off-stage cuts used
    inf = (math.inf, [])
    best = [[[inf] * (off_stage + 1) for _ in range(n + 1)] for _ in range(count + 1)]
    best[0][0][0] = (0, [])
    for c in range(1, count + 1):
        for i in range(c, n + 1):
            for k in range(off_stage + 1):
                for j in range(c - 1, i):  # the column holds runs j .. i-1
                    cost = 0 if j == 0 else int(not stage_starts[j])
                    if (j == 0) != (c == 1) or k - cost < 0:
                        continue
                    previous, cuts = best[c - 1][j][k - cost]
                    tallest = max(previous, spans[j][i])
                    if tallest < best[c][i][k][0]:
                        best[c][i][k] = (tallest, [*cuts, j] if j else cuts)
    found = min(best[count][n], key=lambda pair: pair[0])
    return None if math.isinf(found[0]) else found[1]


# -- routes ----------------------------------------------------------------------


def _routes(ir: IR, column: Mapping[str, int], stand_in: Mapping[str, str]) -> tuple[Route, ...]:
    """One route per tensor and column it is read in other than its own, lettered in order."""
    routes: list[Route] = []
    aux = {head.name for head in ir.aux_heads}
    for source, target in ir.graph.edges:
        source_op, target_op = ir.op(source), ir.op(target)
        if target_op.item in aux or source_op.item not in column or target_op.item not in column:
            continue
        if column[source_op.item] == column[target_op.item]:
            continue
        drawn, into = stand_in.get(source, source), column[target_op.item]
        if any((r.source, r.target_column) == (drawn, into) for r in routes):
            continue
        routes.append(Route(_letter(len(routes)), drawn, column[source_op.item], into))
    return tuple(routes)


def _letter(index: int) -> str:
    """A, B, …, Z, AA, AB, …"""
    text = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        text = chr(65 + rest) + text
    return text
