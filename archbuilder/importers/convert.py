"""Structure → spec data: sections, names, conv defaults, role-named Inception blocks, aux
heads, and the weights of every layer keyed as the built model's ``state_dict``.

Names: each layer takes the first part of its source name below its enclosing block's
(Caffe ``conv1/7x7_s2`` → ``conv1``; module ``3a.branch1x1.conv`` → ``3a``, ``branch1x1``,
``conv``); siblings that would share a name keep their whole remaining path
(``pool1/norm1`` → ``pool1_norm1``). A block named ``inception_3a`` or ``inception3a`` is ``3a``.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from archbuilder.importers.graph import Node, Shape, Unsupported
from archbuilder.importers.inception import CONV_SETTINGS, as_inception
from archbuilder.importers.structure import Block, Item, Structure, StructureError
from archbuilder.ir.names import RESERVED_NAMES
from archbuilder.spec.blocks import Inception

__all__ = ["spec_data"]

BUILTIN = {"norm": "batch", "activation": "relu", "bn_eps": 1e-5, "bn_momentum": 0.1}
_HEAD_KINDS = ("global_avgpool", "adaptive_avgpool", "flatten", "linear")
_INVALID = re.compile(r"[^A-Za-z0-9_-]+")
_STRAY = {  # structure ops outside the place a spec can say them
    "slice": "a slice of the channels that is not the start of a branch of a channel-split block",
    "scale": "a multiplication by a number that is not the end of a branch before a merge",
    "concat": "a concatenation the importer could not place",
    "add": "an addition the importer could not place",
}


def clean(value: Any) -> Any:
    """Spec-ready values: pairs of equal ints as one int, floats without float32 noise."""
    if isinstance(value, tuple):
        return value[0] if len(set(value)) == 1 else list(value)
    if isinstance(value, float):
        return float(f"{value:.7g}")
    return value


def sanitize(name: str) -> str:
    name = _INVALID.sub("_", name).strip("_-")[:64]
    return f"{name}_" if name in RESERVED_NAMES else name


def _scope(item: Item) -> tuple[str, ...]:
    if isinstance(item, Node):
        return item.scope
    members = _named([member for branch in item.branches for member in branch])
    return _common(members or [_scope(item.merge)])


def _named(items: list[Item]) -> list[tuple[str, ...]]:
    """The scopes of ``items``, leaving out ops the importer added (a flatten before a classifier)
    and a split block's channel slices."""
    return [
        _scope(i)
        for i in items
        if not (isinstance(i, Node) and (i.source_op.startswith("(") or i.op == "slice"))
    ]


def _common(scopes: list[tuple[str, ...]]) -> tuple[str, ...]:
    if not scopes:
        return ()
    prefix = scopes[0]
    for scope in scopes[1:]:
        length = next(
            (i for i, (a, b) in enumerate(zip(prefix, scope)) if a != b), min(len(prefix), len(scope))
        )
        prefix = prefix[:length]
    return prefix


def _kind(item: Item) -> str:
    return item.attrs.get("kind", item.op) if isinstance(item, Node) else "branches"


def names_for(scopes: list[tuple[str, ...]], parent: tuple[str, ...], kinds: list[str]) -> list[str]:
    """Unique names for siblings from their scopes below ``parent``; ``{kind}{n}`` where none."""
    rests = [scope[len(parent) :] if scope[: len(parent)] == parent else scope for scope in scopes]
    firsts = Counter(rest[0] for rest in rests if rest)
    wanted = [sanitize("_".join(rest) if firsts[rest[0]] > 1 else rest[0]) if rest else "" for rest in rests]
    taken: set[str] = set()
    counts: Counter[str] = Counter()
    names = []
    for name, kind in zip(wanted, kinds):
        base = name or kind
        if not name or name in taken:
            counts[base] += 1
            while f"{base}{counts[base]}" in taken or f"{base}{counts[base]}" in wanted:
                counts[base] += 1
            name = f"{base}{counts[base]}"
        taken.add(name)
        names.append(name)
    return names


def _block_name(name: str) -> str:
    short = re.sub(r"^inception_?", "", name, flags=re.IGNORECASE)
    return short if short and short != name and re.match(r"^[A-Za-z0-9]", short) else name


