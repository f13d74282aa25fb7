"""The data an interactive diagram page draws: the IR as a tree of foldable nodes.

Top-level entries are the tree's first level; consecutive entries from one ``repeat`` or one
template are rolled up into a group node. A block's children are its branches, a branch's
children its layers (and nested blocks). Every node carries its shapes, parameters, MACs and
the spec lines that wrote it (:mod:`.page_lines`). The page lays the tree out itself
(archbuilder/render/assets/page.js); this module only describes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from archbuilder.analysis.overlay import Overlay, format_value
from archbuilder.ir.graph import IR, Item, Op, Parallel, Sequence, TopLevel
from archbuilder.render.layout import roll_ups
from archbuilder.render.page_lines import SpecLines
from archbuilder.render.style import FAMILIES, describe, describe_block, family_of
from archbuilder.spec import ArchSpec
from archbuilder.spec.activations import display_name
from archbuilder.spec.source import Source

__all__ = ["page_model"]


def page_model(
    ir: IR, spec: ArchSpec | None, marks: dict[str, Any] | None = None, overlay: Overlay | None = None
) -> dict[str, Any]:
    """Plain data for the page: title, totals, the node tree, aux heads, spec lines, colours;
    with an ``overlay``, its scale and each node's value, share and fill."""
    model = _Model(ir, spec.source if spec is not None and spec.source else Source(), marks or {})
    built = model.build(spec)
    if overlay is not None:
        built["overlay"] = overlay.page_data()
        for node in [*built["body"], *built["aux"]]:
            _add_values(node, overlay)
    return built


