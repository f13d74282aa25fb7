"""The last check of an import: the spec it produced, lowered by the IR, computes the shapes
the source model computes, at every top-level entry (stem, block and head layers, aux heads).

A disagreement is the importer's fault (a converter that wrote an attribute wrong); it is
reported, located at the source op whose output differs, instead of giving a spec that
computes something else.
"""

from __future__ import annotations

from archbuilder.importers.graph import Graph, Shape, Unsupported
from archbuilder.ir.graph import IR

__all__ = ["shape_disagreement"]


def _size(shape: Shape) -> str:
    return "×".join(map(str, shape))


def shape_disagreement(ir: IR, computed: dict[str, str], graph: Graph) -> Unsupported | None:
    """The first top-level entry of ``ir`` whose output shape is not the source's (``graph``'s
    :attr:`~Graph.source_shapes` at the tensor the entry computes, ``computed[name]``)."""
    producer = graph.producer()
    for entry in ir.top_level:
        tensor = computed.get(entry.name)
        source = graph.source_shapes.get(tensor) if tensor is not None else None
        lowered = ir.op(entry.output).shape
        if source is None or tuple(lowered) == tuple(source):
            continue
        node = producer.get(tensor)
        reason = (
            f"the imported spec's {entry.name} computes {_size(lowered)} per sample where the source "
            f"computes {_size(source)}: an importer fault, please report it (with the file)"
        )
        if node is None:
            return Unsupported(entry.name, "-", reason)
        return Unsupported(node.name, node.source_op or node.op, reason)
    return None
