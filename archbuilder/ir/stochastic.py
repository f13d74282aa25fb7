"""Stochastic depth: the rates of the ``drop_path`` layers that leave ``rate`` unset."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

import networkx as nx

__all__ = ["ramp_drop_paths", "ramp_rates"]


def ramp_rates(rate: float, count: int) -> list[float]:
    """``count`` rates from 0 to ``rate``, evenly spaced (``torch.linspace(0, rate, count)``)."""
    if count == 1:
        return [0.0]
    return [rate * index / (count - 1) for index in range(count)]


def ramp_drop_paths(graph: nx.DiGraph, rate: float, aux_heads: Collection[str]) -> None:
    """Give each unset ``drop_path`` op of the network, in network order, its rate on a linear
    ramp from 0 to ``rate`` (timm's ``drop_path_rate``); those in aux heads get 0."""
    ops = [data["op"] for _, data in graph.nodes(data=True)]
    unset = [op for op in ops if op.kind == "drop_path" and op.attrs["rate"] is None]
    body = [op for op in unset if op.item not in aux_heads]
    rates = dict(zip((op.id for op in body), ramp_rates(rate, len(body))))
    for op in unset:
        attrs = {**op.attrs, "rate": rates.get(op.id, 0.0)}
        graph.nodes[op.id]["op"] = replace(op, attrs=attrs)
