"""Draw the IR as a ``graphviz.Digraph``: no forward pass, no torch.

Three levels of detail: ``blocks`` (one node per top-level entry), ``branches`` (every op,
each multi-branch block a cluster with its branches side by side under a title node that
incoming edges end at) and ``layers`` (as ``branches``, with each conv's batch norm and
activation as nodes of their own). What is drawn where (roll-ups, columns, the connectors
between columns) is the :mod:`.layout` plan's. Node ids are the IR's op ids and everything
is emitted in spec order, so equal input gives equal DOT.
"""

from __future__ import annotations

import abc
import contextlib
import itertools
import re
from collections.abc import Mapping
from typing import Any

import graphviz

from archbuilder.analysis.overlay import Overlay, format_value
from archbuilder.core.escaping import dot_value
from archbuilder.ir.graph import IR, AuxHeadIR, Item, Op, Parallel, Sequence, TopLevel
from archbuilder.render.layout import LAYOUTS, Plan, Run, plan
from archbuilder.render.legend import colour_bar, legend
from archbuilder.render.output import render_source
from archbuilder.render.style import (
    STATUS_COLOURS,
    THEMES,
    Family,
    Theme,
    describe,
    describe_block,
    record_label,
    shape_text,
    text_label,
)

_COPY = re.compile(r"_?\d+$")  # the number a repeat appends to its copies
_BARE = re.compile(r"[\d_]+")  # timm's '0', '1', … name nothing: the op says more

__all__ = ["DETAILS", "RANKDIRS", "THEMES", "Diagram", "to_digraph"]

DETAILS = ("blocks", "branches", "layers")
RANKDIRS = ("TB", "LR")


class Diagram(graphviz.Digraph):
    """A ``graphviz.Digraph`` that shows inline in Jupyter with or without system Graphviz.

    Every ID and attribute value is written by :func:`~archbuilder.core.escaping.dot_value`, not
    the graphviz package's quoting, which passes ``<…>`` on as an HTML string (markup in the
    SVG, or DOT statements of the text's own) and splits an edge's node names at ``:``.
    """

    _quote = _quote_edge = staticmethod(dot_value)

    @staticmethod
    def _a_list(label: str | None = None, kwargs: Mapping | None = None, attributes: Any = None) -> str:
        items = [] if label is None else [("label", label)]
        for given in (kwargs, attributes):
            if given:
                pairs = given.items() if hasattr(given, "items") else given
                # sorted as the graphviz package sorts, so the DOT stays the same text
                items += sorted(pairs) if type(given) is dict else list(pairs)
        return " ".join(f"{dot_value(key)}={dot_value(value)}" for key, value in items if value is not None)

    @classmethod
    def _attr_list(
        cls, label: str | None = None, kwargs: Mapping | None = None, attributes: Any = None
    ) -> str:
        content = cls._a_list(label, kwargs=kwargs, attributes=attributes)
        return f" [{content}]" if content else ""

    def _repr_mimebundle_(self, include=None, exclude=None, **_) -> dict[str, str]:
        return {"image/svg+xml": render_source(self.source, "svg").decode()}


