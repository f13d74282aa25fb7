"""Recover the nesting of a fused graph: a chain of layers is a sequence; paths that read one
tensor and meet at a Concat or Add are a multi-branch block (nested as deep as they go).

The graph must be series-parallel (every fork closes at one merge); anything else is
reported, naming the op where the paths cross.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from archbuilder.importers.graph import Graph, Node, Unsupported

__all__ = ["Block", "Item", "Structure", "StructureError", "recover"]

MERGES = ("concat", "add")
# Node visits while recovering the nesting: the walks are linear per block, so a chain of B
# blocks costs about B × the graph's size. The shipped references and torchvision's models need
# under 30,000; a chain of 1,000 residual blocks 4 million, of 8,000 over 250 million (minutes).
MAX_STEPS = 5_000_000


@dataclass
class Block:
    """A fork that closes at ``merge``: one item list per merge input (empty: the identity)."""

    merge: Node
    branches: list[list[Item]]
    scales: list[float] = field(default_factory=list)


Item = Union[Node, Block]


@dataclass
class Structure:
    body: list[Item]
    aux: list[tuple[str, float, list[Item]]]  # (tap tensor, loss weight, items)


class StructureError(Exception):
    def __init__(self, problem: Unsupported):
        super().__init__(str(problem))
        self.problem = problem


class _Recovery:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.order = {id(node): index for index, node in enumerate(graph.nodes)}
        self.producer = graph.producer()
        self.readers = graph.consumers()
        self.by_id = {id(node): node for node in graph.nodes}
        self._ancestors: dict[str, frozenset[int]] = {}
        self.steps = 0

    def charge(self, steps: int, node: Node | None) -> None:
        """Count ``steps`` node visits; a StructureError naming ``node`` past :data:`MAX_STEPS`."""
        self.steps += steps
        if self.steps > MAX_STEPS:
            raise self.fail(
                node,
                f"recovering the nesting of {len(self.graph.nodes):,} ops took over {MAX_STEPS:,} steps; "
                "the network has too many multi-branch blocks in a row to import",
            )

    def ancestors(self, tensor: str) -> frozenset[int]:
        """Ids of the nodes ``tensor`` depends on (its producer included)."""
        if tensor not in self._ancestors:
            found: set[int] = set()
            stack = [tensor]
            while stack:
                node = self.producer.get(stack.pop())
                if node is not None and id(node) not in found:
                    found.add(id(node))
                    stack.extend(node.inputs)
            self.charge(len(found), self.producer.get(tensor))
            self._ancestors[tensor] = frozenset(found)
        return self._ancestors[tensor]

    def fail(self, node: Node | None, reason: str) -> StructureError:
        """The error naming ``node``, or the network when no node writes the tensor at fault."""
        if node is None:
            return StructureError(Unsupported("(network)", "-", reason))
        return StructureError(Unsupported(node.name, node.source_op or node.op, reason))

    def sequence(self, start: str, stop: str, allowed: frozenset[int]) -> list[Item]:
        items: list[Item] = []
        tensor = start
        while tensor != stop:
            readers = self.readers_within(tensor, allowed)
            if not readers:
                raise self.fail(self.producer.get(stop), f"its input does not lead back to {start}")
            if len(readers) == 1 and readers[0].op not in MERGES:
                items.append(readers[0])
                tensor = readers[0].output
                continue
            block = self.block(tensor, stop, allowed, readers)
            items.append(block)
            tensor = block.merge.output
        return items

    def readers_within(self, tensor: str, allowed: frozenset[int]) -> list[Node]:
        """The readers of ``tensor`` among ``allowed``, in graph order (each branch of a wide
        fork is walked from the fork: filter the smaller of the two, not every reader each time)."""
        readers = self.readers.get(tensor, [])
        if len(allowed) >= len(readers):
            return [node for node in readers if id(node) in allowed]
        found = [self.by_id[i] for i in allowed if tensor in self.by_id[i].inputs]
        return sorted(found, key=lambda node: self.order[id(node)])

    def block(self, tensor: str, stop: str, allowed: frozenset[int], readers: list[Node]) -> Block:
        merge = self.closing_merge(tensor, stop, allowed)
        if merge is None:
            raise self.fail(readers[0], f"the paths that read {tensor} never meet at one Concat or Add")
        region = frozenset(i for i in self.ancestors(merge.output) if i in allowed) - {id(merge)}
        region -= self.ancestors(tensor)
        branches, seen = [], set()
        for source in merge.inputs:
            if source == tensor:
                branches.append([])
                continue
            nodes = self.ancestors(source) & region
            if nodes & seen:
                raise self.fail(merge, "two of its inputs share ops (the paths cross)")
            seen |= nodes
            branches.append(self.sequence(tensor, source, nodes))
        if seen != region:
            raise self.fail(merge, f"some paths from {tensor} leave the block before it")
        return Block(merge, branches)

    def closing_merge(self, tensor: str, stop: str, allowed: frozenset[int]) -> Node | None:
        """The first merge every path from ``tensor`` to ``stop`` passes through."""
        below = self.ancestors(stop) & allowed
        self.charge(len(self.graph.nodes), self.producer.get(tensor))
        candidates = [n for n in self.graph.nodes if id(n) in below and n.op in MERGES]
        after = self.order[id(self.producer[tensor])] if tensor in self.producer else -1
        for merge in candidates:
            if self.order[id(merge)] > after and self.dominates(merge, tensor, stop, below):
                return merge
        return None

    def dominates(self, merge: Node, tensor: str, stop: str, allowed: frozenset[int]) -> bool:
        seen, stack = {tensor}, [tensor]
        while stack:
            for node in self.readers.get(stack.pop(), []):
                if node is merge or id(node) not in allowed or node.output in seen:
                    continue
                if node.output == stop:
                    return False
                seen.add(node.output)
                stack.append(node.output)
        self.charge(len(seen), merge)
        return stop != tensor


def recover(graph: Graph) -> Structure:
    """The nested structure of a fused graph; StructureError when it is not series-parallel."""
    recovery = _Recovery(graph)
    main = recovery.ancestors(graph.output)
    body = recovery.sequence(graph.input, graph.output, main)
    aux = []
    for tensor, weight in graph.aux:
        nodes = recovery.ancestors(tensor) - main
        taps = {t for i in nodes for t in recovery.by_id[i].inputs} - {
            recovery.by_id[i].output for i in nodes
        }
        if len(taps) != 1:
            producer = recovery.producer[tensor]
            raise recovery.fail(
                producer, f"the loss branch reads {len(taps)} tensors of the network, not one"
            )
        tap = taps.pop()
        aux.append((tap, weight, recovery.sequence(tap, tensor, frozenset(nodes))))
    return Structure(body, aux)
