"""ONNX models (``.onnx``) → the importer graph, weights from the initializers.

Needs the ``onnx`` package (imported here only). Shape computations (``Shape``, ``Gather``
… feeding a ``Reshape``) are not data and are skipped; a ``Reshape`` or ``Flatten`` to
N×features is a flatten. Names come from the weights' names (``3a.branch1x1.conv.weight``)
or torch.onnx's name scopes, else the node names.
"""

from __future__ import annotations

import ast
import math
import re
from pathlib import Path
from typing import Any

from archbuilder.importers.graph import Graph, ImportFailure, Node, Unsupported

__all__ = ["onnx_graph"]

_ACTIVATIONS = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "HardSwish": "hardswish"}
_PART_NAMES = {"conv", "bn", "act", "relu"}  # module parts under a layer's name (torch's Conv2d in X.conv)
_NOT_DATA = {"Shape", "Size"}


class _Unsupported(Exception):
    pass


class _Converter:
    def __init__(self, model: Any, input_shape: tuple[int, int, int] | None, aux_loss_weight: float):
        from onnx import numpy_helper

        self.to_array = numpy_helper.to_array
        self.graph = model.graph
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
            raise _Unsupported(f"the graph has {len(inputs)} inputs; archbuilder networks have one")
        name = inputs[0].name
        dims = self.shapes.get(name)
        shape = (
            tuple(self.given_shape)
            if self.given_shape
            else (tuple(dims[1:]) if dims and len(dims) == 4 else None)
        )
        if shape is None or not all(isinstance(d, int) for d in shape):
            raise _Unsupported(f"input {name} is not N×C×H×W with known C, H, W; pass input_shape")
        self.data.add(name)
        outputs = [self.alias_of(o.name) for o in self.graph.output]
        for node in self.graph.node:
            if partial and self.problems:
                break
            self.convert(node)
        outputs = [self.alias_of(o.name) for o in self.graph.output]
        aux = [(o, self.aux_loss_weight) for o in outputs[1:]]
        return Graph(name, shape, self.nodes, outputs[0], aux, self.problems, True, self.notes)

    def alias_of(self, tensor: str) -> str:
        while tensor in self.alias:
            tensor = self.alias[tensor]
        return tensor

    def const(self, tensor: str, what: str) -> Any:
        if tensor not in self.consts:
            raise _Unsupported(f"its {what} ({tensor}) is computed, not a constant")
        return self.consts[tensor]

    def convert(self, node: Any) -> None:
        if node.op_type == "Constant":
            import numpy as np
            from onnx import helper

            value = helper.get_attribute_value(node.attribute[0])
            self.consts[node.output[0]] = self.to_array(value) if hasattr(value, "dims") else np.array(value)
            return
        if id(node) in self.skip:
            return
        inputs = [self.alias_of(t) for t in node.input]
        if not any(t in self.data for t in inputs) or node.op_type in _NOT_DATA:
            return  # constants and shape arithmetic
        handler = getattr(self, f"_{node.op_type}", None)
        try:
            if handler is None:
                raise _Unsupported("no archbuilder layer computes it")
            handler(node, inputs, {a.name: _attr(a) for a in node.attribute})
        except _Unsupported as exc:
            self.problems.append(Unsupported(node.name or node.output[0], node.op_type, str(exc)))
            for output in node.output:  # readers are still checked (their own problems listed too)
                if output and output not in self.data:
                    self.alias[output] = next(t for t in inputs if t in self.data)
                    self.data.add(output)

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

    # -- ops ---------------------------------------------------------------------
    def _Conv(self, node, inputs, a):
        weight = self.const(inputs[1], "weight")
        if weight.ndim != 4:
            raise _Unsupported(f"a {weight.ndim - 2}-D convolution (archbuilder's are 2-D)")
        attrs = dict(out=int(weight.shape[0]), kernel=tuple(int(k) for k in weight.shape[2:]))
        attrs.update(
            _window(a, attrs["kernel"]),
            groups=int(a.get("group", 1)),
            bias=len(inputs) > 2 and inputs[2] != "",
        )
        weights = {"weight": weight}
        if attrs["bias"]:
            weights["bias"] = self.const(inputs[2], "bias")
        self.add(node, "conv", inputs[:1], attrs, weights)

    def _BatchNormalization(self, node, inputs, a):
        if a.get("training_mode", 0):
            raise _Unsupported("training_mode: 1")
        keys = ("weight", "bias", "running_mean", "running_var")
        weights = {key: self.const(t, key) for key, t in zip(keys, inputs[1:5])}
        attrs = dict(eps=float(a.get("epsilon", 1e-5)), momentum=round(1 - float(a.get("momentum", 0.9)), 6))
        self.add(node, "bn", inputs[:1], attrs, weights)

    def _activation(self, node, inputs, function):
        self.add(node, "act", inputs[:1], {"function": function})

    def _Relu(self, node, inputs, a):
        self._activation(node, inputs, "relu")

    def _Sigmoid(self, node, inputs, a):
        self._activation(node, inputs, "sigmoid")

    def _Tanh(self, node, inputs, a):
        self._activation(node, inputs, "tanh")

    def _HardSwish(self, node, inputs, a):
        self._activation(node, inputs, "hardswish")

    def _Gelu(self, node, inputs, a):
        if a.get("approximate", "none") != "none":
            raise _Unsupported("approximate: tanh (archbuilder's gelu is exact)")
        self._activation(node, inputs, "gelu")

    def _LeakyRelu(self, node, inputs, a):
        if not math.isclose(a.get("alpha", 0.01), 0.01, rel_tol=1e-6):
            raise _Unsupported(f"alpha {a['alpha']} (archbuilder's leaky_relu has slope 0.01)")
        self._activation(node, inputs, "leaky_relu")

    def _Clip(self, node, inputs, a):
        low = a.get("min", self.consts.get(inputs[1]) if len(inputs) > 1 and inputs[1] else None)
        high = a.get("max", self.consts.get(inputs[2]) if len(inputs) > 2 and inputs[2] else None)
        if low is None or high is None or float(low) != 0 or float(high) != 6:
            raise _Unsupported("only Clip(0, 6), relu6")
        self._activation(node, inputs, "relu6")

    def _pool(self, node, inputs, a, op):
        if any(d != 1 for d in a.get("dilations", [1, 1])):
            raise _Unsupported("dilated pooling")
        if len(node.output) > 1 and node.output[1]:
            raise _Unsupported("its indices output is used")
        kernel = tuple(a["kernel_shape"])
        attrs = _window(a, kernel)
        attrs.pop("dilation")
        attrs.update(kernel=kernel, ceil_mode=bool(a.get("ceil_mode", 0)))
        if op == "avgpool":
            attrs["count_include_pad"] = bool(a.get("count_include_pad", 0))
        if any(2 * p > k for p, k in zip(attrs["padding"], kernel)):
            raise _Unsupported(f"padding {attrs['padding']} is more than half the kernel {kernel}")
        self.add(node, op, inputs[:1], attrs)

    def _MaxPool(self, node, inputs, a):
        self._pool(node, inputs, a, "maxpool")

    def _AveragePool(self, node, inputs, a):
        self._pool(node, inputs, a, "avgpool")

    def _GlobalAveragePool(self, node, inputs, a):
        self.add(node, "global_avgpool", inputs[:1], {})

    def _ReduceMean(self, node, inputs, a):
        axes = a.get("axes")
        if axes is None and len(inputs) > 1:
            axes = [int(x) for x in self.const(inputs[1], "axes").reshape(-1)]
        if axes is None or {x % 4 for x in axes} != {2, 3}:
            raise _Unsupported("only a mean over height and width (global average pooling)")
        if a.get("keepdims", 1):
            self.add(node, "global_avgpool", inputs[:1], {})
        else:
            pooled = self.add(node, "global_avgpool", inputs[:1], {}, output=f"{node.output[0]}#pooled")
            self.add(node, "flatten", [pooled.output], {})

    def _Flatten(self, node, inputs, a):
        if int(a.get("axis", 1)) != 1:
            raise _Unsupported("only axis: 1 (keep the batch dimension)")
        self.add(node, "flatten", inputs[:1], {})

    def _Reshape(self, node, inputs, a):
        before, after = self.shapes.get(inputs[0]), self.shapes.get(node.output[0])
        known = (
            before and after and len(after) == 2 and all(isinstance(d, int) for d in (*before[1:], after[1]))
        )
        if known and after[1] == math.prod(before[1:]):
            if len(before) == 2:
                self.same(node, inputs[0])
            else:
                self.add(node, "flatten", inputs[:1], {})
            return
        raise _Unsupported(f"only a reshape to N×features (a flatten); {before} → {after}")

    _Squeeze = _Reshape

    def _Gemm(self, node, inputs, a):
        if a.get("transA", 0):
            raise _Unsupported("transA: 1")
        weight = self.const(inputs[1], "weight") * float(a.get("alpha", 1.0))
        weight = weight if a.get("transB", 0) else weight.T
        weights = {"weight": weight}
        if len(inputs) > 2 and inputs[2]:
            weights["bias"] = (self.const(inputs[2], "bias") * float(a.get("beta", 1.0))).reshape(-1)
        self.add(
            node, "linear", inputs[:1], {"out": int(weight.shape[0]), "bias": "bias" in weights}, weights
        )

    def _MatMul(self, node, inputs, a):
        weight = self.const(inputs[1], "weight")
        if weight.ndim != 2:
            raise _Unsupported("only a matrix product with a constant 2-D weight")
        self.add(
            node, "linear", inputs[:1], {"out": int(weight.shape[1]), "bias": False}, {"weight": weight.T}
        )

    def _Add(self, node, inputs, a):
        data = [t for t in inputs if t in self.data]
        if len(data) == len(inputs):
            self.add(node, "add", inputs, {})
            return
        producer = next((n for n in self.nodes if n.output == data[0]), None)
        bias = self.consts.get(next(t for t in inputs if t not in self.data))
        if producer is None or producer.op != "linear" or producer.attrs["bias"] or bias is None:
            raise _Unsupported("adds a constant that is not a linear layer's bias")
        producer.attrs["bias"] = True
        producer.weights["bias"] = bias.reshape(-1)
        self.same(node, data[0])

    def _Mul(self, node, inputs, a):
        data = [t for t in inputs if t in self.data]
        if len(data) == 2:
            self._swish(node, data)
            return
        factor = self.consts.get(next(t for t in inputs if t not in self.data))
        if factor is None or factor.size != 1:
            raise _Unsupported("multiplies by something other than a scalar constant (a branch scale)")
        self.add(node, "scale", data, {"factor": float(factor.reshape(-1)[0])})

    def _lrn_chain(self, node, x: str) -> bool:
        """torch.onnx writes LocalResponseNorm as x / (k + alpha·avg(x², size))^beta, from
        x·x through Reshape, Pad, AveragePool, Squeeze, Mul, Add, Pow to a Div; one lrn."""
        chain, tensor = [], node.output[0]
        for op in ("Reshape", "Pad", "AveragePool", "Squeeze", "Mul", "Add", "Pow", "Div"):
            readers = self.readers.get(tensor, [])
            if len(readers) != 1 or readers[0].op_type != op:
                return False
            chain.append(readers[0])
            tensor = readers[0].output[0]
        pool, mul, add, power, div = chain[2], *chain[4:]
        size = [a.ints for a in pool.attribute if a.name == "kernel_shape"]
        values = [self.consts.get(n.input[1]) for n in (mul, add, power)]
        if (
            not size
            or size[0][1:] != [1, 1]
            or any(v is None or v.size != 1 for v in values)
            or div.input[0] != x
        ):
            return False
        alpha, k, beta = (float(v.reshape(-1)[0]) for v in values)
        self.skip.update(id(n) for n in chain)
        self.add(div, "lrn", [x], dict(size=int(size[0][0]), alpha=alpha, beta=beta, k=k))
        return True

    def _swish(self, node, inputs):
        """x · sigmoid(x) is silu; x · x opens torch.onnx's local response norm."""
        if inputs[0] == inputs[1] and self._lrn_chain(node, inputs[0]):
            return
        for x, gate in (inputs, inputs[::-1]):
            producer = next((n for n in self.nodes if n.output == gate), None)
            if (
                producer is not None
                and producer.attrs.get("function") == "sigmoid"
                and producer.inputs == [x]
            ):
                producer.attrs["function"] = "silu"
                self.same(node, gate)
                return
        raise _Unsupported("multiplies two tensors (only x · sigmoid(x), silu)")

    def _Concat(self, node, inputs, a):
        if int(a.get("axis", 1)) != 1 or any(t not in self.data for t in inputs):
            raise _Unsupported("only a concatenation of computed tensors along channels (axis 1)")
        self.add(node, "concat", inputs, {})

    def _Dropout(self, node, inputs, a):
        ratio = a.get("ratio")
        if ratio is None:
            ratio = float(self.consts[inputs[1]]) if len(inputs) > 1 and inputs[1] in self.consts else 0.5
        self.add(node, "dropout", inputs[:1], {"p": float(ratio)})

    def _Identity(self, node, inputs, a):
        self.same(node, inputs[0])

    def _LRN(self, node, inputs, a):
        attrs = dict(
            size=int(a["size"]),
            alpha=float(a.get("alpha", 1e-4)),
            beta=float(a.get("beta", 0.75)),
            k=float(a.get("bias", 1.0)),
        )
        self.add(node, "lrn", inputs[:1], attrs)

    def _Softmax(self, node, inputs, a):
        if node.output[0] not in {o.name for o in self.graph.output}:
            raise _Unsupported("a softmax inside the network (only a final one, which is left out)")
        self.notes.append(
            f"{node.name or node.output[0]}: the final Softmax is left out (archbuilder models output logits)"
        )
        self.same(node, inputs[0])

    _LogSoftmax = _Softmax


