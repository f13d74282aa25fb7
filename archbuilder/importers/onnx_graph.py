"""ONNX models (``.onnx``) → the importer graph, weights from the initializers.

Needs the ``onnx`` package (imported here only; without it, MissingExtra naming the ``onnx``
extra). Shape computations (``Shape``, ``Gather`` … feeding a ``Reshape``) are not data and
are skipped; a ``Reshape`` or ``Flatten`` to N×features is a flatten. Names come from the weights' names (``3a.branch1x1.conv.weight``)
or torch.onnx's name scopes, else the node names.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from archbuilder.core.extras import require
from archbuilder.importers.gates import fold_gates
from archbuilder.importers.graph import Graph, ImportFailure, Node, Unsupported
from archbuilder.importers.onnx_channels import ChannelOps
from archbuilder.importers.onnx_fold import MAX_FOLDED_TOTAL, fold_node
from archbuilder.importers.onnx_ops import OnnxOps, Unconvertible
from archbuilder.importers.onnx_strided import StridedOps
from archbuilder.importers.onnx_tensors import load_tensors, read_onnx
from archbuilder.importers.onnx_wiring import order_nodes, quoted, refusal

__all__ = ["onnx_file", "onnx_graph"]

_PART_NAMES = {"conv", "bn", "act", "relu"}  # module parts under a layer's name (torch's Conv2d in X.conv)
_NOT_DATA = {"Shape", "Size"}


class _Converter(OnnxOps, ChannelOps, StridedOps):
    def __init__(self, model: Any, input_shape: tuple[int, int, int] | None, aux_loss_weight: float):
        from onnx import numpy_helper

        self._to_array = numpy_helper.to_array
        self.graph = model.graph
        self.opsets = list(model.opset_import)
        self.folded: set[str] = set()  # constants the importer computed (not initializers)
        self.fold_budget = MAX_FOLDED_TOTAL  # elements it may still compute
        self.sequences: dict[str, tuple[str, list[tuple[int, int]]]] = {}  # SplitToSequence: input, slices
        self.consts: dict[str, Any] = {i.name: self.to_array(i) for i in self.graph.initializer}
        self.shapes = _value_shapes(model)
        self.nodes: list[Node] = []
        self.problems: list[Unsupported] = []
        self.notes: list[str] = []
        self.alias: dict[str, str] = {}
        self.data: set[str] = set()
        self.given_shape = input_shape
        self.skip: set[int] = set()  # nodes already read as part of a pattern
        self.readers: dict[str, list[Any]] = {}
        for node in self.graph.node:
            for tensor in node.input:
                self.readers.setdefault(tensor, []).append(node)
        self.aux_loss_weight = aux_loss_weight

    def run(self, partial: bool) -> Graph:
        inputs = [i for i in self.graph.input if i.name not in self.consts]
        if len(inputs) != 1:
            raise Unconvertible(f"the graph has {len(inputs)} inputs; archbuilder networks have one")
        name = inputs[0].name
        dims = self.shapes.get(name)
        shape = (
            tuple(self.given_shape)
            if self.given_shape
            else (tuple(dims[1:]) if dims and len(dims) == 4 else None)
        )
        if shape is None or not all(isinstance(d, int) for d in shape):
            raise Unconvertible(f"input {name} is not N×C×H×W with known C, H, W; pass input_shape")
        self.data.add(name)
        self.prefold()
        for node in self.graph.node:
            if partial and self.problems:
                break
            self.convert(node)
        outputs = [self.alias_of(o.name) for o in self.graph.output]
        self.nodes, unmatched = fold_gates(self.nodes, set(outputs), partial=partial)
        self.problems.extend(unmatched)
        aux = [(o, self.aux_loss_weight) for o in outputs[1:]]
        graph = Graph(name, shape, self.nodes, outputs[0], aux, self.problems, True, self.notes)
        if dims and tuple(dims[1:]) == shape:  # ONNX inferred them for this input size
            graph.source_shapes = {
                tensor: tuple(sample)
                for tensor, (_, *sample) in ((t, d) for t, d in self.shapes.items() if d)
                if sample and all(isinstance(d, int) and d > 0 for d in sample)
            }
        return graph

    def to_array(self, tensor: Any) -> Any:
        """``tensor`` as a numpy array (its size and data were checked by load_tensors)."""
        try:
            return self._to_array(tensor)
        except (ValueError, TypeError, KeyError) as exc:  # a data type numpy cannot hold, …
            raise Unconvertible(f"tensor {quoted(tensor.name)} cannot be read: {exc}") from None

    def alias_of(self, tensor: str) -> str:
        while tensor in self.alias:
            tensor = self.alias[tensor]
        return tensor

    def const(self, tensor: str, what: str) -> Any:
        if tensor not in self.consts:
            raise Unconvertible(f"its {what} ({tensor}) is computed, not a constant")
        return self.consts[tensor]

    def prefold(self) -> None:
        """Every value that does not depend on the input's data, before the ops are read (an
        op's pattern may look ahead at constants written after it)."""
        import numpy as np
        from onnx import helper

        for node in self.graph.node:
            if node.op_type == "Constant" and len(node.attribute) == 1:
                value = helper.get_attribute_value(node.attribute[0])
                array = self.to_array(value) if hasattr(value, "dims") else np.array(value)
                self.consts[node.output[0]] = array
            else:
                self.fold(node, list(node.input))

    def convert(self, node: Any) -> None:
        if id(node) in self.skip or all(t in self.consts for t in node.output):
            return
        inputs = [self.alias_of(t) for t in node.input]
        if not any(t in self.data for t in inputs) or node.op_type in _NOT_DATA:
            return  # constants and shape arithmetic
        handler = getattr(self, f"_{node.op_type}", None)
        try:
            if handler is None:
                raise Unconvertible("no archbuilder layer computes it")
            handler(node, inputs, {a.name: _attr(a) for a in node.attribute})
        except (Unconvertible, KeyError, TypeError, ValueError, IndexError) as exc:
            reason = (
                str(exc)
                if isinstance(exc, Unconvertible)
                else f"malformed node ({type(exc).__name__}: {exc})"
            )
            self.problems.append(Unsupported(node.name or node.output[0], node.op_type, reason))
            for output in node.output:  # readers are still checked (their own problems listed too)
                if output and output not in self.data:
                    self.alias[output] = next(t for t in inputs if t in self.data)
                    self.data.add(output)

    def fold(self, node: Any, inputs: list[str]) -> bool:
        """Evaluate a node that reads only constants (CastLike also the type of a tensor)."""
        import numpy as np

        values = []
        for index, tensor in enumerate(inputs):
            if not tensor:
                values.append(None)
            elif tensor in self.consts:
                values.append(self.consts[tensor])
            elif node.op_type == "CastLike" and index == 1:
                values.append(np.empty(0, np.float32))  # the networks imported compute in float32
            else:
                return False
        outputs = fold_node(node, values, self.opsets, self.fold_budget)
        if outputs is None:
            return False
        self.fold_budget -= sum(np.size(value) for value in outputs)
        for name, value in zip(node.output, outputs):
            self.consts[name] = np.asarray(value)
            self.folded.add(name)
        return True

    def add(
        self,
        node: Any,
        op: str,
        inputs: list[str],
        attrs: dict[str, Any],
        weights: dict[str, Any] | None = None,
        output: str | None = None,
    ) -> Node:
        out = output or node.output[0]
        converted = Node(
            node.name or out, op, inputs, out, attrs, weights or {}, _scope(node, self.consts), node.op_type
        )
        self.nodes.append(converted)
        self.data.add(out)
        return converted

    def same(self, node: Any, tensor: str) -> None:
        self.alias[node.output[0]] = tensor
        self.data.add(node.output[0])


