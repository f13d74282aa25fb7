"""Draw the IR as a ``graphviz.Digraph``: no forward pass, no torch.

Three levels of detail: ``blocks`` (one node per top-level entry), ``branches`` (every op,
each multi-branch block a cluster with its branches side by side under a title node that
incoming edges end at) and ``layers`` (as
``branches``, with each conv's batch norm and activation as nodes of their own). Node ids
are the IR's op ids and everything is emitted in spec order, so equal input gives equal DOT.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import graphviz

from archbuilder.escaping import dot_value
from archbuilder.ir.graph import IR, Item, Op, Parallel, Sequence, TopLevel
from archbuilder.render.compare import STATUS_COLOURS
from archbuilder.render.layout import LAYOUTS, Columns, legend
from archbuilder.render.output import render_source
from archbuilder.render.style import (
    FAMILIES,
    Family,
    describe,
    family_of,
    record_label,
    shape_text,
    text_label,
)

__all__ = ["DETAILS", "RANKDIRS", "Diagram", "to_digraph"]

DETAILS = ("blocks", "branches", "layers")
RANKDIRS = ("TB", "LR")
FONT = "Helvetica"


class Diagram(graphviz.Digraph):
    """A ``graphviz.Digraph`` that shows inline in Jupyter with or without system Graphviz.

    Every ID and attribute value is written by :func:`~archbuilder.escaping.dot_value`, not
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
) -> graphviz.Digraph:
    """The diagram of ``ir`` at the given level of detail.

    ``marks`` (from :func:`~archbuilder.render.compare.compare_marks`) outlines changed
    entries; ``layout`` is ``tall``, ``compact`` or ``auto`` (see :mod:`.layout`).
    """
    if detail not in DETAILS:
        raise ValueError(f"detail must be one of {', '.join(DETAILS)}, not {detail!r}")
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, not {rankdir!r}")
    graph = Diagram(ir.name)
    graph.attr(
        label=_title(ir),
        labelloc="t",
        fontname=FONT,
        fontsize="16",
        rankdir=rankdir,
        newrank="true",
        nodesep="0.18",
        ranksep="0.32",
        compound="true",
    )
    graph.attr("node", shape="Mrecord", style="filled", fontname=FONT, fontsize="10", margin="0.10,0.03")
    graph.attr("edge", fontname=FONT, fontsize="8", fontcolor="#555555", color="#666666", arrowsize="0.6")
    if detail == "blocks":
        drawer: _Drawer = _BlockDrawer(ir, graph, rankdir)
    else:
        drawer = _OpDrawer(ir, graph, rankdir, layers=detail == "layers", shapes=shapes)
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    _draw(drawer, marks or {}, detail, layout if rankdir == "TB" else "tall")  # columns are for TB
    return graph


def _draw(drawer: _Drawer, marks: dict, detail: str, layout: str) -> None:
    """Columns planned, everything drawn, then the legend (with the compare keys used)."""
    drawer.marks = marks
    drawer.plan(detail, layout)
    drawer.draw()
    drawer.align_columns()
    statuses = sorted(set(marks.get("status", {}).values()), key=list(STATUS_COLOURS).index)
    legend(drawer.graph, drawer.families, drawer.rankdir, statuses, marks.get("removed", ()))


def _title(ir: IR) -> str:
    params, macs = ir.total()
    size = f"input {shape_text(ir.input_shape)} · {params:,} params · {_count(macs)} MACs"
    if not ir.aux_heads:
        return text_label(ir.name, size)
    inference_params, inference_macs = ir.total(aux=False)
    without = f"without aux heads: {inference_params:,} params · {_count(inference_macs)} MACs"
    return text_label(ir.name, size, without)