def to_digraph(
    ir: IR,
    *,
    detail: str = "branches",
    shapes: bool = True,
    rankdir: str = "TB",
    marks: dict | None = None,
    layout: str = "auto",
    unroll: bool = False,
    theme: str = "default",
    overlay: Overlay | None = None,
) -> graphviz.Digraph:
    """The diagram of ``ir`` at the given level of detail.

    ``marks`` (from :func:`~archbuilder.render.compare.compare_marks`) outlines what changed;
    ``layout`` is ``tall``, ``compact`` or ``auto`` (see :mod:`.layout`); ``unroll`` draws
    every copy of a repeated block rather than one ``×N``; ``theme`` is ``default`` or
    ``paper`` (greys and a serif, for a printed page). ``overlay`` fills every node and block
    by its value on one scale (each labelled with it and its share), keyed by a colour bar.
    """
    if detail not in DETAILS:
        raise ValueError(f"detail must be one of {', '.join(DETAILS)}, not {detail!r}")
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, not {rankdir!r}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    if theme not in THEMES:
        raise ValueError(f"theme must be one of {', '.join(THEMES)}, not {theme!r}")
    look, marks = THEMES[theme], marks or {}
    graph = Diagram(ir.name)
    graph.attr(
        label=_title(ir, marks),
        labelloc="t",
        fontname=look.font,
        fontsize="16",
        rankdir=rankdir,
        newrank="true",
        nodesep="0.18",
        ranksep="0.32",
        compound="true",
        **({"bgcolor": look.background} if look.background else {}),
    )
    graph.attr("node", shape="Mrecord", style="filled", fontname=look.font, fontsize="10", margin="0.10,0.03")
    graph.attr(
        "edge", fontname=look.font, fontsize="10", fontcolor=look.edge_label, color=look.edge, arrowsize="0.6"
    )
    statuses = marks.get("status", {})
    layout_plan = plan(
        ir, detail=detail, layout=layout if rankdir == "TB" else "tall", unroll=unroll, marks=statuses
    )
    if detail == "blocks":
        drawer: _Drawer = _BlockDrawer(ir, graph, rankdir, look, layout_plan, marks)
    else:
        drawer = _OpDrawer(
            ir, graph, rankdir, look, layout_plan, marks, layers=detail == "layers", shapes=shapes
        )
    drawer.overlay = overlay
    drawer.draw()
    drawer.align_columns()
    used = set(statuses.values()) | {status for status, _ in marks.get("ops", {}).values()}
    shown = [status for status in STATUS_COLOURS if status in used]
    if overlay is not None:
        colour_bar(graph, overlay, rankdir)
    if overlay is None or shown or marks.get("removed"):  # an overlay's colours replace the families'
        families = drawer.families if overlay is None else []
        legend(graph, look, families, rankdir, shown, marks.get("removed", ()))
    return graph


def _title(ir: IR, marks: dict) -> str:
    params, macs = ir.total()
    lines = [ir.name]
    if marks.get("compare"):
        lines.append(f"compared with {marks['compare']}: what changed is outlined")
    lines.append(f"input {shape_text(ir.input_shape)} · {params:,} params · {_count(macs)} MACs")
    if ir.aux_heads:
        inference_params, inference_macs = ir.total(aux=False)
        lines.append(f"without aux heads: {inference_params:,} params · {_count(inference_macs)} MACs")
    return text_label(*lines)


