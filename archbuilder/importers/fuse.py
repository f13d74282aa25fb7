"""Fold the importer graph's ops into spec layers: a conv with the batch norm and activation
after it becomes one ``conv`` layer with ``norm``/``activation``; a depthwise conv followed by
a 1×1 conv becomes a ``separable``; an activation after an add merge becomes the merge's.

A tensor read by more than one op (or tapped as an output) is never folded away, nor a batch
norm the source names as a layer apart from the conv (see :func:`_named_apart`).
"""

from __future__ import annotations

import math
from typing import Any

from archbuilder.importers.graph import Graph, Node, infer_shapes
from archbuilder.spec.layers import LAYER_NORM_EPS, Conv

__all__ = ["fuse"]

_SIMPLE = {
    "maxpool": "maxpool",
    "avgpool": "avgpool",
    "global_avgpool": "global_avgpool",
    "adaptive_avgpool": "adaptive_avgpool",
    "lrn": "lrn",
    "dropout": "dropout",
    "flatten": "flatten",
}
_BN_KEYS = ("weight", "bias", "running_mean", "running_var")
_CONV_KEYS = ("out", "kernel", "stride", "padding", "dilation", "groups", "bias")
_PRE = "order" in Conv.model_fields  # pre-activation convs, where the spec language has them


