"""Squeeze-and-excitation gates in the importer graph: ``x · gate(conv(act(conv(pool(x)))))``
becomes one ``se`` node (torchvision's ``SqueezeExcitation``; MobileNetV3, EfficientNet).

The converter writes a product of two computed tensors that is not ``x · sigmoid(x)`` as a
``mul`` node; :func:`fold_gates` replaces each one that closes such a gate, its pool, convs
and activations read by nothing else, and reports the others.
"""

from __future__ import annotations

from archbuilder.importers.graph import Node, Unsupported

__all__ = ["fold_gates"]

_GATES = ("sigmoid", "hardsigmoid")
_MUL = "multiplies two tensors that are neither x · sigmoid(x) (silu) nor a squeeze-and-excitation gate"


def _pointwise(node: Node | None) -> bool:
    """A 1×1 conv with bias, stride 1, no padding and one group (a gate's fully connected layer)."""
    if node is None or node.op != "conv":
        return False
    a = node.attrs
    return (
        a["kernel"] == (1, 1)
        and a["stride"] == (1, 1)
        and a["padding"] == (0, 0)
        and a.get("dilation", (1, 1)) == (1, 1)
        and a["groups"] == 1
        and a["bias"]
    )


class _Gates:
    def __init__(self, nodes: list[Node], outputs: set[str]):
        self.nodes = nodes
        self.producer = {node.output: node for node in nodes}
        self.readers: dict[str, list[Node]] = {}
        for node in nodes:
            for tensor in dict.fromkeys(node.inputs):
                self.readers.setdefault(tensor, []).append(node)
        self.outputs = outputs

    def private(self, node: Node | None, reader: Node) -> Node | None:
        """``node`` if ``reader`` is the only one reading its output."""
        if node is None or node.output in self.outputs or self.readers.get(node.output) != [reader]:
            return None
        return node

    def chain(self, mul: Node) -> tuple[str, list[Node]] | None:
        """(the gated tensor, the gate's nodes from pool to gate) for a ``mul`` that closes a gate."""
        for x, g in (mul.inputs, mul.inputs[::-1]):
            gate = self.private(self.producer.get(g), mul)
            if gate is None or gate.op != "act" or gate.attrs["function"] not in _GATES:
                continue
            fc2 = self.private(self.producer.get(gate.inputs[0]), gate)
            if not _pointwise(fc2):
                continue
            act = self.private(self.producer.get(fc2.inputs[0]), fc2)
            inner = act if act is not None and act.op == "act" else None
            fc1 = self.private(self.producer.get(inner.inputs[0] if inner else fc2.inputs[0]), inner or fc2)
            if not _pointwise(fc1):
                continue
            pool = self.private(self.producer.get(fc1.inputs[0]), fc1)
            if pool is None or pool.op != "global_avgpool" or pool.inputs != [x]:
                continue
            nodes = [pool, fc1, *([inner] if inner else []), fc2, gate]
            if fc2.attrs["out"] == self.width(x, fc1):
                return x, nodes
        return None

    def width(self, x: str, fc1: Node) -> int:
        """The channels of ``x``: the input width of the squeeze conv's weight (one group)."""
        weight = fc1.weights.get("weight")
        return int(weight.shape[1]) if weight is not None else -1

    def gate(self, mul: Node, x: str, parts: list[Node]) -> Node:
        _, fc1, *rest = parts
        fc2, gate = rest[-2:]
        inner = rest[0].attrs["function"] if len(rest) == 3 else "none"
        attrs = {
            "kind": "se",
            "squeeze_channels": fc1.attrs["out"],
            "activation": inner,
            "gate": gate.attrs["function"],
        }
        weights = {f"fc1.{key}": value for key, value in fc1.weights.items()}
        weights.update({f"fc2.{key}": value for key, value in fc2.weights.items()})
        scope = fc1.scope[:-1] if len(fc1.scope) > 1 else fc1.scope
        return Node(fc1.name, "se", [x], mul.output, attrs, weights, scope, "Mul")


def fold_gates(
    nodes: list[Node], outputs: set[str], *, partial: bool = False
) -> tuple[list[Node], list[Unsupported]]:
    """``nodes`` with every gate as one ``se`` node, and the ``mul`` nodes that close none.
    With ``partial``, the nodes stop before the first of those."""
    finder = _Gates(nodes, outputs)
    dropped: set[int] = set()
    replaced: dict[int, Node] = {}
    problems: list[Unsupported] = []
    for index, node in enumerate(nodes):
        if node.op != "mul":
            continue
        found = finder.chain(node)
        if found is None:
            problems.append(Unsupported(node.name, node.source_op or "Mul", _MUL))
            if partial:
                nodes = nodes[:index]
                break
            continue
        x, parts = found
        dropped.update(id(part) for part in parts)
        replaced[id(node)] = finder.gate(node, x, parts)
    kept = [replaced.get(id(node), node) for node in nodes if id(node) not in dropped]
    return kept, problems