class _Model:
    def __init__(self, ir: IR, source: Source, marks: dict[str, Any]):
        self.ir = ir
        self.source = source
        self.marks = marks
        self.spec_lines = SpecLines(source)
        self.families: dict[str, dict[str, str]] = {}

    def build(self, spec: ArchSpec | None) -> dict[str, Any]:
        ir = self.ir
        params, macs = ir.total()
        inference = ir.total(aux=False)
        body = [self.io("input", "input", ir.input_shape, "input")]
        body += self.top_level(spec)
        body.append(self.io("output", "output", ir.op(ir.output).shape, None))
        aux_tops = {top.name: top for top in ir.top_level if top.section == "aux"}
        aux = [self.aux(head, aux_tops[head.name]) for head in ir.aux_heads]
        return {
            "name": ir.name,
            "input": list(ir.input_shape),
            "total": {"params": params, "macs": macs},
            "without_aux": {"params": inference[0], "macs": inference[1]},
            "body": body,
            "aux": aux,
            # Each file is named once; a node's snippets refer to it by index.
            "files": self.spec_lines.files(),
            "lines": self.spec_lines.shown(),
            "families": self.families,
            "removed": self.marks.get("removed", []),
            "compare": self.marks.get("compare"),
        }

    # -- nodes -----------------------------------------------------------------
    def family(self, kind: str) -> str:
        family = family_of(kind)
        key = next(key for key, value in FAMILIES.items() if value is family)
        self.families[key] = {"name": family.name, "fill": family.fill, "line": family.line}
        return key

    def io(self, node_id: str, name: str, shape: tuple[int, ...], op: str | None) -> dict[str, Any]:
        node = self.node(node_id, name, "io", name, [], shape)
        node["family"] = self.family("input")
        if op:
            node["op"] = op
        return node

    def node(
        self, node_id: str, name: str, node_type: str, kind: str, ops: list[Op], shape: tuple[int, ...]
    ) -> dict[str, Any]:
        inside = {op.id for op in ops}
        inputs = {
            source: list(self.ir.op(source).shape)
            for op in ops
            for source in self.ir.graph.predecessors(op.id)
            if source not in inside
        }
        return {
            "id": node_id,
            "name": name,
            "type": node_type,
            "kind": kind,
            "shape": list(shape),
            "inputs": list(inputs.values()),
            "params": sum(op.params for op in ops),
            "macs": sum(op.macs for op in ops),
            "src": self.spec_lines.snippets([op.spec_path for op in ops]),
        }

    def op(self, op: Op) -> dict[str, Any]:
        node = self.node(op.id, op.name, "op", op.kind, [op], op.shape)
        node.update(op=op.id, label=describe(op), family=self.family(op.kind))
        node["attrs"] = {key: _shown(key, value) for key, value in op.attrs.items()}
        key = self.spec_lines.width_key(op.spec_path)
        if key is not None:
            node["key"] = key
        return node

    def item(self, item: Item) -> dict[str, Any]:
        return self.block(item) if isinstance(item, Parallel) else self.op(self.ir.op(item))

    def block(self, block: Parallel) -> dict[str, Any]:
        ops = [self.ir.op(op_id) for op_id in _op_ids(block)]
        node = self.node(block.id, block.name, "block", block.kind, ops, self.ir.op(block.merge).shape)
        node["family"] = self.family(block.kind)
        node["what"] = describe_block(self.ir, block)  # as the static picture titles it
        node["children"] = [self.branch(block, name, branch) for name, branch in block.branches]
        node["merge"] = self.op(self.ir.op(block.merge))
        count = len(block.branches)
        node["label"] = f"{count} branches: {self.parallel(block)}" if count > 1 else self.parallel(block)
        return node

    # -- summaries: a chain reads a → b, parallel branches (a | b) → merge -------------
    def chain(self, items: Iterable[Item]) -> str:
        parts = []
        for item in items:
            if isinstance(item, Parallel):
                parts.append(self.parallel(item))
            else:
                op = self.ir.op(item)
                if op.kind != "activation":
                    parts.append(describe(op, with_norm=False))
        return " → ".join(parts) or "identity"

    def parallel(self, block: Parallel) -> str:
        if len(block.branches) == 1:  # one branch: its chain (a one-input merge changes nothing)
            return self.chain(block.branches[0][1].items)
        branches = " | ".join(self.chain(branch.items) for _, branch in block.branches)
        return f"({branches}) → {describe(self.ir.op(block.merge), with_norm=False)}"

    def branch(self, block: Parallel, name: str, branch: Sequence) -> dict[str, Any]:
        ops = [self.ir.op(op_id) for item in branch.items for op_id in _op_ids(item)]
        shape = ops[-1].shape if ops else self.ir.op(block.merge).shape
        node = self.node(f"{block.id}.{name}", name, "branch", "branch", ops, shape)
        node["family"] = self.family("branches")
        node["children"] = [self.item(item) for item in branch.items]
        node["label"] = self.chain(branch.items)
        last = node["children"][-1] if node["children"] else None
        if last is not None and "key" in last:  # the branch's width is its last layer's
            node["key"] = last["key"]
        return node

    def top_level(self, spec: ArchSpec | None) -> list[dict[str, Any]]:
        """The main chain's entries, copies of one ``repeat`` or template rolled up into a group
        (the same :func:`~archbuilder.render.layout.roll_ups` the static picture uses)."""
        items = {(item if isinstance(item, str) else item.id): item for item in self.ir.body.items}
        entries = {top.name: top for top in self.ir.top_level}
        nodes: list[dict[str, Any]] = []
        for run in roll_ups(self.ir, lambda top: self.run_key(top, spec)):
            members = []
            for name in run.names:
                top = entries[name]
                node = self.item(items[name]) if name in items else self.op(self.ir.op(top.output))
                node["section"] = top.section
                self.mark(node, name)
                members.append(node)
            key = self.run_key(entries[run.first], spec)
            nodes.append(self.group(key, members) if run.count > 1 else members[0])
        return nodes

    def run_key(self, top: TopLevel, spec: ArchSpec | None) -> Any:
        """What rolls consecutive entries up: one ``repeat`` entry, or one template."""
        section, index = self.ir.op(top.ops[0]).spec_path[:2]
        if spec is None or not isinstance(index, int):
            return None
        layer = getattr(spec, section)[index]
        if layer.repeat > 1:
            return ("repeat", section, index, layer.name or top.name)
        where = self.source.positions.get((section, index, "kind"))
        for name in spec.templates:
            if where is not None and where == self.source.positions.get(("templates", name, "layer", "kind")):
                return ("template", name)
        return None

    def group(self, key: Any, members: list[dict[str, Any]]) -> dict[str, Any]:
        name = key[-1]
        node = {
            "id": f"group:{members[0]['id']}",
            "name": f"{name} ×{len(members)}",
            "type": "group",
            "kind": "repeat" if key[0] == "repeat" else f"template {name}",
            "label": f"{members[0]['name']} … {members[-1]['name']}",
            "shape": members[-1]["shape"],
            "inputs": members[0]["inputs"],
            "params": sum(member["params"] for member in members),
            "macs": sum(member["macs"] for member in members),
            "src": members[0]["src"],
            "family": members[0]["family"],
            "children": members,
            "section": members[0].get("section"),
        }
        statuses = {member.get("status") for member in members} - {None, "unchanged"}
        if statuses:
            node["status"] = "changed" if len(statuses) > 1 else statuses.pop()
        return node

    def aux(self, head, top: TopLevel) -> dict[str, Any]:
        ops = [self.ir.op(op_id) for op_id in top.ops]
        node = self.node(head.name, head.name, "aux", "aux_head", ops, ops[-1].shape)
        node.update(family=self.family("aux_head"), tap=head.tap, loss_weight=head.loss_weight)
        node["label"] = f"auxiliary head · loss weight {head.loss_weight:g}"
        node["children"] = [self.item(item) for item in head.layers.items]
        self.mark(node, head.name)
        return node

    def mark(self, node: dict[str, Any], name: str) -> None:
        status = self.marks.get("status", {}).get(name)
        if status:
            node["status"] = status
            node["changes"] = self.marks.get("changes", {}).get(name, [])


