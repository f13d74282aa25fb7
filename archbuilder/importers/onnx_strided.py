"""torch.onnx's ``as_strided`` that changes nothing: a Reshape of a tensor to one axis, then a
Gather of positions computed from the batch size (``Shape`` → ``Range`` · stride …), as an
unoptimized export writes the re-striding of a pooled N×C×1×1 map before a permute.

The positions depend on the batch size only, so they are evaluated (with the constant folder)
for batches of 1 and 2; where both read every element in its place, the pair is the identity.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["StridedOps"]

_BATCHES = (1, 2)


class StridedOps:
    """Mixed into the converter beside :class:`~archbuilder.importers.onnx_ops.OnnxOps`."""

    def restrided(self, node: Any, x: str) -> bool:
        """Whether ``node`` (a Reshape of ``x`` to one axis) and the Gather reading it give back
        ``x`` unchanged; if so the Gather's output is ``x``."""
        dims, flat = self.shapes.get(x), self.shapes.get(node.output[0])
        readers = self.readers.get(node.output[0], [])
        if not dims or not flat or len(flat) != 1 or len(readers) != 1 or readers[0].op_type != "Gather":
            return False
        gather = readers[0]
        axis = [a.i for a in gather.attribute if a.name == "axis"]
        if axis not in ([], [0]) or not all(isinstance(d, int) for d in dims[1:]):
            return False
        for batch in _BATCHES:
            positions = self.for_batch(gather.input[1], batch)
            shape = (batch, *dims[1:])
            if positions is None or tuple(positions.shape) != shape:
                return False
            if not (positions.reshape(-1) == range(math.prod(shape))).all():
                return False
        self.skip.add(id(gather))
        self.same(node, x)
        self.same(gather, x)
        return True

    def for_batch(self, tensor: str, batch: int) -> Any:
        """The value of ``tensor`` when the input's batch is ``batch``, or None where it depends
        on more than the shapes of the data (or on ops the folder does not evaluate)."""
        import numpy as np

        from archbuilder.importers.onnx_fold import fold_node

        producer = {out: n for n in self.graph.node for out in n.output}
        needed, stack = set(), [tensor]
        while stack:
            name = stack.pop()
            if not name or name in self.consts:
                continue
            source = producer.get(name)
            if source is None:
                return None  # the graph's input itself: data
            if id(source) not in needed:
                needed.add(id(source))
                if source.op_type != "Shape":  # a Shape reads only its input's shape
                    stack.extend(source.input)
        values: dict[str, Any] = {}
        for source in self.graph.node:
            if id(source) not in needed:
                continue
            if source.op_type == "Shape":
                dims = self.shapes.get(source.input[0])
                if not dims or not all(isinstance(d, int) for d in dims[1:]):
                    return None
                # only the shape is read: a broadcast view allocates nothing, whatever the file says
                values[source.input[0]] = np.broadcast_to(np.float32(0), (batch, *dims[1:]))
            inputs = [values.get(t, self.consts.get(t)) if t else None for t in source.input]
            outputs = fold_node(source, inputs, self.opsets, self.fold_budget)
            if outputs is None:
                return None
            values.update(zip(source.output, (np.asarray(v) for v in outputs)))
        return values.get(tensor)