def _count(value: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= scale:
            return f"{value / scale:.2f} {unit}"
    return str(value)


class _Drawer:
    def __init__(self, ir: IR, graph: graphviz.Digraph, rankdir: str):
        self.ir = ir
        self.graph = graph
        self.rankdir = rankdir
        self.families: list[str] = []  # in first-use order, for the legend
        self.sections = {entry.name: entry.section for entry in ir.top_level}
        self.marks: dict = {}
        self.columns = Columns({})

    def plan(self, detail: str, layout: str) -> None:
        self.columns = Columns.plan(self.ir, detail, layout)

    def wraps(self, source_item: str, target_item: str) -> bool:
        return self.columns.wraps(source_item, target_item)

    def top_of(self, name: str, node_id: str) -> None:
        self.columns.top_of(name, node_id)

    def align_columns(self) -> None:
        self.columns.align(self.graph)

    def status_attrs(self, name: str) -> dict[str, str]:
        """Outline of a marked (compared) entry."""
        status = self.marks.get("status", {}).get(name)
        return {"color": STATUS_COLOURS[status], "penwidth": "3"} if status else {}

    def uses(self, kind: str) -> Family:
        """The family drawing ``kind``, noted for the legend."""
        family = family_of(kind)
        if family.name not in self.families:
            self.families.append(family.name)
        return family

    def node(self, where: graphviz.Digraph, node_id: str, kind: str, lines: list[str], **attrs: str) -> None:
        """A node coloured by its kind; ``lines`` become record compartments (plain text for other shapes)."""
        family = self.uses(kind)
        label = record_label(lines, self.rankdir) if "shape" not in attrs else text_label(*lines)
        attrs = {"fillcolor": family.fill, "color": family.line, **attrs}
        where.node(node_id, label, **attrs)

    def input_node(self) -> None:
        self.node(self.graph, "input", "input", ["input", shape_text(self.ir.input_shape)], group="main")

    def output_node(self, source: str, shape: tuple[int, ...]) -> None:
        self.node(self.graph, "output", "input", ["output", shape_text(shape)], group="main")
        self.graph.edge(source, "output", weight="10")


class _BlockDrawer(_Drawer):
    """One node per top-level entry, labelled with its output shape, parameters and MACs."""

    def draw(self) -> None:
        self.input_node()
        previous = "input"
        for entry in self.ir.top_level:
            if entry.section == "aux":
                self.aux_node(entry)
                continue
            what = describe(self.ir.op(entry.output)) if len(entry.ops) == 1 else entry.kind
            title = what if entry.name == entry.kind else f"{entry.name} · {what}"
            lines = [title, self.facts(entry)]
            self.node(
                self.graph, entry.name, entry.kind, lines, group="main", **self.status_attrs(entry.name)
            )
            wrap = {"constraint": "false"} if previous != "input" and self.wraps(previous, entry.name) else {}
            self.graph.edge(previous, entry.name, weight="10", **wrap)
            self.top_of(entry.name, entry.name)
            previous = entry.name
        self.output_node(previous, self.ir.op(self.ir.output).shape)

    def facts(self, entry: TopLevel) -> str:
        ops = [self.ir.op(op_id) for op_id in entry.ops]
        params, macs = sum(op.params for op in ops), sum(op.macs for op in ops)
        text = shape_text(self.ir.op(entry.output).shape)
        return text + (f" · {params:,} params · {_count(macs)} MACs" if params or macs else "")

    def aux_node(self, entry: TopLevel) -> None:
        head = next(head for head in self.ir.aux_heads if head.name == entry.name)
        lines = [f"{entry.name} · aux head · loss weight {head.loss_weight:g}", self.facts(entry)]
        self.node(
            self.graph, entry.name, "aux_head", lines, style="filled,dashed", **self.status_attrs(entry.name)
        )
        self.graph.edge(head.tap, entry.name, style="dashed", color=FAMILIES["aux"].line)


class _OpDrawer(_Drawer):
    """Every op; multi-branch blocks, stem, head and aux heads as clusters."""

    def __init__(self, ir: IR, graph: graphviz.Digraph, rankdir: str, *, layers: bool, shapes: bool):
        super().__init__(ir, graph, rankdir)
        self.layers = layers
        self.shapes = shapes
        self.exits: dict[str, str] = {}  # op id -> node id its output leaves from (layers detail)
        self.totals: dict[str, tuple[int, int]] = {}  # id prefix (a block) -> (params, MACs)
        # Boxes an edge enters through a title node (blocks, aux heads): id -> its ops, title node
        self.boxes: dict[str, tuple[set[str], str]] = {}
        for op in ir.ops():
            parts = op.id.split(".")
            for end in range(1, len(parts)):
                prefix = ".".join(parts[:end])
                params, macs = self.totals.get(prefix, (0, 0))
                self.totals[prefix] = (params + op.params, macs + op.macs)

    def draw(self) -> None:
        self.input_node()
        groups: list[tuple[str, list[Item]]] = []
        for item in self.ir.body.items:
            section = self.sections[item if isinstance(item, str) else item.id]
            if groups and groups[-1][0] == section:
                groups[-1][1].append(item)
            else:
                groups.append((section, [item]))
        for section, items in groups:
            if section == "blocks":
                for item in items:
                    self.item(self.graph, item)
            else:
                with self.graph.subgraph(name=f"cluster_{section}") as cluster:
                    cluster.attr(
                        label=section,
                        labeljust="l",  # beside the edges running down the middle, not under them
                        fontsize="11",
                        style="rounded,filled",
                        fillcolor="#f7f7f7",
                        color="#cccccc",
                    )
                    for item in items:
                        self.item(cluster, item)
        for head in self.ir.aux_heads:
            with self.graph.subgraph(name=f"cluster_aux_{head.name}") as cluster:
                aux = self.uses("aux_head")
                look = {"color": aux.line, **self.status_attrs(head.name)}
                cluster.attr(label="", style="rounded,dashed,filled", fillcolor="#fdf4f4", **look)
                lines = [head.name, f"auxiliary head · loss weight {head.loss_weight:g}"]
                self.title_node(cluster, head.name, lines, _sequence_ops(head.layers))
                self.sequence(cluster, head.layers)
        self.edges()
        output = self.ir.op(self.ir.output)
        self.output_node(self.exits.get(output.id, output.id), output.shape)

    def sequence(self, where: graphviz.Digraph, sequence: Sequence) -> None:
        for item in sequence.items:
            self.item(where, item)

    def item(self, where: graphviz.Digraph, item: Item) -> None:
        if isinstance(item, Parallel):
            self.block(where, item)
        else:
            op = self.ir.op(item)
            self.op(where, op)
            if op.id == op.item:  # a top-level layer
                self.top_of(op.item, op.id)

    def title_node(
        self, where: graphviz.Digraph, box: str, lines: list[str], ops: set[str], pad: int = 2
    ) -> None:
        """A box's title as a node at its top: edges come into it rather than through the text."""
        node_id = f"{box}/title"
        label = text_label(*lines, pad=pad)
        where.node(node_id, label, shape="plaintext", style="", fontsize="11", margin="0.02")
        self.boxes[box] = (ops, node_id)

    def block(self, where: graphviz.Digraph, block: Parallel) -> None:
        merged = self.ir.op(block.merge)
        params, macs = self.totals[block.id]
        lines = [
            f"{block.name} · {block.kind}",
            f"{shape_text(merged.shape)} · {params:,} params · {_count(macs)} MACs",
        ]
        with where.subgraph(name=f"cluster_{block.id}") as cluster:
            block_family = self.uses(block.kind)
            look = {"color": block_family.line, **self.status_attrs(block.id)}
            cluster.attr(label="", style="rounded,filled", fillcolor=block_family.fill, **look)
            self.title_node(cluster, block.id, lines, _parallel_ops(block), pad=4)
            self.top_of(block.id, f"{block.id}/title")
            for _, branch in block.branches:
                self.sequence(cluster, branch)
            firsts = [self._entry(branch.items[0]) for _, branch in block.branches if branch.items]
            if len(firsts) > 1:
                with cluster.subgraph() as row:  # branches side by side, starting level
                    row.attr(rank="same")
                    for node_id in firsts:
                        row.node(node_id)
            self.node(
                cluster,
                merged.id,
                merged.kind,
                _merge_lines(block, merged),
                shape="ellipse",
                fontsize="9",
                margin="0.04,0.02",
            )

    def _entry(self, item: Item) -> str:
        while isinstance(item, Parallel):
            item = next((branch.items[0] for _, branch in item.branches if branch.items), item.merge)
        return item

    def op(self, where: graphviz.Digraph, op: Op) -> None:
        marked = self.status_attrs(op.item) if op.id == op.item else {}  # a compared top-level layer
        if not (self.layers and op.kind in ("conv", "separable")):
            self.node(where, op.id, op.kind, _label(op, describe(op)), **marked)
            return
        conv = ("conv", op.kind, _label(op, describe(op, with_norm=False)))
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
        aux_line = FAMILIES["aux"].line
        aux_names = {head.name for head in self.ir.aux_heads}
        labelled: set[str] = set()
        drawn: set[tuple[str, str]] = set()
        for source, target in self.ir.graph.edges():
            source_op, target_op = self.ir.op(source), self.ir.op(target)
            tap = target_op.item in aux_names and source_op.item != target_op.item
            # weight 0: the aux head hangs beside the network without pulling it sideways
            attrs = {"style": "dashed", "color": aux_line, "weight": "0"} if tap else {}
            if self.wraps(source_op.item, target_op.item):
                attrs["constraint"] = "false"
            # Every edge out of one op carries the same tensor: label it once, at the tail
            # when it goes into a merge (beside each branch, not where the branches meet).
            label = self.shape_label(source_op) if source not in labelled else ""
            labelled.add(source)
            key = "taillabel" if target_op.kind in ("concat", "add", "mul") else "label"
            if key == "taillabel" and label:
                attrs = {**attrs, **self.tail_placement(source, target)}
            path = [self.exits.get(source, source), *self.titles_between(source, target), target]
            for index, pair in enumerate(itertools.pairwise(path)):
                if pair in drawn:
                    continue
                drawn.add(pair)
                first = {key: label, **attrs} if index == 0 else {"style": attrs.get("style", "solid")}
                if index and "color" in attrs:
                    first["color"] = attrs["color"]
                self.graph.edge(*pair, **{k: v for k, v in first.items() if v})

    def tail_placement(self, source: str, target: str) -> dict[str, str]:
        """A merge input's label beside its tail, turned away from the node it leaves:
        branches left of the middle slope right on their way down, the others left."""
        inputs = self.ir.graph.in_degree(target)
        right = self.ir.graph.edges[source, target].get("index", 0) >= inputs / 2
        return {"labeldistance": "2.2", "labelangle": "30" if right else "-30"}

    def titles_between(self, source: str, target: str) -> list[str]:
        """Title nodes of the boxes ``target`` is in and ``source`` is not, outermost first."""
        entered = [
            (len(ops), title) for ops, title in self.boxes.values() if target in ops and source not in ops
        ]
        return [title for _, title in sorted(entered, reverse=True)]

    def shape_label(self, op: Op) -> str:
        return shape_text(op.shape) if self.shapes else ""


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
    redundant = op.name == op.kind or op.name.lower() == description.lower()
    return [description] if redundant else [op.name, description]


def _activation(op: Op) -> Op:
    return Op(
        op.id, "activation", {"function": op.attrs["activation"]}, op.shape, 0, 0, op.item, op.spec_path
    )
