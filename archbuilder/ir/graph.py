"""The graph IR: a networkx DiGraph of ops with inferred shapes, plus the block structure.

Node ids are dotted name paths (``3a.branch3x3.reduce``); each node's ``op`` attribute is
an :class:`Op`. Edges are data dependencies; an edge's ``index`` orders a merge's inputs.
The nesting (sequences, parallel blocks, aux heads) is kept beside the graph so consumers
can group nodes without re-deriving it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Union

import networkx as nx

from archbuilder.core.errors import KeyPath

__all__ = ["IR", "AuxHeadIR", "Item", "Op", "Parallel", "Sequence", "Shape", "TopLevel"]

Shape = tuple[int, ...]  # one sample: (C, H, W) for feature maps, (F,) for flat features


@dataclass(frozen=True)
class Op:
    """One operation with its resolved attributes and inferred output shape."""

    id: str
    kind: str
    attrs: Mapping[str, Any]
    shape: Shape
    params: int
    macs: int
    item: str  # the top-level stem/block/head layer or aux head this op belongs to
    spec_path: KeyPath  # where the layer is written in the spec

    @property
    def name(self) -> str:
        """The op's own name (last component of its id)."""
        return self.id.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Parallel:
    """A multi-branch block: branches that read one input, joined by a merge op."""

    id: str
    kind: str  # "inception" or "branches"
    branches: tuple[tuple[str, Sequence], ...]  # (branch name, its ops) in spec order
    merge: str  # id of the concat/add/mul op

    @property
    def name(self) -> str:
        return self.id.rsplit(".", 1)[-1]


Item = Union[str, Parallel]  # an op id, or a block


@dataclass(frozen=True)
class Sequence:
    """Items run one after another."""

    items: tuple[Item, ...] = ()


@dataclass(frozen=True)
class AuxHeadIR:
    """An auxiliary classifier reading the output of the top-level item ``tap`` (for a
    repeated layer, its last copy)."""

    name: str
    tap: str
    loss_weight: float
    layers: Sequence


@dataclass(frozen=True)
class TopLevel:
    """A top-level entry of the spec: a stem/blocks/head layer or an aux head."""

    name: str
    kind: str
    section: str  # "stem", "blocks", "head" or "aux"
    output: str  # id of the op producing its output
    ops: tuple[str, ...]


@dataclass
class IR:
    """A lowered spec: graph of ops, body structure, aux heads and top-level entries."""

    name: str
    input_shape: Shape
    num_classes: int | None
    graph: nx.DiGraph
    body: Sequence
    aux_heads: tuple[AuxHeadIR, ...]
    top_level: tuple[TopLevel, ...]
    output: str  # id of the op producing the main output
    input: str = "input"
    feature_maps: tuple[str, ...] = ()  # the spec's declared stages (feature_maps), if any

    def op(self, op_id: str) -> Op:
        """The op with this id."""
        return self.graph.nodes[op_id]["op"]

    def ops(self) -> Iterator[Op]:
        """All ops in spec order, which is topological: an op is added after its inputs."""
        for _, data in self.graph.nodes(data=True):
            yield data["op"]

    def total(self, *, aux: bool = True) -> tuple[int, int]:
        """(parameters, MACs) of the whole model, with or without the aux heads."""
        aux_names = {head.name for head in self.aux_heads}
        ops = [op for op in self.ops() if aux or op.item not in aux_names]
        return sum(op.params for op in ops), sum(op.macs for op in ops)
