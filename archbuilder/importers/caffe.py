"""Caffe network definitions (``.prototxt``) → the importer graph.

Layers are read in file order; in-place layers (``top`` equal to ``bottom``) get a fresh
tensor name, so the graph stays acyclic. ``include``/``exclude`` phase rules are honoured
(the training phase by default). A prototxt holds no weights: Caffe keeps them in a
``.caffemodel`` (:mod:`archbuilder.importers.caffemodel` reads it).
"""

from __future__ import annotations

import math
from typing import Any

from archbuilder.importers.graph import Graph, Node, Unsupported, output_shape
from archbuilder.importers.prototxt import Message

MAX_LAYERS = 100_000  # the spec language's op budget; GoogLeNet has 142 layers

__all__ = ["MAX_LAYERS", "caffe_graph"]

_DATA = {"Data", "ImageData", "HDF5Data", "MemoryData", "WindowData", "DummyData", "Input", "Python"}
_IGNORED = {"Accuracy", "Silence"}
_LOSSES = {
    "SoftmaxWithLoss",
    "EuclideanLoss",
    "SigmoidCrossEntropyLoss",
    "HingeLoss",
    "MultinomialLogisticLoss",
}
_ACTIVATIONS = {"ReLU": "relu", "Sigmoid": "sigmoid", "TanH": "tanh"}


class _Malformed(ValueError):
    """A parameter Caffe itself would refuse (mistyped, repeated, out of range); says which."""


def _shown(value: Any) -> str:
    """``value`` as a message shows it: a message by its kind, text escaped and cut short."""
    if isinstance(value, Message):
        return "a message { ... }"
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _one(message: Message, key: str, default: Any = None) -> Any:
    """The value of a field Caffe declares singular; _Malformed where it is given twice."""
    values = message.get(key)
    if not values:
        return default
    if len(values) > 1:
        raise _Malformed(f"{key} is given {len(values)} times; it takes one value")
    return values[0]