def _count(value: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= scale:
            return f"{value / scale:.2f} {unit}"
    return str(value)


class _Drawer(abc.ABC):
    """What both levels of detail share: colours, the columns and their connectors, aux heads."""

    def __init__(
        self, ir: IR, graph: graphviz.Digraph, rankdir: str, theme: Theme, layout: Plan, marks: dict
    ):
        self.ir = ir
        self.graph = graph
        self.rankdir = rankdir
        self.theme = theme
        self.plan = layout
        self.marks = marks
        self.families: list[str] = []  # in first-use order, for the legend
        self.sections = {entry.name: entry.section for entry in ir.top_level}
        self.entries = {entry.name: entry for entry in ir.top_level}
        self.heads: dict[int, str] = {}  # column -> the node at its top
        self.overlay: Overlay | None = None  # values to fill by, in place of the families' colours

    # -- looks ------------------------------------------------------------------
    def status_attrs(self, name: str) -> dict[str, str]:
        """Outline of a marked (compared) entry."""
        status = self.marks.get("status", {}).get(name)
        if not status:
            return {}
        return {"color": STATUS_COLOURS[status], "penwidth": "3"}

    def uses(self, kind: str) -> Family:
        """The family drawing ``kind``, noted for the legend."""
        family = self.theme.family(kind)
        if family.name not in self.families:
            self.families.append(family.name)
        return family

    def node(
        self,
        where: graphviz.Digraph,
        node_id: str,
        kind: str,
        lines: list[str],
        values: tuple[str, ...] = (),
        **attrs: str,
    ) -> None:
        """A node coloured by its kind, or with an overlay by the value of ``values`` (default:
        its own op's); ``lines`` become record compartments (plain text for other shapes)."""
        family = self.uses(kind)
        colours = {"fillcolor": family.fill, "color": family.line}
        if self.overlay is not None:
            colours, lines = self.valued(values or (node_id.split("/")[0],), lines, "/" not in node_id)
        label = record_label(lines, self.rankdir) if "shape" not in attrs else text_label(*lines)
        where.node(node_id, label, **{**colours, **attrs})

    def valued(self, ids: tuple[str, ...], lines: list[str], labelled: bool = True) -> tuple[dict, list[str]]:
        """With an overlay: the fill and text colours of the value of ``ids``, and ``lines``
        with that value and its share added."""
        overlay = self.overlay
        assert overlay is not None
        value = overlay.value(ids)
        colours = {"fillcolor": overlay.fill(value), "color": "#333333", "fontcolor": overlay.ink(value)}
        if value is not None and labelled:
            share = overlay.share(value)
            lines = [
                *lines,
                format_value(value, overlay.metric) + (f" · {share:.1%}" if share is not None else ""),
            ]
        return colours, lines

    def draw(self) -> None:
        """Column by column, left to right: the input, the connectors arriving, the column's
        entries, the aux heads hanging there, the connectors leaving, the output; then the edges."""
        last = self.plan.columns - 1
        for column in range(self.plan.columns):
            with self.column(column) as where:
                if column == 0:
                    self.input_node(where)
                self.connectors(where, column, "in")
                self.entries_in(where, column)
                for head in self.ir.aux_heads:
                    if self.plan.column[head.name] == column:
                        self.aux_head(where, head)
                self.connectors(where, column, "out")
                if column == last:
                    self.output_node(where)
        self.edges()

    @abc.abstractmethod
    def entries_in(self, where: graphviz.Digraph, column: int) -> None:
        """The column's entries."""

    @abc.abstractmethod
    def aux_head(self, where: graphviz.Digraph, head: AuxHeadIR) -> None:
        """One aux head, beside its tap."""

    @abc.abstractmethod
    def edges(self) -> None:
        """The edges between what is drawn."""

    # -- columns ----------------------------------------------------------------
    def column(self, index: int):
        """Where column ``index`` is drawn: a box of its own (unseen) when there are several."""
        if self.plan.columns == 1:
            return contextlib.nullcontext(self.graph)
        return _column_box(self.graph, index)

    def top(self, column: int, node_id: str) -> None:
        self.heads.setdefault(column, node_id)

    def connectors(self, where: graphviz.Digraph, column: int, end: str) -> None:
        """The lettered ends of the routes leaving (``out``) or entering (``in``) ``column``."""
        seen: set[str] = set()
        for route in self.plan.routes:
            here = route.source_column if end == "out" else route.target_column
            if here != column or route.letter in seen:
                continue
            seen.add(route.letter)
            node_id = f"{route.letter}/{end}"
            where.node(
                node_id,
                route.letter,
                shape="circle",
                style="filled,bold",
                fillcolor="#ffffff",
                color=self.theme.edge,
                fontsize="11",
                width="0.32",
                fixedsize="true",
                group="main",
            )
            if end == "in":
                self.top(column, node_id)

    def align_columns(self) -> None:
        """Every column starts at the top, in order left to right."""
        if self.plan.columns == 1:
            return
        # Invisible points in one row, each above its column's first node: flat edges between
        # records are not allowed, so the points keep the order.
        with self.graph.subgraph() as row:
            row.attr(rank="same")
            for column in sorted(self.heads):
                row.node(f"column_{column}", "", shape="point", style="invis", width="0")
                if column:
                    row.edge(f"column_{column - 1}", f"column_{column}", style="invis")
        for column, node_id in sorted(self.heads.items()):
            self.graph.edge(f"column_{column}", node_id, style="invis")

    def beside(self, tap_node: str, head_node: str) -> None:
        """An aux head's first node in the rank of the node it taps, so it hangs to its right.
        Neither may be a record: Graphviz's ``dot`` loses a flat edge from or to one."""
        with self.graph.subgraph() as row:
            row.attr(rank="same")
            row.node(tap_node)
            row.node(head_node)

    def input_node(self, where: graphviz.Digraph) -> None:
        self.node(where, "input", "input", ["input", shape_text(self.ir.input_shape)], group="main")
        self.top(0, "input")

    def output_node(self, where: graphviz.Digraph) -> None:
        self.node(
            where, "output", "input", ["output", shape_text(self.ir.op(self.ir.output).shape)], group="main"
        )

    def run_lines(self, run: Run | None, name: str, what: str, facts: str) -> list[str]:
        """A title (``block17 ×20 · Inception-ResNet``), the names a roll-up stands for, its facts."""
        if run is None:
            redundant = what == name or what.split(" ")[0] == name
            return [what if redundant else f"{name} · {what}", facts]
        group = _group_name(run, self.entries)
        lines = [f"{group or run.first} ×{run.count} · {what}", f"{run.first} … {run.last}", facts]
        if not run.identical:
            lines.append(f"shapes inside: {run.first}'s")
        return lines

    def totals(self, names: tuple[str, ...]) -> tuple[int, int]:
        ops = [self.ir.op(op_id) for name in names for op_id in self.entries[name].ops]
        return sum(op.params for op in ops), sum(op.macs for op in ops)


@contextlib.contextmanager
def _column_box(graph: graphviz.Digraph, index: int):
    with graph.subgraph(name=f"cluster_column_{index}") as box:
        box.attr(label="", style="invis", margin="6")
        yield box


def _group_name(run: Run, entries: dict[str, TopLevel]) -> str | None:
    """The name a ``repeat`` gave its copies (``block17`` for block17_1 … block17_20) when
    the run holds all of them."""
    stem = _COPY.sub("", run.first)
    copy = re.compile(rf"{re.escape(stem)}_?\d+")
    if not stem or not all(copy.fullmatch(name) for name in run.names):
        return None
    return stem if sum(bool(copy.fullmatch(name)) for name in entries) == run.count else None


_BOX = {"shape": "box", "style": "rounded,filled"}  # not a record: aux heads sit beside these


class _BlockDrawer(_Drawer):
    """One node per top-level entry (or roll-up), labelled with its output shape, parameters and MACs."""

    def entries_in(self, where: graphviz.Digraph, column: int) -> None:
        for run in self.plan.runs:
            if self.plan.column[run.first] == column:
                self.entry_node(where, run)

    def entry_node(self, where: graphviz.Digraph, run: Run) -> None:
        entry = self.entries[run.first]
        if len(entry.ops) == 1:
            what = describe(self.ir.op(entry.output))
        else:
            item = next(i for i in self.ir.body.items if not isinstance(i, str) and i.id == entry.name)
            what = describe_block(self.ir, item)
        rolled = self.plan.run_of(run.first)
        lines = self.run_lines(rolled, entry.name, what, self.facts(run.names))
        self.node(
            where,
            entry.name,
            entry.kind,
            lines,
            run.names,
            group="main",
            **_BOX,
            **self.status_attrs(entry.name),
        )

    def edges(self) -> None:
        """input → each run → output, leaving a column at a connector."""
        body = self.plan.runs
        self.graph.edge("input", body[0].first, weight="10")
        for before, after in itertools.pairwise(body):
            tail = before.first
            source = self.plan.drawn(self.entries[before.last].output)
            route = self.plan.route(source, self.plan.column[after.first])
            if route is not None:
                self.graph.edge(tail, f"{route.letter}/out", weight="10")
                tail = f"{route.letter}/in"
            self.graph.edge(tail, after.first, weight="10")
        self.graph.edge(body[-1].first, "output", weight="10")

    def facts(self, names: tuple[str, ...]) -> str:
        params, macs = self.totals(names)
        text = shape_text(self.ir.op(self.entries[names[-1]].output).shape)
        return text + (f" · {params:,} params · {_count(macs)} MACs" if params or macs else "")

    def aux_head(self, where: graphviz.Digraph, head: AuxHeadIR) -> None:
        lines = [f"{head.name} · aux head · loss weight {head.loss_weight:g}", self.facts((head.name,))]
        self.node(
            where,
            head.name,
            "aux_head",
            lines,
            (head.name,),
            **{**_BOX, "style": "rounded,filled,dashed"},
            **self.status_attrs(head.name),
        )
        tap = self.plan.run_of(head.tap) or next(run for run in self.plan.runs if head.tap in run.names)
        self.beside(tap.first, head.name)
        self.graph.edge(tap.first, head.name, style="dashed", color=self.theme.families["aux"].line)


class _OpDrawer(_Drawer):
    """Every op; multi-branch blocks, stem, head and aux heads as boxes."""

    def __init__(self, *args, layers: bool, shapes: bool):
        super().__init__(*args)
        self.layers = layers
        self.shapes = shapes
        self.exits: dict[str, str] = {}  # op id -> node id its output leaves from (layers detail)
        self.skipped: dict[str, str] = {}  # a one-input concat -> the op it passes on
        # Boxes an edge enters through a title node (blocks, aux heads): id -> its ops, title node
        self.boxes: dict[str, tuple[set[str], str]] = {}

    def drawn(self, op_id: str) -> str:
        op_id = self.plan.drawn(op_id)
        return self.skipped.get(op_id, op_id)

    def entries_in(self, where: graphviz.Digraph, column: int) -> None:
        for section, items in self.groups(column):
            if section == "blocks":
                for item in items:
                    self.item(where, item, column)
                continue
            with where.subgraph(name=f"cluster_{section}_{column}") as box:
                box.attr(
                    label=section,
                    labeljust="l",  # beside the edges running down the middle, not under them
                    fontsize="11",
                    style="rounded,filled",
                    fillcolor=self.theme.section_fill,
                    color=self.theme.section_line,
                )
                for item in items:
                    self.item(box, item, column)

    def groups(self, column: int) -> list[tuple[str, list[Item]]]:
        """The column's items, in runs of one section (stem, blocks, head)."""
        groups: list[tuple[str, list[Item]]] = []
        for item in self.ir.body.items:
            name = item if isinstance(item, str) else item.id
            if self.plan.column.get(name) != column or self.plan.hidden(name):
                continue
            section = self.sections[name]
            if groups and groups[-1][0] == section:
                groups[-1][1].append(item)
            else:
                groups.append((section, [item]))
        return groups

    def aux_head(self, where: graphviz.Digraph, head: AuxHeadIR) -> None:
        with where.subgraph(name=f"cluster_aux_{head.name}") as box:
            aux = self.uses("aux_head")
            look = {"color": aux.line, "fillcolor": aux.fill, **self.status_attrs(head.name)}
            lines = [head.name, f"auxiliary head · loss weight {head.loss_weight:g}"]
            ink = {}
            if self.overlay is not None:
                colours, lines = self.valued((head.name,), lines)
                look, ink = {**look, "fillcolor": colours["fillcolor"]}, {"fontcolor": colours["fontcolor"]}
            box.attr(label="", style="rounded,dashed,filled", **look)
            self.title_node(box, head.name, lines, _sequence_ops(head.layers), **ink)
            self.sequence(box, head.layers)

    def sequence(self, where: graphviz.Digraph, sequence: Sequence) -> None:
        for item in sequence.items:
            self.item(where, item)

    def item(self, where: graphviz.Digraph, item: Item, column: int | None = None) -> None:
        if isinstance(item, Parallel):
            self.block(where, item)
            if column is not None:
                self.top(column, f"{item.id}/title")
        else:
            op = self.ir.op(item)
            self.op(where, op)
            if column is not None:
                self.top(column, op.id)

    def title_node(
        self, where: graphviz.Digraph, box: str, lines: list[str], ops: set[str], pad: int = 2, **attrs: str
    ) -> None:
        """A box's title as a node at its top: edges come into it rather than through the text."""
        node_id = f"{box}/title"
        label = text_label(*lines, pad=pad)
        where.node(
            node_id, label, shape="plaintext", style="", fontsize="11", margin="0.02", ordering="out", **attrs
        )
        self.boxes[box] = (ops, node_id)

    def block(self, where: graphviz.Digraph, block: Parallel) -> None:
        merged = self.ir.op(block.merge)
        run = self.plan.run_of(block.id) if block.id in self.entries else None
        names = run.names if run else (block.id,)
        if block.id in self.entries:
            params, macs = self.totals(names)
            out = self.ir.op(self.entries[names[-1]].output).shape
        else:  # a block inside a block
            ops = [self.ir.op(op_id) for op_id in _parallel_ops(block)]
            params, macs, out = sum(op.params for op in ops), sum(op.macs for op in ops), merged.shape
        facts = f"{shape_text(out)} · {params:,} params · {_count(macs)} MACs"
        lines = self.run_lines(run, block.name, describe_block(self.ir, block), facts)
        with where.subgraph(name=f"cluster_{block.id}") as box:
            family = self.uses(block.kind)
            look = {"color": family.line, "fillcolor": family.fill, **self.status_attrs(block.id)}
            ink = {}
            if self.overlay is not None:
                colours, lines = self.valued(names, lines)
                look, ink = {**look, "fillcolor": colours["fillcolor"]}, {"fontcolor": colours["fontcolor"]}
            box.attr(label="", style="rounded,filled", **look)
            self.title_node(box, block.id, lines, _parallel_ops(block), pad=4, **ink)
            for name, branch in block.branches:
                self.sequence(box, branch)
                for item in branch.items:  # each branch a straight column
                    if isinstance(item, str):
                        box.node(item, group=f"{block.id}:{name}")
            firsts = [self._entry(branch.items[0]) for _, branch in block.branches if branch.items]
            if len(firsts) > 1:
                with box.subgraph() as row:  # branches side by side, starting level
                    row.attr(rank="same")
                    for node_id in firsts:
                        row.node(node_id)
            if _passes_on(block, merged):
                self.skipped[merged.id] = self.drawn(_last_op(block.branches[0][1]))
                return
            self.node(
                box,
                merged.id,
                merged.kind,
                _merge_lines(block, merged),
                shape="ellipse",
                fontsize="10",
                margin="0.04,0.02",
                **self.op_marks(merged),
            )

    def _entry(self, item: Item) -> str:
        while isinstance(item, Parallel):
            item = next((branch.items[0] for _, branch in item.branches if branch.items), item.merge)
        return item

    def op_marks(self, op: Op) -> dict[str, str]:
        """A compared op's outline: added or changed inside a changed block."""
        if op.id == op.item:  # a compared top-level layer: marked as its entry
            return self.status_attrs(op.item)
        mark = self.marks.get("ops", {}).get(op.id)
        return {"color": STATUS_COLOURS[mark[0]], "penwidth": "2.5"} if mark else {}

    def op_lines(self, op: Op, description: str) -> list[str]:
        lines = _label(op, description)
        mark = self.marks.get("ops", {}).get(op.id)
        if mark:
            lines += mark[1] or [mark[0]]
        return lines

    def op(self, where: graphviz.Digraph, op: Op) -> None:
        marked = self.op_marks(op)
        if not (self.layers and op.kind in ("conv", "separable")):
            self.node(where, op.id, op.kind, self.op_lines(op, describe(op)), **marked)
            return
        conv = ("conv", op.kind, self.op_lines(op, describe(op, with_norm=False)))
        norm = {"batch": ("bn", "batchnorm", "batchnorm"), "layer": ("norm", "layernorm", "LayerNorm")}
        chain = [
            (suffix, kind, [text])
            for suffix, kind, text in (
                norm.get(op.attrs["norm"], ("", "", "")),
                ("act", "activation", describe(_activation(op)) if op.attrs["activation"] != "none" else ""),
            )
            if text
        ]
        # pre-activation: the norm and activation come first, so the first node takes the op's id
        chain = [*chain, conv] if op.attrs.get("order") == "pre" else [conv, *chain]
        previous = None
        for index, (suffix, kind, lines) in enumerate(chain):
            node_id = op.id if index == 0 else f"{op.id}/{suffix}"
            self.node(where, node_id, kind, lines, **(marked if index == 0 else {}))
            if previous is not None:
                self.graph.edge(previous, node_id)  # within one op: no shape label
            previous = node_id
        self.exits[op.id] = previous

    def edges(self) -> None:
        self.data_edges()
        output = self.drawn(self.ir.output)
        self.graph.edge(self.exits.get(output, output), "output", weight="10")

    def data_edges(self) -> None:
        aux_line = self.theme.families["aux"].line
        aux_names = {head.name for head in self.ir.aux_heads}
        labelled: set[str] = set()
        drawn: set[tuple[str, str]] = set()
        for source, target in self.ir.graph.edges():
            source_op, target_op = self.ir.op(source), self.ir.op(target)
            tail, head = self.drawn(source), self.drawn(target)
            if tail == head or (
                self.ir.op(tail).item == self.ir.op(head).item and source_op.item != target_op.item
            ):
                continue  # inside a merge passed over, or between copies drawn once
            tap = target_op.item in aux_names and source_op.item != target_op.item
            # weight 0: the aux head hangs beside the network without pulling it sideways
            attrs = {"style": "dashed", "color": aux_line, "weight": "0"} if tap else {}
            # Every edge out of one op carries the same tensor: label it once. A label (not a
            # tail label, which its own edge can strike through) sits beside its edge.
            label = self.shape_label(source_op) if source not in labelled else ""
            labelled.add(source)
            start = self.exits.get(tail, tail)
            route = self.plan.route(self.plan.drawn(source), self.plan.column.get(target_op.item, -1))
            if route is not None:
                if (start, f"{route.letter}/out") not in drawn:
                    drawn.add((start, f"{route.letter}/out"))
                    self.graph.edge(start, f"{route.letter}/out", **({"label": label} if label else {}))
                start, label = f"{route.letter}/in", ""
            path = [start, *self.titles_between(tail, head), head]
            if tap and start == tail and self.ir.op(tail).kind in ("concat", "add", "mul"):
                self.beside(start, path[1])  # Graphviz cannot draw a flat edge from a record
            for index, pair in enumerate(itertools.pairwise(path)):
                if pair in drawn:
                    continue
                drawn.add(pair)
                first = {"label": label, **attrs} if index == 0 else {"style": attrs.get("style", "solid")}
                if index and "color" in attrs:
                    first["color"] = attrs["color"]
                self.graph.edge(*pair, **{k: v for k, v in first.items() if v})

    def titles_between(self, source: str, target: str) -> list[str]:
        """Title nodes of the boxes ``target`` is in and ``source`` is not, outermost first."""
        entered = [
            (len(ops), title) for ops, title in self.boxes.values() if target in ops and source not in ops
        ]
        return [title for _, title in sorted(entered, reverse=True)]

    def shape_label(self, op: Op) -> str:
        return shape_text(op.shape) if self.shapes else ""


def _passes_on(block: Parallel, merged: Op) -> bool:
    """A concat of one branch: nothing to draw, the branch's output goes on as it is."""
    return (
        merged.kind == "concat"
        and len(block.branches) == 1
        and bool(block.branches[0][1].items)
        and not merged.attrs.get("activation")
        and not merged.attrs.get("shuffle")
    )


def _last_op(sequence: Sequence) -> str:
    item = sequence.items[-1]
    return item.merge if isinstance(item, Parallel) else item


def _sequence_ops(sequence: Sequence) -> set[str]:
    return {
        op
        for item in sequence.items
        for op in (_parallel_ops(item) if isinstance(item, Parallel) else {item})
    }


def _parallel_ops(block: Parallel) -> set[str]:
    return {block.merge} | {op for _, branch in block.branches for op in _sequence_ops(branch)}


def _merge_lines(block: Parallel, merged: Op) -> list[str]:
    """``+``, ``×`` or ``concat``, the scaled branches (``×0.2 mixed``), and the activation after."""
    lines = [{"add": "+", "mul": "×"}.get(merged.kind, "concat")]
    scales = merged.attrs.get("scales") or ()
    lines += [f"×{scale:g} {name}" for (name, _), scale in zip(block.branches, scales) if scale != 1]
    if merged.attrs.get("activation"):
        lines.append(f"then {describe(_activation(merged))}")
    if merged.attrs.get("shuffle"):
        lines.append(f"then shuffle g{merged.attrs['shuffle']}")
    return lines


def _label(op: Op, description: str) -> list[str]:
    """Name over description; just the description when the name only repeats it."""
    redundant = op.name == op.kind or op.name.lower() == description.lower() or _BARE.fullmatch(op.name)
    return [description] if redundant else [op.name, description]


def _activation(op: Op) -> Op:
    return Op(
        op.id, "activation", {"function": op.attrs["activation"]}, op.shape, 0, 0, op.item, op.spec_path
    )
