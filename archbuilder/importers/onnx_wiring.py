"""The wiring of an ONNX graph, checked before any node is read: how many nodes there are,
that every input is provided by someone, that no tensor is written twice and that no node
depends on itself (a cycle); the nodes are then put in topological order.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Any

from archbuilder.core.escaping import for_terminal
from archbuilder.importers.graph import ImportFailure, Unsupported

__all__ = ["MAX_NODES", "all_graphs", "node_label", "order_nodes", "refusal"]

MAX_NODES = 100_000  # nodes in all of a model's graphs; torchvision's largest models have ~1,000


def refusal(source: str, reason: str) -> ImportFailure:
    """The one-line ImportFailure ``source: reason``."""
    return ImportFailure(source, [Unsupported("(file)", "-", reason)])


def quoted(name: str) -> str:
    return f"'{for_terminal(name)}'"


def node_label(node: Any) -> str:
    """``'conv1' (Conv)``: the node's name, else the tensor it writes, and its op."""
    name = node.name or (node.output[0] if node.output else "")
    return f"{quoted(name)} ({for_terminal(node.op_type)})"


def all_graphs(model: Any, source: str) -> Iterator[Any]:
    """The main graph, then every subgraph (If/Loop bodies, also inside functions); an
    ImportFailure once they hold more than :data:`MAX_NODES` nodes together."""
    stack = [model.graph]
    for function in model.functions:
        stack.extend(_subgraphs(function.node))
    count = 0
    while stack:
        graph = stack.pop()
        count += len(graph.node)
        if count > MAX_NODES:
            message = f"the model has at least {count:,} nodes, over the limit of {MAX_NODES:,}"
            raise refusal(source, message)
        yield graph
        stack.extend(_subgraphs(graph.node))


def _subgraphs(nodes: Any) -> Iterator[Any]:
    for node in nodes:
        for attribute in node.attribute:
            if attribute.HasField("g"):
                yield attribute.g
            yield from attribute.graphs


def order_nodes(graph: Any, source: str) -> None:
    """Check ``graph``'s wiring and sort its nodes topologically (in place, stable: a sorted
    graph keeps its order); an ImportFailure naming the nodes at fault."""
    provided = {value.name for value in graph.input} | {tensor.name for tensor in graph.initializer}
    writer: dict[str, int] = {}
    for index, node in enumerate(graph.node):
        for tensor in node.output:
            if tensor in writer or tensor in provided:
                raise refusal(source, _written_twice(graph, tensor, writer.get(tensor), node))
            if tensor:
                writer[tensor] = index
    readers: list[list[int]] = [[] for _ in graph.node]
    waiting = [0] * len(graph.node)
    for index, node in enumerate(graph.node):
        for tensor in dict.fromkeys(node.input):
            if tensor in writer:
                readers[writer[tensor]].append(index)
                waiting[index] += 1
            elif tensor and tensor not in provided:
                message = f"node {node_label(node)} reads {quoted(tensor)}, which no node, input or initializer provides"
                raise refusal(source, message)
    order = _topological(readers, waiting)
    if len(order) < len(graph.node):
        raise refusal(source, _cycle_message(graph, writer, set(range(len(graph.node))) - set(order)))
    if order != sorted(order):
        nodes = [graph.node[index] for index in order]
        del graph.node[:]
        graph.node.extend(nodes)


def _topological(readers: list[list[int]], waiting: list[int]) -> list[int]:
    """Kahn's algorithm, always taking the earliest ready node: the indices in a topological
    order (the nodes on or after a cycle are left out)."""
    ready = [index for index, count in enumerate(waiting) if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        index = heapq.heappop(ready)
        order.append(index)
        for reader in readers[index]:
            waiting[reader] -= 1
            if waiting[reader] == 0:
                heapq.heappush(ready, reader)
    return order


def _cycle_message(graph: Any, writer: dict[str, int], stuck: set[int]) -> str:
    """One cycle among the ``stuck`` nodes (each waits on another stuck node), in data order."""
    path: list[int] = []
    seen: dict[int, int] = {}
    index = min(stuck)
    while index not in seen:
        seen[index] = len(path)
        path.append(index)
        index = next(writer[t] for t in graph.node[index].input if t in writer and writer[t] in stuck)
    cycle = path[seen[index] :][::-1]
    first = cycle.index(min(cycle))
    cycle = cycle[first:] + cycle[:first]  # from the node written first in the file
    names = " → ".join(quoted(graph.node[i].name or graph.node[i].output[0]) for i in [*cycle, cycle[0]])
    return (
        f"the nodes {names} form a cycle (each reads what the one before it writes); an ONNX graph has none"
    )


def _written_twice(graph: Any, tensor: str, first: int | None, node: Any) -> str:
    before = "a graph input or initializer" if first is None else f"node {node_label(graph.node[first])}"
    return f"tensor {quoted(tensor)} is written by {before} and again by node {node_label(node)}; an ONNX tensor has one writer"