def _checked_int(key: str, value: Any, least: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Malformed(f"{key}: {_shown(value)} is not an integer")
    if least is not None and value < least:
        raise _Malformed(f"{key}: {value} is below {least}, the least Caffe allows")
    return value


def _int(message: Message, key: str, default: int | None = None, *, least: int | None = 0) -> int:
    """A singular integer field, at least ``least`` (None: any); _Malformed where it is missing
    without a default."""
    value = _one(message, key, default)
    if value is None:
        raise _Malformed(f"{key} is missing")
    return _checked_int(key, value, least)


def _checked_float(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _Malformed(f"{key}: {_shown(value)} is not a finite number")
    return float(value)


def _float(message: Message, key: str, default: float) -> float:
    return _checked_float(key, _one(message, key, default))


def _bool(message: Message, key: str, default: bool) -> bool:
    value = _one(message, key, default)
    if not isinstance(value, bool):
        raise _Malformed(f"{key}: {_shown(value)} is not true or false")
    return value


def _text(message: Message, key: str, default: str) -> str:
    """A singular string or enum field."""
    value = _one(message, key, default)
    if not isinstance(value, str):
        raise _Malformed(f"{key}: {_shown(value)} is not a name")
    return value


def _names(message: Message, key: str) -> list[str]:
    """A repeated string field (``bottom``, ``top``, ``input``)."""
    values = message.get(key, [])
    for value in values:
        if not isinstance(value, str):
            raise _Malformed(f"{key}: {_shown(value)} is not a blob name")
    return values


def _param(message: Message, key: str) -> Message:
    """A singular message field (``convolution_param`` ...); empty where it is not written."""
    value = _one(message, key, None)
    if value is None:
        return Message(message.line)
    if not isinstance(value, Message):
        raise _Malformed(f"{key}: {_shown(value)} is not a message {{ ... }}")
    return value


def _messages(message: Message, key: str) -> list[Message]:
    """A repeated message field (``include``, ``exclude``)."""
    values = message.get(key, [])
    for value in values:
        if not isinstance(value, Message):
            raise _Malformed(f"{key}: {_shown(value)} is not a message {{ ... }}")
    return values


_SHORT = {"kernel_size": "kernel", "stride": "stride", "pad": "pad", "dilation": "dilation"}


def _pair(param: Message, name: str, default: int, *, least: int, values: int = 1) -> tuple[int, int]:
    """Caffe's ``kernel_size``/``stride``/``pad``/``dilation`` or its ``*_h``/``*_w`` pair.

    A convolution repeats the field (one value, or one per spatial axis: ``values=2``); a
    pooling takes one.
    """
    short = _SHORT[name]
    if f"{short}_h" in param or f"{short}_w" in param:
        if name in param:
            raise _Malformed(f"{name} and {short}_h/{short}_w are both given; give one of them")
        return (
            _int(param, f"{short}_h", default, least=least),
            _int(param, f"{short}_w", default, least=least),
        )
    given = param.get(name) or [default]
    if len(given) > values:
        axes = "1 or 2 values (2-D)" if values == 2 else "one value"
        raise _Malformed(f"{name} is given {len(given)} values; it takes {axes}")
    ints = [_checked_int(name, value, least) for value in given]
    return (ints[0], ints[-1])


def _size(shape: tuple[int, ...]) -> str:
    return "×".join(str(d) for d in shape)


class _Converter:
    def __init__(self, net: Message, phase: str, input_shape: tuple[int, int, int] | None):
        self.net, self.phase, self.given_shape = net, phase, input_shape
        self.nodes: list[Node] = []
        self.before: dict[int, list[Node]] = {}  # flattens placed before a node (by id), see flatten
        self.producer: dict[str, Node] = {}
        self.readers: dict[str, int] = {}  # how many nodes read each tensor
        self.problems: list[Unsupported] = []
        self.notes: list[str] = []
        self.current: dict[str, str] = {}  # Caffe blob name -> its latest tensor
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.suffixes: dict[str, int] = {}  # the next suffix tried for a fresh tensor name
        self.input: str | None = None
        self.losses: list[tuple[str, float]] = []
        self.broken: set[str] = set()  # outputs of layers that could not be imported

    stop_early = False

    def fail(self, layer: Message, reason: str) -> None:
        """A problem with ``layer``, named by its name and type (whatever they hold) and line."""
        name, kind = ((layer.get(key) or ["?"])[0] for key in ("name", "type"))
        name, kind = (value if isinstance(value, str) else _shown(value) for value in (name, kind))
        self.problems.append(Unsupported(name, kind, f"{reason} (line {layer.line})"))

    def fail_file(self, what: str, reason: str) -> None:
        self.problems.append(Unsupported("(file)", what, reason))

    def included(self, layer: Message) -> bool:
        def phases(key: str) -> set[str]:
            return {_text(rule, "phase", "") for rule in _messages(layer, key)}

        include = phases("include") if layer.get("include") else None
        if include is not None and self.phase not in include:
            return False
        return self.phase not in phases("exclude")

    def run(self) -> Graph:
        self.check_name()
        self.top_level_input()
        if "layers" in self.net and "layer" not in self.net:
            self.fail_file("layers", "the V1 'layers' format; upgrade it with Caffe's upgrade_net_proto_text")
        last = None
        layers = self.net.get("layer", [])
        for index, layer in enumerate(layers[:MAX_LAYERS]):
            if self.problems and self.stop_early:
                break
            if not isinstance(layer, Message):
                self.fail_file("layer", f"layer {index + 1} is {_shown(layer)}, not a message {{ ... }}")
                continue
            last = self.layer(layer) or last
        if len(layers) > MAX_LAYERS:
            where = layers[MAX_LAYERS].line if isinstance(layers[MAX_LAYERS], Message) else "?"
            self.fail_file(
                "layer",
                f"more than {MAX_LAYERS:,} layers (line {where}); the importer reads no more "
                "(--partial imports the first of them)",
            )
        return self.graph(last)

    def check_name(self) -> None:
        try:
            _text(self.net, "name", "")
        except _Malformed as exc:
            self.fail_file("name", str(exc))

    def graph(self, last: str | None) -> Graph:
        if self.input is None:
            self.fail_file("input", "no input: give an Input or Data layer, or input_shape")
            return Graph("data", (1, 1, 1), [], "data", problems=self.problems)
        if self.losses:
            main = max(range(len(self.losses)), key=lambda i: (self.losses[i][1], i))
            output = self.losses[main][0]
            aux = [loss for i, loss in enumerate(self.losses) if i != main]
        else:
            output, aux = last or self.input, []
        if output == self.input and not self.problems:  # else those problems say why
            self.fail_file(
                "layer", "no layer computes the network's output (it is the input); nothing to import"
            )
        nodes = [ordered for node in self.nodes for ordered in (*self.before.get(id(node), ()), node)]
        return Graph(
            self.input, self.shapes[self.input], nodes, output, aux, self.problems, False, self.notes
        )

    def fresh(self, base: str) -> str:
        """A tensor name not yet used: ``base``, else ``base#1``, ``base#2`` ..."""
        if base not in self.shapes:
            return base
        suffix = self.suffixes.get(base, 1)
        while f"{base}#{suffix}" in self.shapes:
            suffix += 1
        self.suffixes[base] = suffix + 1
        return f"{base}#{suffix}"

    # -- inputs ------------------------------------------------------------------
    def top_level_input(self) -> None:
        try:
            names = _names(self.net, "input")
            if not names:
                return
            shapes = _messages(self.net, "input_shape")  # one per input; the first is the network's
            dims = shapes[0].get("dim", []) if shapes else self.net.get("input_dim", [])
            self.set_input(names[0], dims[1:4] if len(dims) >= 4 else None, "(file)")
        except _Malformed as exc:
            self.fail_file("input", str(exc))

    def set_input(self, blob: str, dims: list | None, where: str) -> None:
        if self.given_shape is not None:
            shape = tuple(self.given_shape)
        elif dims is not None and len(dims) == 3:
            shape = tuple(_checked_int("dim", d, 1) for d in dims)
        else:
            self.problems.append(
                Unsupported(where, "input", "the input shape is not written; pass input_shape (C, H, W)")
            )
            shape = (1, 1, 1)
        self.input = self.current[blob] = blob
        self.shapes[blob] = shape

    def data_layer(self, layer: Message) -> None:
        tops = _names(layer, "top")
        for label in tops[1:]:  # labels feed losses and accuracies only
            self.current[label] = label
        if self.input is not None or not tops:
            return
        kind, name = _text(layer, "type", ""), _text(layer, "name", "?")
        shapes = _messages(_param(layer, "input_param"), "shape") if kind == "Input" else []
        dims = shapes[0].get("dim", []) if shapes else []
        if len(dims) == 4:
            self.set_input(tops[0], dims[1:], name)
            return
        crop = _param(layer, "transform_param").get("crop_size")
        if crop is not None and self.given_shape is None:
            size = _int(_param(layer, "transform_param"), "crop_size", least=1)
            self.notes.append(
                f"input: {name} crops to {size}×{size}; its channels are not written, 3 assumed"
            )
            self.set_input(tops[0], [3, size, size], name)
        else:
            self.set_input(tops[0], None, name)

    # -- layers ------------------------------------------------------------------
    def layer(self, layer: Message) -> str | None:
        """Convert one layer; its problems (whatever the file holds) are reported, never raised."""
        problems = len(self.problems)
        inputs: list[str] = []
        try:
            if not self.included(layer):
                return None
            inputs = self.inputs(layer)
            if inputs is None:
                return None
            return self.convert(layer, inputs)
        except _Malformed as exc:
            self.fail(layer, f"malformed parameters: {exc}")
        except (LookupError, TypeError, ValueError, ArithmeticError) as exc:  # a check this file missed
            self.fail(layer, f"malformed parameters ({type(exc).__name__}: {exc})")
        finally:
            if len(self.problems) > problems or any(t in self.broken for t in inputs or ()):
                self.mark_broken(layer, inputs or [])  # later layers are still checked, not built
        return None

    def inputs(self, layer: Message) -> list[str] | None:
        """The tensors ``layer`` reads; None (a problem reported) where one is not written yet."""
        bottoms = _names(layer, "bottom")
        missing = [b for b in bottoms if b not in self.current]
        if missing:
            self.fail(layer, f"reads {', '.join(missing)}, which no earlier layer writes")
            return None
        return [self.current[b] for b in bottoms]

    def convert(self, layer: Message, inputs: list[str]) -> str | None:
        kind = _text(layer, "type", "")
        _text(layer, "name", "")  # a name, as every message about the layer shows it
        if kind in _DATA:
            self.data_layer(layer)
            return None
        if kind in _IGNORED:
            return None
        if kind in _LOSSES:
            weights = layer.get("loss_weight", [1.0])  # one per top
            weight = _checked_float("loss_weight", weights[0])
            if weight > 0 and inputs:
                self.losses.append((inputs[0], weight))
            return None
        handler = _HANDLERS.get(kind.lower())
        if handler is None:
            self.fail(layer, "no archbuilder layer computes it")
            return None
        least, most = _ARITY.get(kind.lower(), (1, 1))
        if not least <= len(inputs) <= (most or len(inputs)):
            reads = f"{least}" if least == most else f"at least {least}"
            raise _Malformed(f"it reads {len(inputs)} blobs (bottom); a {kind} reads {reads}")
        result = handler(self, layer, inputs)
        if result is None or any(t in self.broken for t in inputs):
            return None
        op, attrs = result
        return self.add(layer, op, inputs, attrs)

    def mark_broken(self, layer: Message, inputs: list[str]) -> None:
        """The layer's outputs exist (so readers are checked) but are not built; shape guessed."""
        shape = (
            self.shapes.get(inputs[0], self.shapes.get(self.input or "", (1, 1, 1))) if inputs else (1, 1, 1)
        )
        for top in layer.get("top", []):
            tensor = self.fresh(f"{top}#broken")
            self.broken.add(tensor)
            self.shapes[tensor] = shape
            self.current[str(top)] = tensor

    def add(self, layer: Message, op: str, inputs: list[str], attrs: dict[str, Any]) -> str:
        name = _text(layer, "name", op)
        tops = _names(layer, "top")
        top = tops[0] if tops else name
        node = Node(
            name, op, inputs, "", attrs, scope=tuple(name.split("/")), source_op=_text(layer, "type", "")
        )
        shape = output_shape(node, [self.shapes[t] for t in inputs])
        if any(d < 1 for d in shape):
            sizes = " and ".join(_size(self.shapes[t]) for t in inputs)
            raise _Malformed(
                f"its output would be {_size(shape)} from {sizes}: its window is larger than its input"
            )
        node.output = self.fresh(top)
        self.record(node, shape)
        self.current[top] = node.output
        return node.output

    def record(self, node: Node, shape: tuple[int, ...]) -> None:
        self.nodes.append(node)
        self.producer[node.output] = node
        self.shapes[node.output] = shape
        for tensor in node.inputs:
            self.readers[tensor] = self.readers.get(tensor, 0) + 1

    def _convolution(self, layer: Message, inputs: list[str]):
        p = _param(layer, "convolution_param")
        shape = self.shapes[inputs[0]]
        if len(shape) != 3:
            self.fail(layer, "a convolution needs a C×H×W input")
            return None
        attrs = dict(
            out=_int(p, "num_output", least=1),
            kernel=_pair(p, "kernel_size", 1, least=1, values=2),
            stride=_pair(p, "stride", 1, least=1, values=2),
            padding=_pair(p, "pad", 0, least=0, values=2),
            dilation=_pair(p, "dilation", 1, least=1, values=2),
            groups=_int(p, "group", 1, least=1),
            bias=_bool(p, "bias_term", True),
        )
        if shape[0] % attrs["groups"] or attrs["out"] % attrs["groups"]:
            raise _Malformed(
                f"group: {attrs['groups']} does not divide its {shape[0]} input and {attrs['out']} output channels"
            )
        return "conv", attrs

    def _innerproduct(self, layer: Message, inputs: list[str]):
        p = _param(layer, "inner_product_param")
        if _int(p, "axis", 1, least=None) != 1 or _bool(p, "transpose", False):
            self.fail(layer, "only axis: 1 without transpose is supported")
            return None
        attrs = dict(out=_int(p, "num_output", least=1), bias=_bool(p, "bias_term", True))
        if len(self.shapes[inputs[0]]) != 1:
            inputs[0] = self.flatten(inputs[0])
        return "linear", attrs

    def flatten(self, tensor: str) -> str:
        """A flatten for an InnerProduct's C×H×W input, placed after the last spatial op
        (before dropouts and activations between them) as a person writes it."""
        chain, at = [], tensor
        while at in self.producer and self.movable(self.producer[at]):
            chain.append(self.producer[at])
            at = self.producer[at].inputs[0]
        flat = self.fresh(f"{at}#flat")
        node = Node("flatten", "flatten", [at], flat, scope=("flatten",), source_op="(InnerProduct)")
        shape = (math.prod(self.shapes[at]),)
        if not chain:
            self.record(node, shape)
            return flat
        self.before.setdefault(id(chain[-1]), []).append(node)  # at keeps its count: read in its place
        chain[-1].inputs[0] = flat
        self.producer[flat], self.shapes[flat], self.readers[flat] = node, shape, 1
        for moved in reversed(chain):
            self.shapes[moved.output] = self.shapes[flat]
        return tensor

    def movable(self, node: Node) -> bool:
        """A dropout (or an activation not folded into the conv before it) alone on its input."""
        if self.readers.get(node.inputs[0]) != 1:
            return False
        before = self.producer.get(node.inputs[0])
        return node.op == "dropout" or (
            node.op == "act" and (before is None or before.op not in ("conv", "bn"))
        )

    def _pooling(self, layer: Message, inputs: list[str]):
        p = _param(layer, "pooling_param")
        pool = _text(p, "pool", "MAX")
        shape = self.shapes[inputs[0]]
        if len(shape) != 3:
            self.fail(layer, "a pooling needs a C×H×W input")
            return None
        kernel = _pair(p, "kernel_size", 1, least=1)
        stride, pad = _pair(p, "stride", 1, least=1), _pair(p, "pad", 0, least=0)
        if pool not in ("MAX", "AVE"):
            self.fail(layer, f"pool: {pool} (only MAX and AVE)")
            return None
        if _bool(p, "global_pooling", False) or (kernel == tuple(shape[1:]) and pad == (0, 0)):
            if pool == "MAX":
                self.fail(layer, "global max pooling has no archbuilder layer")
                return None
            return "global_avgpool", {}
        if any(pad[i] >= kernel[i] for i in range(2)):  # Caffe's CHECK_LT(pad, kernel)
            raise _Malformed(f"pad {pad} is not smaller than kernel_size {kernel}")
        caffe = tuple(_caffe_pooled(shape[1 + i], kernel[i], stride[i], pad[i]) for i in range(2))
        attrs = dict(kernel=kernel, stride=stride, padding=pad, ceil_mode=False)
        floor = output_shape(Node("", "maxpool", [], "", attrs), [shape])[1:]
        if floor != caffe:  # Caffe rounds up; say so only where it changes the size
            attrs["ceil_mode"] = True
            if output_shape(Node("", "maxpool", [], "", attrs), [shape])[1:] != caffe:
                self.fail(layer, f"Caffe's output size {caffe} is neither torch's floor nor ceil size")
                return None
        if pool == "AVE":
            attrs["count_include_pad"] = True
            return "avgpool", attrs
        return "maxpool", attrs

    def _lrn(self, layer: Message, inputs: list[str]):
        p = _param(layer, "lrn_param")
        if _text(p, "norm_region", "ACROSS_CHANNELS") != "ACROSS_CHANNELS":
            self.fail(layer, "norm_region: WITHIN_CHANNEL has no archbuilder layer")
            return None
        attrs = dict(
            size=_int(p, "local_size", 5, least=1),
            alpha=_float(p, "alpha", 1.0),
            beta=_float(p, "beta", 0.75),
            k=_float(p, "k", 1.0),
        )
        return "lrn", attrs

    def _relu(self, layer: Message, inputs: list[str]):
        slope = _float(_param(layer, "relu_param"), "negative_slope", 0.0)
        if slope not in (0.0, 0.01):
            self.fail(layer, f"negative_slope {slope}: only 0 (relu) and 0.01 (leaky_relu)")
            return None
        return "act", {"function": "relu" if slope == 0 else "leaky_relu"}

    def _sigmoid(self, layer: Message, inputs: list[str]):
        return "act", {"function": "sigmoid"}

    def _tanh(self, layer: Message, inputs: list[str]):
        return "act", {"function": "tanh"}

    def _dropout(self, layer: Message, inputs: list[str]):
        ratio = _float(_param(layer, "dropout_param"), "dropout_ratio", 0.5)
        if not 0 <= ratio < 1:
            raise _Malformed(f"dropout_ratio: {ratio} is not in [0, 1)")
        return "dropout", {"p": ratio}

    def _concat(self, layer: Message, inputs: list[str]):
        p = _param(layer, "concat_param")
        axis = _int(p, "axis", _int(p, "concat_dim", 1, least=0), least=None)
        if axis != 1:
            self.fail(layer, "only concatenation along channels (axis: 1)")
            return None
        shapes = [self.shapes[t] for t in inputs]
        if len({shape[1:] for shape in shapes}) != 1:
            raise _Malformed(
                f"its inputs differ in size apart from channels: {', '.join(map(_size, shapes))}"
            )
        return "concat", {}

    def _eltwise(self, layer: Message, inputs: list[str]):
        p = _param(layer, "eltwise_param")
        operation = _text(p, "operation", "SUM")
        if operation != "SUM":
            self.fail(layer, f"operation: {operation} (only SUM, an add merge)")
            return None
        shapes = [self.shapes[t] for t in inputs]
        if len(set(shapes)) != 1:
            raise _Malformed(f"its inputs differ in shape: {', '.join(map(_size, shapes))}")
        coeffs = tuple(_checked_float("coeff", c) for c in p.get("coeff", []))
        if coeffs and len(coeffs) != len(inputs):
            raise _Malformed(f"{len(coeffs)} coeff values for {len(inputs)} inputs; give one per input")
        return "add", {"scales": coeffs} if coeffs and any(c != 1 for c in coeffs) else {}

    def _split(self, layer: Message, inputs: list[str]):
        for top in _names(layer, "top"):
            self.current[top] = inputs[0]
        return None

    def _flatten(self, layer: Message, inputs: list[str]):
        return "flatten", {}

    def _softmax(self, layer: Message, inputs: list[str]):
        self.notes.append(
            f"{_text(layer, 'name', '?')}: the final Softmax is left out (archbuilder models output logits)"
        )
        for top in _names(layer, "top"):
            self.current[top] = inputs[0]
        return None

    def _batchnorm(self, layer: Message, inputs: list[str]):
        p = _param(layer, "batch_norm_param")
        momentum = round(1 - _float(p, "moving_average_fraction", 0.999), 9)
        return "bn", {"eps": _float(p, "eps", 1e-5), "momentum": momentum, "affine": False}

    def _scale(self, layer: Message, inputs: list[str]):
        producer = self.producer.get(inputs[0])
        p = _param(layer, "scale_param")
        if producer is None or producer.op != "bn" or not _bool(p, "bias_term", False) or len(inputs) != 1:
            self.fail(layer, "a Scale is supported only right after a BatchNorm, with bias_term: true")
            return None
        producer.attrs["affine"] = True  # BatchNorm + Scale is one batch norm with weight and bias
        producer.attrs["scale_layer"] = _text(layer, "name", "")  # where its weights are
        for top in _names(layer, "top"):
            self.current[top] = inputs[0]
        return None


# Caffe's layer types (matched without case) and the converter's method for each.
_HANDLERS = {
    "convolution": _Converter._convolution,
    "innerproduct": _Converter._innerproduct,
    "pooling": _Converter._pooling,
    "lrn": _Converter._lrn,
    "relu": _Converter._relu,
    "sigmoid": _Converter._sigmoid,
    "tanh": _Converter._tanh,
    "dropout": _Converter._dropout,
    "concat": _Converter._concat,
    "eltwise": _Converter._eltwise,
    "split": _Converter._split,
    "flatten": _Converter._flatten,
    "softmax": _Converter._softmax,
    "batchnorm": _Converter._batchnorm,
    "scale": _Converter._scale,
}
_ARITY = {"concat": (1, None), "eltwise": (2, None), "scale": (1, 2)}  # (least, most) bottoms; else one


def _caffe_pooled(size: int, kernel: int, stride: int, pad: int) -> int:
    out = -(-(size + 2 * pad - kernel) // stride) + 1
    if pad and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def caffe_graph(
    net: Message,
    *,
    phase: str = "TRAIN",
    input_shape: tuple[int, int, int] | None = None,
    partial: bool = False,
) -> Graph:
    """The importer graph of a parsed prototxt (see :func:`~archbuilder.importers.prototxt.parse_prototxt`)."""
    converter = _Converter(net, phase, input_shape)
    converter.stop_early = partial
    return converter.run()
