"""Stochastic depth: the rates of the ``drop_path`` layers that leave ``rate`` unset."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace

import networkx as nx

__all__ = ["ramp_drop_paths", "ramp_rates"]


def ramp_rates(rate: float, count: int) -> list[float]:
    """``count`` rates from 0 to ``rate``, evenly spaced (``torch.linspace(0, rate, count)``)."""
    if count == 1:
        return [0.0]
    return [rate * index / (count - 1) for index in range(count)]


def ramp_drop_paths(
    graph: nx.DiGraph,
    rate: float,
    aux_heads: Collection[str],
    ramp: str = "linear",
    blocks: Sequence[str] = (),
) -> None:
    """Give each unset ``drop_path`` op of the network, in network order, its rate on a linear
    ramp from 0 to ``rate`` (timm's ``drop_path_rate``); those in aux heads get 0.

    ``ramp="block_index"``: rate · i / N instead, i being the index of the op's top-level
    entry among the ``blocks`` entries (N of them), 0 outside them (torchvision's EfficientNet).
    """
    ops = [data["op"] for _, data in graph.nodes(data=True)]
    unset = [op for op in ops if op.kind == "drop_path" and op.attrs["rate"] is None]
    body = [op for op in unset if op.item not in aux_heads]
    if ramp == "block_index":
        index = {name: position for position, name in enumerate(blocks)}
        rates = {op.id: rate * index[op.item] / len(blocks) for op in body if op.item in index}
    else:
        rates = dict(zip((op.id for op in body), ramp_rates(rate, len(body))))
    for op in unset:
        attrs = {**op.attrs, "rate": rates.get(op.id, 0.0)}
        graph.nodes[op.id]["op"] = replace(op, attrs=attrs)
