"""Constant folding for the ONNX importer: nodes whose inputs are all constants are evaluated.

``torch.onnx.export(..., optimize=False)`` (``archbuild export --no-optimize``) writes the
shape arithmetic the optimizer would have folded: a conv without bias reads
``Expand(CastLike(0, x), Shape(weight))``, a reshape reads ``Concat(Unsqueeze(…))``. Such
nodes are evaluated here with onnx's reference evaluator, a fixed set of ops only and each
bounded in size before it runs, so a hostile file cannot make the importer allocate without
limit: a node over the bound (or past the import's total) is left unevaluated, and whatever
needs its value is reported.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["MAX_FOLDED_TOTAL", "MAX_FOLD_ELEMENTS", "fold_node"]

MAX_FOLD_ELEMENTS = 1 << 22  # per input and per output: 16 MiB of float32
MAX_FOLDED_TOTAL = 1 << 26  # all the values one import computes: 256 MiB of float32
_ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Equal", "Less", "Greater", "Where"}
_UNARY = {"Cast", "Neg", "Sqrt", "Reciprocal", "Abs", "Identity", "Floor", "Ceil", "Not"}
_SHRINKING = {"Squeeze", "Unsqueeze", "Reshape", "Slice", "Transpose", "Flatten"}
_COUNTED = {"Expand", "ConstantOfShape", "Tile", "Range", "Gather", "Concat", "CastLike"}
FOLDABLE = _ELEMENTWISE | _UNARY | _SHRINKING | _COUNTED | {"Shape", "Size"}


def _output_size(op: str, values: list[Any]) -> int | None:
    """How many elements ``op`` would write (None: it cannot be told, so it is not run)."""
    import numpy as np

    try:
        if op in _ELEMENTWISE:
            return math.prod(np.broadcast_shapes(*(v.shape for v in values)))
        if op in _UNARY or op in _SHRINKING or op == "CastLike":
            return values[0].size
        if op == "Expand":
            return math.prod(np.broadcast_shapes(values[0].shape, tuple(int(d) for d in values[1])))
        if op == "ConstantOfShape":
            return math.prod(int(d) for d in values[0].reshape(-1))
        if op == "Tile":
            return values[0].size * math.prod(int(r) for r in values[1].reshape(-1))
        if op == "Range":
            start, limit, delta = (float(v) for v in values)
            return max(0, math.ceil((limit - start) / delta)) if delta else None
        if op == "Gather":
            return values[0].size * max(1, values[1].size)
        if op == "Concat":
            return sum(v.size for v in values)
    except (ValueError, TypeError, OverflowError, ZeroDivisionError):
        return None
    return None


def _shape_of(node: Any, shape: tuple[int, ...]) -> Any:
    import numpy as np

    if node.op_type == "Size":
        return np.array(math.prod(shape), np.int64)
    attrs = {a.name: a.i for a in node.attribute}
    return np.array(shape[attrs.get("start", 0) : attrs.get("end", len(shape))], np.int64)


def fold_node(
    node: Any, values: list[Any], opsets: list[Any], budget: int = MAX_FOLD_ELEMENTS
) -> list[Any] | None:
    """The outputs of ``node`` given its input ``values`` (numpy arrays, None for an omitted
    optional input; for CastLike's second input only the dtype matters), or None where it is
    not an op folded here or its output would be larger than ``budget`` elements (at most
    :data:`MAX_FOLD_ELEMENTS`)."""
    if node.op_type not in FOLDABLE or node.domain not in ("", "ai.onnx"):
        return None
    given = [v for t, v in zip(node.input, values) if t]
    if node.op_type in ("Shape", "Size") and given and given[0] is not None:
        return [_shape_of(node, given[0].shape)]  # reads no values: any size
    if any(v is None or v.size > MAX_FOLD_ELEMENTS for v in given):
        return None
    size = _output_size(node.op_type, given)
    if size is None or size < 0 or size > min(budget, MAX_FOLD_ELEMENTS):
        return None
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    names = [f"in{i}" if t else "" for i, t in enumerate(node.input)]
    one = helper.make_node(
        node.op_type, names, [f"out{i}" for i in range(len(node.output))], domain=node.domain
    )
    one.attribute.extend(node.attribute)
    graph = helper.make_graph(
        [one],
        "fold",
        [helper.make_empty_tensor_value_info(n) for n in names if n],
        [helper.make_empty_tensor_value_info(f"out{i}") for i in range(len(node.output))],
    )
    model = helper.make_model(graph, opset_imports=list(opsets))
    try:
        feeds = {n: v for n, v in zip(names, values) if n}
        return list(ReferenceEvaluator(model).run(None, feeds))
    except Exception:  # the reference evaluator's own errors: the value stays unknown
        return None