def _op_ids(item: Item) -> list[str]:
    if isinstance(item, str):
        return [item]
    ids = [op_id for _, branch in item.branches for child in branch.items for op_id in _op_ids(child)]
    return [*ids, item.merge]


_SIZES = {"kernel", "output", "output_size"}  # pairs read as sizes: 3×3, even when square
_NORMS = {"batch": "batch norm", "layer": "layer norm", "group": "group norm", "instance": "instance norm"}


def _shown(key: str, value: Any) -> str | int:
    """An attribute as a person writes it: ``3×3``, ``stride 1``, ``batch norm``, ``ReLU``
    (a plain int stays a number; the page shows it as it is)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return f"{value:.6g}"  # 1e-05, 0.175 (not 0.17500000000000002)
    if value is None:
        return "none"
    if isinstance(value, (tuple, list)):
        if key in _SIZES or (len(set(value)) > 1 and all(isinstance(v, int) for v in value)):
            return "×".join(str(_shown("", v)) for v in value) if value else "none"
        if len(value) == 2 and value[0] == value[1] and isinstance(value[0], int):
            return str(value[0])
        return ", ".join(str(_shown("", v)) for v in value) if value else "none"
    if key == "norm":
        return _NORMS.get(value, str(value))
    if key in ("activation", "function"):
        return display_name(str(value))
    return str(value)


def _add_values(node: dict[str, Any], overlay: Overlay) -> float | None:
    """Give ``node`` and everything inside it its overlay value (the node's own when the
    overlay has one, else the sum of what is inside it); returns the value."""
    inside = [_add_values(child, overlay) for child in node.get("children", [])]
    if "merge" in node:
        inside.append(_add_values(node["merge"], overlay))
    value = overlay.value(node["id"]) if node["type"] != "group" else None
    if value is None and any(part is not None for part in inside):
        value = sum(part for part in inside if part is not None)
    share = overlay.share(value)
    node["overlay"] = {
        "value": value,
        "text": format_value(value, overlay.metric) if value is not None else "no value",
        "share": f"{share:.2%}" if share is not None else "",
        "fill": overlay.fill(value),
        "ink": overlay.ink(value),
    }
    return value