def _attr(attribute: Any) -> Any:
    from onnx import helper

    value = helper.get_attribute_value(attribute)
    return value.decode() if isinstance(value, bytes) else value


def _window(a: dict[str, Any], kernel: tuple[int, ...]) -> dict[str, Any]:
    if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise _Unsupported(f"auto_pad: {a['auto_pad']} (give explicit pads)")
    pads = list(a.get("pads", [0] * 2 * len(kernel)))
    if len(kernel) != 2:
        raise _Unsupported(f"a {len(kernel)}-D window (archbuilder's are 2-D)")
    if pads[:2] != pads[2:]:
        raise _Unsupported(f"asymmetric pads {pads} (archbuilder pads each side equally)")
    return dict(
        stride=tuple(a.get("strides", [1, 1])),
        padding=tuple(pads[:2]),
        dilation=tuple(a.get("dilations", [1, 1])),
    )


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
    raw: bytes, source: str, *, input_shape=None, partial: bool = False, aux_loss_weight: float = 0.3
) -> tuple[Graph, str | None]:
    """The importer graph of an ONNX file's bytes, and the graph's name."""
    try:
        import onnx
    except ImportError:
        raise ImportFailure(
            source, [Unsupported("(file)", "-", "reading ONNX needs the onnx package: pip install onnx")]
        ) from None
    try:
        model = onnx.load_from_string(raw)
        if any(init.data_location == onnx.TensorProto.EXTERNAL for init in model.graph.initializer):
            # weights in a file beside it (torch.onnx's default for large models)
            onnx.load_external_data_for_model(model, str(Path(source).parent))
    except Exception as exc:  # protobuf's DecodeError, a missing data file, whatever its module
        raise ImportFailure(source, [Unsupported("(file)", "-", f"not an ONNX model: {exc}")]) from None
    converter = _Converter(model, input_shape, aux_loss_weight)
    try:
        graph = converter.run(partial)
    except _Unsupported as exc:
        raise ImportFailure(source, [Unsupported("(graph)", "input", str(exc))]) from None
    name = model.graph.name
    return graph, name if name and name not in ("main_graph", "torch_jit", "torch-jit-export") else None