class _Emitter:
    def __init__(self, defaults: dict[str, Any]):
        self.defaults = defaults
        self.weights: dict[str, Any] = {}

    def items(self, items: list[Item], parent: tuple[str, ...], prefix: str) -> list[dict[str, Any]]:
        names = names_for([_scope(i) for i in items], parent, [_kind(i) for i in items])
        return [self.item(item, name, prefix, parent) for item, name in zip(items, names)]

    def item(self, item: Item, name: str, prefix: str, parent: tuple[str, ...]) -> dict[str, Any]:
        if isinstance(item, Block):
            name = _block_name(name)
        op_id = f"{prefix}.{name}" if prefix else name
        if isinstance(item, Block):
            return {"name": name, **self.block(item, op_id, parent)}
        if item.op != "layer":
            raise StructureError(Unsupported(item.name, item.source_op or item.op, _STRAY[item.op]))
        for key, value in item.weights.items():
            self.weights[f"{op_id}.{key}"] = value
        return {"name": name, **self.layer(item)}

    def layer(self, node: Node) -> dict[str, Any]:
        a = node.attrs
        kind = a["kind"]
        out: dict[str, Any] = {"kind": kind}
        if kind in ("conv", "separable"):
            if not a.get("same_width"):  # a depthwise conv's out defaults to its input's channels
                out["out"] = a["out"]
            out["kernel"] = clean(a["kernel"])
            for key, default in (("stride", (1, 1)), ("padding", (0, 0)), ("dilation", (1, 1))):
                if a[key] != default:
                    out[key] = clean(a[key])
            if a.get("groups", 1) != 1:
                out["groups"] = a["groups"]
            if a.get("multiplier", 1) != 1:
                out["multiplier"] = a["multiplier"]
            out.update(self.settings(a))
        elif kind in ("maxpool", "avgpool"):
            out["kernel"] = clean(a["kernel"])
            if a["stride"] != a["kernel"]:
                out["stride"] = clean(a["stride"])
            if a["padding"] != (0, 0):
                out["padding"] = clean(a["padding"])
            if a["ceil_mode"]:
                out["ceil_mode"] = True
            if kind == "avgpool" and not a.get("count_include_pad", True):
                out["count_include_pad"] = False
        else:
            out.update({key: clean(value) for key, value in a.items() if key != "kind"})
        return out

    def settings(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """The conv settings of ``attrs`` that differ from the defaults (``order: pre`` always)."""
        diff = {
            key: clean(attrs[key])
            for key in ("norm", "activation", "bias")
            if attrs[key] != self.defaults[key]
        }
        if attrs.get("order") == "pre":
            diff["order"] = "pre"
        if attrs["norm"] == "batch":
            for key in ("bn_eps", "bn_momentum"):
                if clean(attrs[key]) != self.defaults.get(key, BUILTIN[key]):
                    diff[key] = clean(attrs[key])
        return diff

    def block(self, block: Block, op_id: str, parent: tuple[str, ...]) -> dict[str, Any]:
        scope = _scope(block)
        branches, scales = self.scaled(block)
        widths = split_widths(block, branches)
        if widths is not None:
            branches = [branch[1:] for branch in branches]
        plain = (
            widths is None
            and not _has_pre(branches)
            and all(isinstance(i, Node) for branch in branches for i in branch)
        )
        found = (
            as_inception([[i.attrs for i in b] for b in branches])
            if plain and block.merge.op == "concat"
            else None
        )
        if found is not None:
            return self.inception(branches, *found, op_id)
        written = []
        branch_scopes = [_common(_named(branch)) if _named(branch) else scope for branch in branches]
        names = names_for(branch_scopes, scope, ["branch"] * len(branches))
        for index, (branch, name, branch_scope, scale) in enumerate(
            zip(branches, names, branch_scopes, scales)
        ):
            if name.startswith("branch") and name[6:].isdigit():
                name = f"branch{index + 1}"  # the spec's own default, so that readers see it
            inner = (*scope, branch_scope[len(scope)]) if len(branch_scope) > len(scope) else scope
            entry: dict[str, Any] = {"name": name}
            if widths is not None:
                entry["channels"] = widths[index]
            entry["layers"] = self.items(branch, inner, f"{op_id}.{name}")
            if scale != 1:
                entry["scale"] = clean(scale)
            written.append(entry)
        out: dict[str, Any] = {"kind": "branches"}
        if block.merge.op == "add":
            out["merge"] = "add"
        if widths is not None:
            out["split"] = True
        out["branches"] = written
        if block.merge.attrs.get("activation"):
            out["activation"] = block.merge.attrs["activation"]
        if block.merge.attrs.get("shuffle"):
            out["shuffle"] = block.merge.attrs["shuffle"]
        return out

    def inception(self, branches, fields: dict[str, Any], roles, op_id: str) -> dict[str, Any]:
        """An ``inception`` block's fields, its weights keyed by the role names."""
        for branch, branch_name, role_names in zip(branches, Inception.BRANCHES, roles):
            for node, role in zip(branch, role_names):
                for key, value in node.weights.items():
                    self.weights[f"{op_id}.{branch_name}.{role}.{key}"] = value
        settings = self.settings(fields.pop("conv"))
        return {**fields, **({"conv": settings} if settings else {})}

    def scaled(self, block: Block) -> tuple[list[list[Item]], list[float]]:
        """The branches without their trailing ``scale`` ops, and the scales they carried."""
        given = list(block.merge.attrs.get("scales") or [1.0] * len(block.branches))
        branches = []
        for index, branch in enumerate(block.branches):
            if branch and isinstance(branch[-1], Node) and branch[-1].op == "scale":
                given[index] *= branch[-1].attrs["factor"]
                branch = branch[:-1]
            branches.append(branch)
        return branches, given


def _has_pre(branches: list[list[Item]]) -> bool:
    return any(isinstance(i, Node) and i.attrs.get("order") == "pre" for branch in branches for i in branch)


def split_widths(block: Block, branches: list[list[Item]]) -> list[int] | None:
    """The channel counts of a split block (every branch starts with a slice, the slices in
    branch order and covering the channels), None when no branch starts with one."""
    firsts = [b[0] if b and isinstance(b[0], Node) and b[0].op == "slice" else None for b in branches]
    if not any(firsts):
        return None
    merge = block.merge

    def fail(reason: str) -> StructureError:
        return StructureError(Unsupported(merge.name, merge.source_op or merge.op, reason))

    if not all(firsts):
        raise fail("some of its branches read a slice of the channels, others all of them")
    start = 0
    for first in firsts:
        if first.attrs["start"] != start:
            raise fail("its branches read channel slices out of order (a split block takes them in order)")
        start += first.attrs["channels"]
    if start != firsts[0].attrs["of"]:
        raise fail(f"its branches read {start} of {firsts[0].attrs['of']} channels")
    return [first.attrs["channels"] for first in firsts]


def _conv_nodes(items: list[Item]) -> list[Node]:
    found = []
    for item in items:
        if isinstance(item, Block):
            found += _conv_nodes([member for branch in item.branches for member in branch])
        elif item.op == "layer" and item.attrs["kind"] in ("conv", "separable"):
            found.append(item)
    return found


def choose_defaults(structure: Structure) -> dict[str, Any]:
    """``defaults.conv``: the settings most convs have (the others then say how they differ)."""
    items = structure.body + [member for _, _, head in structure.aux for member in head]
    counted = Counter(tuple(clean(n.attrs[key]) for key in CONV_SETTINGS) for n in _conv_nodes(items))
    if not counted:
        return {"norm": "none", "activation": "relu", "bias": True}
    norm, activation, bias, eps, momentum = counted.most_common(1)[0][0]
    defaults = {"norm": norm, "activation": activation, "bias": bias}
    if norm == "batch":
        defaults.update({k: v for k, v in (("bn_eps", eps), ("bn_momentum", momentum)) if v != BUILTIN[k]})
    return defaults


def sections(items: list[Item]) -> tuple[list[Item], list[Item], list[Item]]:
    """stem (before the first block), blocks, head (from the pooling or classifier after the last)."""
    blocks_at = [i for i, item in enumerate(items) if isinstance(item, Block)]
    first = blocks_at[0] if blocks_at else 0
    after = blocks_at[-1] + 1 if blocks_at else 0
    head = next((i for i in range(after, len(items)) if _kind(items[i]) in _HEAD_KINDS), len(items))
    if head == first:  # blocks may not be empty
        return [], items[:head] or items, items[head:] if items[:head] else []
    return items[:first], items[first:head], items[head:]


def _output(item: Item) -> str:
    return item.output if isinstance(item, Node) else item.merge.output


def spec_data(
    structure: Structure, input_shape: Shape, name: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """Spec data (before validation), the weights by ``state_dict`` key, and the tensor each
    top-level entry (stem, block and head layers, aux heads) computes, by the entry's name."""
    defaults = choose_defaults(structure)
    emitter = _Emitter(defaults)
    stem, blocks, _ = sections(structure.body)
    body = emitter.items(structure.body, (), "")
    tops = {_output(item): entry["name"] for item, entry in zip(structure.body, body)}
    computed = {name: tensor for tensor, name in tops.items()}
    data: dict[str, Any] = {"format": 1, "name": name}
    data["input"] = dict(zip(("channels", "height", "width"), input_shape))
    data["defaults"] = {"conv": defaults}
    data["stem"], data["blocks"] = body[: len(stem)], body[len(stem) : len(stem) + len(blocks)]
    data["head"] = body[len(stem) + len(blocks) :]
    tail = data["head"] or data["blocks"]  # empty for a network of stem layers only (the spec says so)
    if tail and tail[-1].get("kind") == "linear":
        data["num_classes"] = tail[-1]["out"]
        tail[-1]["out"] = "num_classes"
    aux = []
    for index, (tap, weight, items) in enumerate(
        sorted(structure.aux, key=lambda a: list(tops).index(a[0]) if a[0] in tops else 0)
    ):
        scope = _common(_named(items))
        head_name = (
            sanitize(scope[0]) if scope and sanitize(scope[0]) not in tops.values() else f"aux{index + 1}"
        )
        layers = emitter.items(items, scope[:1], head_name)
        if layers and layers[-1].get("kind") == "linear" and layers[-1]["out"] == data.get("num_classes"):
            layers[-1]["out"] = "num_classes"
        aux.append(
            {"name": head_name, "tap": tops.get(tap, tap), "loss_weight": clean(weight), "layers": layers}
        )
        if items:
            computed[head_name] = _output(items[-1])
    if aux:
        data["aux_heads"] = aux
    return data, emitter.weights, computed