class _Fuser:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.shapes = infer_shapes(graph)
        self.readers: dict[str, list[Node]] = graph.consumers()
        self.outputs = {graph.output, *(tensor for tensor, _ in graph.aux)}
        self.used: set[int] = set()
        self.alias: dict[str, str] = {}

    def sole(self, tensor: str, op: str) -> Node | None:
        """The one op reading ``tensor``, if it is an ``op`` and nothing else reads it."""
        readers = self.readers.get(tensor, [])
        if len(readers) == 1 and readers[0].op == op and tensor not in self.outputs:
            return readers[0]
        return None

    def run(self) -> Graph:
        nodes = []
        for node in self.graph.nodes:
            if id(node) in self.used:
                continue
            fused = self.fold(node)
            fused.inputs = [self.alias.get(tensor, tensor) for tensor in fused.inputs]
            nodes.append(fused)
        output = self.alias.get(self.graph.output, self.graph.output)
        aux = [(self.alias.get(t, t), w) for t, w in self.graph.aux]
        g = self.graph
        fused = Graph(g.input, g.input_shape, nodes, output, aux, g.problems, g.has_weights, g.notes)
        fused.source_shapes = self.source_shapes(nodes)
        return fused

    def source_shapes(self, nodes: list[Node]) -> dict[str, tuple[int, ...]]:
        """The shape of each fused node's output as the source has it: that of the last op
        folded into it (a conv's batch norm, a separable's 1×1 conv), stated by the source
        where it states one of the same rank, else inferred."""
        stated = self.graph.source_shapes
        shapes = {
            tensor: stated[tensor] if len(stated.get(tensor, ())) == len(shape) else shape
            for tensor, shape in self.shapes.items()
        }
        position = {node.output: index for index, node in enumerate(self.graph.nodes)}
        last = {node.output: node.output for node in nodes}
        for tensor, kept in self.alias.items():
            if position.get(tensor, -1) > position.get(last.get(kept, kept), -1):
                last[kept] = tensor
        return {kept: shapes[tensor] for kept, tensor in last.items() if tensor in shapes}

    def absorb(self, node: Node, into: Node) -> None:
        self.used.add(id(node))
        self.alias[node.output] = into.output

    def fold(self, node: Node) -> Node:
        if node.op == "conv":
            return self.conv(node)
        if node.op == "linear":
            layer = {"kind": "linear", "out": node.attrs["out"], "bias": node.attrs["bias"]}
            return self.layer(node, layer, dict(node.weights))
        if node.op == "bn":
            pre = self.preactivated(node)
            if pre is not None:
                return pre
            layer = {"kind": "batchnorm", "eps": node.attrs["eps"], "momentum": node.attrs["momentum"]}
            return self.layer(node, layer, dict(node.weights))
        if node.op == "layernorm":
            layer = {"kind": "layernorm", "eps": node.attrs["eps"]}
            return self.layer(node, layer, dict(node.weights))
        if node.op == "se":  # attrs already a spec layer (gates.py)
            return self.layer(node, dict(node.attrs), dict(node.weights))
        if node.op == "layer_scale":
            return self.layer(node, {"kind": "layer_scale"}, dict(node.weights))
        if node.op == "act":
            return self.layer(node, {"kind": "activation", "function": node.attrs["function"]}, {})
        if node.op == "add":
            act = self.sole(node.output, "act")
            if act is not None:
                node.attrs["activation"] = act.attrs["function"]
                self.absorb(act, node)
            return node
        if node.op == "concat":
            shuffle = self.sole(node.output, "channel_shuffle")
            if shuffle is not None:  # the block's own shuffle: `shuffle: g`
                node.attrs["shuffle"] = shuffle.attrs["groups"]
                self.absorb(shuffle, node)
            return node
        if node.op == "channel_shuffle":
            return self.layer(node, {"kind": "channel_shuffle", "groups": node.attrs["groups"]}, {})
        if node.op in _SIMPLE:
            return self.layer(node, {"kind": _SIMPLE[node.op], **node.attrs}, {})
        return node  # concat, add, scale, slice: structure, not layers

    def preactivated(self, bn: Node) -> Node | None:
        """A batch norm (and activation) before a conv that the source names as one layer's
        parts (``P.bn``, ``P.conv``): one ``order: pre`` conv (DenseNet's BN → ReLU → conv)."""
        act = self.sole(bn.output, "act")
        conv = self.sole(act.output if act is not None else bn.output, "conv")
        path = bn.attrs.get("path", "")
        if (
            not _PRE
            or conv is None
            or not path.endswith(".bn")
            or conv.attrs.get("path") != f"{path[:-3]}.conv"
        ):
            return None
        a = conv.attrs
        layer = {"kind": "conv", **{key: a[key] for key in _CONV_KEYS}, "order": "pre", "norm": "batch"}
        layer.update(activation=act.attrs["function"] if act is not None else "none")
        layer.update(bn_eps=bn.attrs["eps"], bn_momentum=bn.attrs["momentum"])
        weights = {f"conv.{key}": value for key, value in conv.weights.items()}
        weights.update({f"bn.{key}": bn.weights[key] for key in _BN_KEYS if key in bn.weights})
        for part in (act, conv):
            if part is not None:
                self.absorb(part, bn)
        return Node(
            conv.name, "layer", list(bn.inputs), bn.output, layer, weights, conv.scope, conv.source_op
        )

    def unit_layer_norm(self, conv: Node) -> Node | None:
        """The layer norm over channels that is ``conv``'s unit's ``norm: layer``: the only
        reader of its output, with that norm's epsilon, not named a layer apart (``P.norm``)."""
        ln = self.sole(conv.output, "layernorm")
        if (
            ln is None
            or len(self.shapes[conv.output]) != 3
            or not math.isclose(ln.attrs["eps"], LAYER_NORM_EPS, rel_tol=1e-5)
            or _named_apart(conv, ln, "norm")
        ):
            return None
        return ln

    def layer(self, node: Node, layer: dict[str, Any], weights: dict[str, Any]) -> Node:
        return Node(
            node.name, "layer", list(node.inputs), node.output, layer, weights, node.scope, node.source_op
        )

    def conv(self, node: Node) -> Node:
        a = node.attrs
        channels = self.shapes[node.inputs[0]][0]
        pointwise = self.sole(node.output, "conv")
        if (
            a["groups"] == channels > 1
            and not a["bias"]
            and pointwise is not None
            and pointwise.attrs["kernel"] == (1, 1)
            and pointwise.attrs["stride"] == (1, 1)
            and pointwise.attrs["padding"] == (0, 0)
            and pointwise.attrs["groups"] == 1
            and a["out"] % channels == 0
        ):
            return self.separable(node, pointwise, a["out"] // channels)
        layer = {
            "kind": "conv",
            **{key: a[key] for key in _CONV_KEYS},
        }
        if a["groups"] == channels > 1:  # a spec says this one as groups: depthwise
            layer.update(groups="depthwise", same_width=a["out"] == channels)
        weights = {f"conv.{key}": value for key, value in node.weights.items()}
        return self.normed(node, node, layer, weights)

    def separable(self, depthwise: Node, pointwise: Node, multiplier: int) -> Node:
        a = depthwise.attrs
        layer = {
            "kind": "separable",
            "out": pointwise.attrs["out"],
            **{key: a[key] for key in ("kernel", "stride", "padding", "dilation")},
            "multiplier": multiplier,
            "bias": pointwise.attrs["bias"],
        }
        weights = {f"depthwise.{key}": value for key, value in depthwise.weights.items()}
        weights.update({f"pointwise.{key}": value for key, value in pointwise.weights.items()})
        self.absorb(pointwise, depthwise)
        return self.normed(depthwise, pointwise, layer, weights)

    def normed(self, node: Node, last: Node, layer: dict[str, Any], weights: dict[str, Any]) -> Node:
        """``layer`` with the batch norm and activation reading ``last``'s output folded in."""
        layer.update(norm="none", activation="none", bn_eps=1e-5, bn_momentum=0.1)
        tail = last
        bn = self.sole(tail.output, "bn")
        if bn is not None and _named_apart(last, bn):
            bn = None
        if bn is not None:
            layer.update(norm="batch", bn_eps=bn.attrs["eps"], bn_momentum=bn.attrs["momentum"])
            weights.update({f"bn.{key}": bn.weights[key] for key in _BN_KEYS if key in bn.weights})
            self.absorb(bn, node)
            tail = bn
        elif (ln := self.unit_layer_norm(last)) is not None and layer["kind"] == "conv":
            layer["norm"] = "layer"
            weights.update({f"norm.{key}": value for key, value in ln.weights.items()})
            self.absorb(ln, node)
            tail = ln
        act = self.sole(tail.output, "act")
        if act is not None:
            layer["activation"] = act.attrs["function"]
            self.absorb(act, node)
        fused = self.layer(node, layer, weights)
        if last is not node:
            self.alias[last.output] = node.output
        return fused


def _named_apart(conv: Node, bn: Node, part: str = "bn") -> bool:
    """Whether the source names the batch norm a layer of its own: the conv's weight is a part
    of a layer (``P.conv.weight``, as archbuilder and torchvision write a conv layer) and the
    batch norm's is not that layer's (``P.bn.weight``)."""
    path, norm = conv.attrs.get("path", ""), bn.attrs.get("path", "")
    return path.endswith(".conv") and norm != f"{path[: -len('.conv')]}.{part}"


def fuse(graph: Graph) -> Graph:
    """``graph`` with its ops folded into spec layers (op ``layer``, attrs a spec layer mapping)."""
    return _Fuser(graph).run()
