"""Activation memory of a lowered spec, estimated from its shapes alone (no torch).

Eager inference keeps a tensor from the op that makes it until its last reader has run;
:func:`activation_bytes` replays the ops in spec order (which is topological) and reports
the largest total alive at once. Training keeps every output for the backward pass, so
:func:`training_activation_bytes` is their sum. Both are per ``batch`` samples at
``bytes_per_element`` (4 for float32).
"""

from __future__ import annotations

from math import prod

from archbuilder.ir.graph import IR

__all__ = ["activation_bytes", "training_activation_bytes"]


def activation_bytes(ir: IR, *, batch: int = 1, bytes_per_element: int = 4) -> int:
    """Peak bytes of activations alive at once during one eval-mode forward pass."""
    order = {op_id: index for index, op_id in enumerate(ir.graph.nodes)}
    last_read = {
        op_id: max((order[reader] for reader in ir.graph.successors(op_id)), default=order[op_id])
        for op_id in ir.graph.nodes
    }
    released: dict[int, int] = {}  # step → elements freed after that step
    alive = peak = 0
    for index, op in enumerate(ir.ops()):
        alive += prod(op.shape)
        peak = max(peak, alive)
        end = last_read[op.id]
        released[end] = released.get(end, 0) + prod(op.shape)
        alive -= released.pop(index, 0)
    return peak * batch * bytes_per_element


def training_activation_bytes(ir: IR, *, batch: int = 1, bytes_per_element: int = 4) -> int:
    """Bytes of every op's output, as a training step keeps them for the backward pass."""
    return sum(prod(op.shape) for op in ir.ops()) * batch * bytes_per_element
