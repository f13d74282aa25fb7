"""The graph every importer produces: a network in archbuilder's terms, before it is a spec.

A node is one source op already translated to a neutral op (``conv``, ``bn``, ``act``,
``maxpool``, ``avgpool``, ``global_avgpool``, ``adaptive_avgpool``, ``lrn``, ``dropout``,
``flatten``, ``linear``, ``concat``, ``add``, ``scale``, ``slice`` (channels ``start`` … ``start +
channels - 1``), ``layer_scale``, ``layernorm``, ``mul`` (a product of two tensors), ``se``, ``channel_shuffle``) with spec-style attributes and its
weights (numpy arrays, or none for a prototxt). Tensors are names; every node writes one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from archbuilder.ir.geometry import window_output

__all__ = ["Graph", "ImportFailure", "Node", "ShapeError", "Unsupported", "infer_shapes"]

Shape = tuple[int, ...]  # one sample, no batch dimension


@dataclass(frozen=True)
class Unsupported:
    """One source op (or attribute) the importer cannot express, and why."""

    node: str
    op: str
    reason: str

    def __str__(self) -> str:
        return f"{self.node}: {self.reason}" if self.op == "-" else f"{self.node} ({self.op}): {self.reason}"


class ImportFailure(ValueError):
    """The model cannot be imported; ``problems`` lists every unsupported op at once."""

    def __init__(self, source: str, problems: list[Unsupported], *, weights: bool = False):
        self.source, self.problems = source, tuple(problems)
        if all(problem.node == "(file)" for problem in problems):  # unreadable: no ops to list
            super().__init__("\n".join(f"{source}: {problem.reason}" for problem in problems))
            return
        count = len(problems)
        plural = "s" if count > 1 else ""
        if weights:  # ``weights``: the problems are layers whose weights do not fit
            lines = [f"{source}: {count} layer{plural} whose weights do not fit:"]
            lines += [f"  {problem}" for problem in problems]
            super().__init__("\n".join(lines))
            return
        lines = [f"{source}: {count} unsupported op{plural} or attribute{plural}:"]
        lines += [f"  {problem}" for problem in problems]
        lines.append("  (--partial imports the network up to the first of them)")
        super().__init__("\n".join(lines))


@dataclass
class Node:
    name: str  # the source's name, for messages
    op: str
    inputs: list[str]
    output: str
    attrs: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, Any] = field(default_factory=dict)
    scope: tuple[str, ...] = ()  # the source's name path, for naming (module path, Caffe a/b)
    source_op: str = ""


@dataclass
class Graph:
    """Nodes in topological order; ``output`` is the main output, ``aux`` the loss-weighted others."""

    input: str
    input_shape: Shape
    nodes: list[Node]
    output: str
    aux: list[tuple[str, float]] = field(default_factory=list)
    problems: list[Unsupported] = field(default_factory=list)
    has_weights: bool = False
    notes: list[str] = field(default_factory=list)
    # shapes (one sample) the source itself states for tensors, as ONNX's shape inference
    source_shapes: dict[str, Shape] = field(default_factory=dict)

    def producer(self) -> dict[str, Node]:
        return {node.output: node for node in self.nodes}

    def consumers(self) -> dict[str, list[Node]]:
        found: dict[str, list[Node]] = {}
        for node in self.nodes:
            for tensor in dict.fromkeys(node.inputs):
                found.setdefault(tensor, []).append(node)
        return found


def _spatial(node: Node, shape: Shape) -> Shape:
    a = node.attrs
    dilation = a.get("dilation", (1, 1))
    ceil = a.get("ceil_mode", False)
    return tuple(
        window_output(shape[1 + i], a["kernel"][i], a["stride"][i], a["padding"][i], dilation[i], ceil)
        for i in range(2)
    )


# The shape rules of archbuilder's IR for the importer graph's ops. The importer needs them
# before a spec exists: fusion reads a conv's input channels (depthwise or not) and a tensor's
# rank, the Caffe reader sizes its pools (floor or ceil) and refuses windows larger than their
# input, and Caffe weights are checked against their layers' input channels. The finished
# import is checked by lowering its spec (see :mod:`.shape_check`), not by these rules.
_SAME_SHAPE = frozenset(
    # elementwise ops (``add``, ``mul``: of equal shapes) and ops that keep their input's shape
    {
        "bn",
        "act",
        "lrn",
        "dropout",
        "add",
        "mul",
        "scale",
        "layer_scale",
        "layernorm",
        "se",
        "channel_shuffle",
    }
)


def output_shape(node: Node, shapes: list[Shape]) -> Shape:
    """The output shape of ``node`` given its input shapes (the rules of archbuilder's IR);
    ShapeError for an op without a rule here."""
    first = shapes[0]
    op, a = node.op, node.attrs
    if op in _SAME_SHAPE:
        return first
    if op == "conv":
        return (a["out"], *_spatial(node, first))
    if op in ("maxpool", "avgpool"):
        return (first[0], *_spatial(node, first))
    if op == "global_avgpool":
        return (first[0], 1, 1)
    if op == "adaptive_avgpool":
        return (first[0], *a["output"])
    if op == "flatten":
        return (math.prod(first),)
    if op == "linear":
        return (a["out"],)
    if op == "concat":
        return (sum(shape[0] for shape in shapes), *first[1:])
    if op == "slice":
        return (a["channels"], *first[1:])
    reason = f"the importer has no shape rule for its op '{op}' (an importer fault: please report it)"
    raise ShapeError(Unsupported(node.name, node.source_op or op, reason))


class ShapeError(ValueError):
    """A node that cannot take the shapes of its inputs (a conv of a flattened tensor)."""

    def __init__(self, problem: Unsupported):
        super().__init__(str(problem))
        self.problem = problem


def infer_shapes(graph: Graph) -> dict[str, Shape]:
    """The shape of every tensor of ``graph``; ShapeError naming the first node whose inputs do not fit."""
    shapes: dict[str, Shape] = {graph.input: graph.input_shape}
    for node in graph.nodes:
        inputs = [shapes[tensor] for tensor in node.inputs]
        try:
            shapes[node.output] = output_shape(node, inputs)
        except (IndexError, KeyError, TypeError, ZeroDivisionError):
            shown = " and ".join("×".join(map(str, shape)) for shape in inputs)
            reason = f"its input of shape {shown} (per sample) does not fit a {node.op}"
            raise ShapeError(Unsupported(node.name, node.source_op or node.op, reason)) from None
    return shapes