def _attr(attribute: Any) -> Any:
    from onnx import helper

    value = helper.get_attribute_value(attribute)
    return value.decode() if isinstance(value, bytes) else value


def _scope(node: Any, consts: dict[str, Any]) -> tuple[str, ...]:
    """The node's module path: from its weight's name, torch.onnx's name scopes, or its name."""
    path = None
    if len(node.input) > 1 and node.input[1].endswith(".weight") and node.input[1] in consts:
        path = node.input[1][: -len(".weight")]
    else:
        meta = {p.key: p.value for p in node.metadata_props}
        try:
            scopes = ast.literal_eval(meta.get("pkg.torch.onnx.name_scopes", "[]"))
        except (ValueError, SyntaxError):
            scopes = []
        if len(scopes) >= 3:
            path = scopes[-2]
    if not path:
        return tuple(part for part in re.split(r"[./]", node.name or node.output[0]) if part)
    parts = tuple(path.split("."))
    return parts[:-1] if len(parts) > 1 and parts[-1] in _PART_NAMES else parts


def _value_shapes(model: Any) -> dict[str, tuple]:
    from onnx import shape_inference

    try:
        inferred = shape_inference.infer_shapes(model)
    except Exception:  # a model onnx cannot infer still converts where no shape is needed
        inferred = model
    shapes = {}
    graph = inferred.graph
    for value in [*graph.input, *graph.value_info, *graph.output]:
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = tuple(d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims)
    return shapes


def onnx_graph(
    raw: bytes,
    source: str,
    *,
    folder: Path | None = None,
    allowed_roots: Iterable[str | Path] = (),
    input_shape=None,
    partial: bool = False,
    aux_loss_weight: float = 0.3,
) -> tuple[Graph, str | None]:
    """The importer graph of an ONNX file's bytes, and the graph's name.

    ``folder`` is the file's folder, where its external data may be (with ``allowed_roots``);
    None for bytes that are not a file, which then may have none.
    """
    onnx = require("onnx", needed_for="reading ONNX files")  # MissingExtra: pip install 'archbuilder[onnx]'
    try:
        model = onnx.load_from_string(raw)
    except Exception as exc:  # protobuf's DecodeError, whatever its module
        raise refusal(source, f"not an ONNX model: {exc}") from None
    load_tensors(model, source, folder, [Path(root) for root in allowed_roots])
    order_nodes(model.graph, source)
    try:
        graph = _Converter(model, input_shape, aux_loss_weight).run(partial)
    except Unconvertible as exc:
        raise ImportFailure(source, [Unsupported("(graph)", "input", str(exc))]) from None
    name = model.graph.name
    return graph, name if name and name not in ("main_graph", "torch_jit", "torch-jit-export") else None


def onnx_file(
    path: Path, *, allowed_roots: Iterable[str | Path] = (), input_shape=None, partial: bool = False
) -> tuple[Graph, str | None, bytes]:
    """The importer graph of the ONNX file ``path``, the graph's name, and the file's bytes."""
    raw = read_onnx(path)
    graph, name = onnx_graph(
        raw,
        str(path),
        folder=path.parent,
        allowed_roots=allowed_roots,
        input_shape=input_shape,
        partial=partial,
    )
    return graph, name, raw
