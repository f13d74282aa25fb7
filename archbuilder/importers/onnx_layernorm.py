"""A layer norm over the last axis written out, as exporters without LayerNormalization
(opset < 17) write it: ``(x − mean(x)) / sqrt(mean((x − mean(x))²) + ε) · weight + bias``,
ReduceMean → Sub → Pow → ReduceMean → Add → Sqrt → Div → Mul → Add."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["WrittenOut", "written_out_layer_norm"]


@dataclass
class WrittenOut:
    nodes: list[Any]  # every node of the pattern, to skip
    output: str
    weight: Any
    bias: Any
    eps: float
    weight_name: str


class _Chain:
    def __init__(self, readers: dict[str, list[Any]], consts: dict[str, Any]):
        self.readers, self.consts = readers, consts

    def reader(self, tensor: str, op: str, count: int = 1) -> Any:
        """The reader of ``tensor`` that is an ``op``, when ``tensor`` has ``count`` readers."""
        found = self.readers.get(tensor, [])
        matches = [n for n in found if n.op_type == op]
        return matches[0] if len(found) == count and len(matches) == 1 else None

    def const_input(self, node: Any, data: str) -> tuple[str, Any] | None:
        """The constant input of a two-input ``node`` whose other input is ``data``."""
        others = [t for t in node.input if t != data]
        if len(others) != 1 or others[0] not in self.consts or list(node.input).count(data) != 1:
            return None
        return others[0], self.consts[others[0]]

    def last_axis_mean(self, node: Any) -> bool:
        axes = [list(a.ints) for a in node.attribute if a.name == "axes"]
        if not axes and len(node.input) > 1 and node.input[1] in self.consts:
            axes = [[int(v) for v in self.consts[node.input[1]].reshape(-1)]]
        keep = [a.i for a in node.attribute if a.name == "keepdims"]
        return axes in ([[-1]], [[3]]) and keep in ([], [1])


def written_out_layer_norm(
    x: str, readers: dict[str, list[Any]], consts: dict[str, Any]
) -> WrittenOut | None:
    """The written-out layer norm over the last axis of the NHWC tensor ``x``, or None."""
    chain = _Chain(readers, consts)
    mean = chain.reader(x, "ReduceMean", 2)
    sub = chain.reader(x, "Sub", 2)
    if (
        mean is None
        or sub is None
        or not chain.last_axis_mean(mean)
        or list(sub.input) != [x, mean.output[0]]
    ):
        return None
    d = sub.output[0]
    power, div = chain.reader(d, "Pow", 2), chain.reader(d, "Div", 2)
    two = chain.const_input(power, d) if power is not None else None
    if div is None or two is None or two[1].size != 1 or float(two[1].reshape(-1)[0]) != 2:
        return None
    variance = chain.reader(power.output[0], "ReduceMean")
    if variance is None or not chain.last_axis_mean(variance):
        return None
    plus = chain.reader(variance.output[0], "Add")
    eps = chain.const_input(plus, variance.output[0]) if plus is not None else None
    root = chain.reader(plus.output[0], "Sqrt") if eps is not None else None
    if root is None or eps[1].size != 1 or list(div.input) != [d, root.output[0]]:
        return None
    scale = chain.reader(div.output[0], "Mul")
    weight = chain.const_input(scale, div.output[0]) if scale is not None else None
    shift = chain.reader(scale.output[0], "Add") if weight is not None else None
    bias = chain.const_input(shift, scale.output[0]) if shift is not None else None
    if bias is None or weight[1].ndim != 1 or bias[1].shape != weight[1].shape:
        return None
    nodes = [mean, sub, power, variance, plus, root, div, scale, shift]
    epsilon = float(eps[1].reshape(-1)[0])
    return WrittenOut(nodes, shift.output[0], weight[1], bias[1], epsilon, weight[0])
