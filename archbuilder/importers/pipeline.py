"""The steps every format shares: graph → fused layers → structure → validated spec."""

from __future__ import annotations

from archbuilder.core.errors import SpecError
from archbuilder.importers.convert import spec_data
from archbuilder.importers.fuse import fuse
from archbuilder.importers.graph import Graph, ImportFailure, ShapeError, Unsupported
from archbuilder.importers.result import ImportResult
from archbuilder.importers.shape_check import shape_disagreement
from archbuilder.importers.structure import StructureError, recover
from archbuilder.ir import lower
from archbuilder.spec import ArchSpec

__all__ = ["finish", "truncate"]


def truncate(graph: Graph) -> Graph:
    """The graph up to its last op that every earlier op leads to (a clean place to stop)."""
    producer = graph.producer()
    kept_aux = [(t, w) for t, w in graph.aux if t in producer]

    def ancestors(tensor: str) -> set[int]:
        found, stack = set(), [tensor]
        while stack:
            node = producer.get(stack.pop())
            if node is not None and id(node) not in found:
                found.add(id(node))
                stack.extend(node.inputs)
        return found

    aux_nodes = set().union(*(ancestors(t) for t, _ in kept_aux)) if kept_aux else set()
    index = _last_cut(graph, aux_nodes)
    if index is None:
        return Graph(graph.input, graph.input_shape, [], graph.input, [], [], graph.has_weights, graph.notes)
    kept = ancestors(graph.nodes[index].output) | aux_nodes
    nodes = [n for n in graph.nodes[: index + 1] if id(n) in kept]
    ids = {id(n) for n in nodes}
    aux = [(t, w) for t, w in kept_aux if ancestors(t) <= ids]
    output = graph.nodes[index].output
    kept_graph = Graph(graph.input, graph.input_shape, nodes, output, aux, [], graph.has_weights, graph.notes)
    kept_graph.source_shapes = graph.source_shapes
    return kept_graph


def _last_cut(graph: Graph, aux_nodes: set[int]) -> int | None:
    """The last index whose node every earlier node outside ``aux_nodes`` leads to, in linear time.

    A node outside the aux heads' ancestors has only such nodes below it, so it leads to node
    ``i`` exactly when it and each node after it up to ``i`` has a reader at or before ``i``:
    ``i`` is a cut when no earlier such node's first reader comes after ``i``.
    """
    position = {node.output: index for index, node in enumerate(graph.nodes)}
    first_reader = [len(graph.nodes)] * len(graph.nodes)
    for index, node in enumerate(graph.nodes):
        for tensor in node.inputs:
            writer = position.get(tensor)
            if writer is not None and writer < index:
                first_reader[writer] = min(first_reader[writer], index)
    last, reach = None, -1  # reach: the latest first reader among the nodes before
    for index, node in enumerate(graph.nodes):
        if reach <= index:
            last = index
        if id(node) not in aux_nodes:
            reach = max(reach, first_reader[index])
    return last


def finish(graph: Graph, *, source: str, sha256: str, format: str, name: str, partial: bool) -> ImportResult:
    stopped = None
    if graph.problems:
        if not partial:
            raise ImportFailure(source, graph.problems)
        stopped = str(graph.problems[0])
        graph = truncate(graph)
        if not graph.nodes:
            raise ImportFailure(
                source, [*graph.problems, Unsupported("(input)", "-", "nothing before it to import")]
            )
    try:
        fused = fuse(graph)
        structure = recover(fused)
        data, weights, computed = spec_data(structure, graph.input_shape, name)
    except (ShapeError, StructureError) as exc:
        raise ImportFailure(source, [exc.problem]) from None
    try:
        spec = ArchSpec.model_validate(data)
        ir = lower(spec)
    except (ValueError, SpecError) as exc:
        problem = Unsupported("(network)", "-", f"the imported spec does not validate: {exc}")
        raise ImportFailure(source, [problem]) from None
    disagreement = shape_disagreement(ir, computed, fused)
    if disagreement is not None:
        raise ImportFailure(source, [disagreement])
    return ImportResult(
        spec, source, sha256, format, weights if graph.has_weights else None, tuple(graph.notes), stopped
    )
