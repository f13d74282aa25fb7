"""Caffe network definitions (``.prototxt``) → the importer graph.

Layers are read in file order; in-place layers (``top`` equal to ``bottom``) get a fresh
tensor name, so the graph stays acyclic. ``include``/``exclude`` phase rules are honoured
(the training phase by default). A prototxt holds no weights: Caffe keeps them in a
``.caffemodel`` (:mod:`archbuilder.importers.caffemodel` reads it).
"""

from __future__ import annotations

from typing import Any

from archbuilder.importers.graph import Graph, Node, Unsupported, output_shape
from archbuilder.importers.prototxt import Message

__all__ = ["caffe_graph"]

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


def _one(message: Message, key: str, default: Any = None) -> Any:
    values = message.get(key)
    return values[0] if values else default


def _param(layer: Message, key: str) -> Message:
    return _one(layer, key, {}) or {}


def _pair(param: Message, name: str, default: int) -> tuple[int, int]:
    """Caffe's ``kernel_size``/``stride``/``pad`` (one or two values) or ``*_h``/``*_w``."""
    short = {"kernel_size": "kernel", "stride": "stride", "pad": "pad", "dilation": "dilation"}[name]
    if f"{short}_h" in param or f"{short}_w" in param:
        return (int(_one(param, f"{short}_h", default)), int(_one(param, f"{short}_w", default)))
    values = param.get(name) or [default]
    return (int(values[0]), int(values[-1] if len(values) > 1 else values[0]))


class _Converter:
    def __init__(self, net: Message, phase: str, input_shape: tuple[int, int, int] | None):
        self.net, self.phase, self.given_shape = net, phase, input_shape
        self.nodes: list[Node] = []
        self.problems: list[Unsupported] = []
        self.notes: list[str] = []
        self.current: dict[str, str] = {}  # Caffe blob name -> its latest tensor
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.input: str | None = None
        self.losses: list[tuple[str, float]] = []
        self.broken: set[str] = set()  # outputs of layers that could not be imported

    def fail(self, layer: Message, reason: str) -> None:
        self.problems.append(
            Unsupported(str(_one(layer, "name", "?")), str(_one(layer, "type", "?")), reason)
        )

    def included(self, layer: Message) -> bool:
        phases = lambda rules: {str(_one(rule, "phase", "")) for rule in rules}  # noqa: E731
        include, exclude = layer.get("include", []), layer.get("exclude", [])
        if include and self.phase not in phases(include):
            return False
        return self.phase not in phases(exclude)

    def run(self) -> Graph:
        self.top_level_input()
        if "layers" in self.net and "layer" not in self.net:
            self.problems.append(
                Unsupported(
                    "(file)",
                    "layers",
                    "the V1 'layers' format; upgrade it with Caffe's upgrade_net_proto_text",
                )
            )
        last = None
        for layer in self.net.get("layer", []):
            if self.included(layer):
                if self.problems and self.stop_early:
                    break
                last = self.layer(layer) or last
        return self.graph(last)

    stop_early = False

    def graph(self, last: str | None) -> Graph:
        if self.input is None:
            self.problems.append(
                Unsupported("(file)", "input", "no input: give an Input or Data layer, or input_shape")
            )
            return Graph("data", (1, 1, 1), [], "data", problems=self.problems)
        if self.losses:
            main = max(range(len(self.losses)), key=lambda i: (self.losses[i][1], i))
            output = self.losses[main][0]
            aux = [loss for i, loss in enumerate(self.losses) if i != main]
        else:
            output, aux = last or self.input, []
        return Graph(
            self.input, self.shapes[self.input], self.nodes, output, aux, self.problems, False, self.notes
        )

    # -- inputs ------------------------------------------------------------------
    def top_level_input(self) -> None:
        names = self.net.get("input", [])
        if not names:
            return
        dims = list(_one(self.net, "input_shape", {}).get("dim", [])) or list(self.net.get("input_dim", []))
        self.set_input(str(names[0]), dims[1:4] if len(dims) >= 4 else None, "(file)")

    def set_input(self, blob: str, dims: list | None, where: str) -> None:
        if self.given_shape is not None:
            shape = tuple(self.given_shape)
        elif dims is not None and len(dims) == 3:
            shape = tuple(int(d) for d in dims)
        else:
            self.problems.append(
                Unsupported(where, "input", "the input shape is not written; pass input_shape (C, H, W)")
            )
            shape = (1, 1, 1)
        self.input = self.current[blob] = blob
        self.shapes[blob] = shape

    def data_layer(self, layer: Message) -> None:
        tops = [str(top) for top in layer.get("top", [])]
        for label in tops[1:]:  # labels feed losses and accuracies only
            self.current[label] = label
        if self.input is not None or not tops:
            return
        kind = _one(layer, "type")
        shape_param = _one(_param(layer, "input_param"), "shape", {}) or {}
        dims = list(shape_param.get("dim", []))
        if kind == "Input" and len(dims) == 4:
            self.set_input(tops[0], dims[1:], str(_one(layer, "name")))
            return
        crop = _one(_param(layer, "transform_param"), "crop_size")
        if crop is not None and self.given_shape is None:
            self.notes.append(
                f"input: {_one(layer, 'name')} crops to {crop}×{crop}; its channels are not written, 3 assumed"
            )
            self.set_input(tops[0], [3, crop, crop], str(_one(layer, "name")))
        else:
            self.set_input(tops[0], None, str(_one(layer, "name")))

    # -- layers ------------------------------------------------------------------
    def layer(self, layer: Message) -> str | None:
        kind = str(_one(layer, "type", ""))
        if kind in _DATA:
            self.data_layer(layer)
            return None
        if kind in _IGNORED:
            return None
        bottoms = [str(b) for b in layer.get("bottom", [])]
        missing = [b for b in bottoms if b not in self.current]
        if missing:
            self.fail(layer, f"reads {', '.join(missing)}, which no earlier layer writes")
            return None
        if kind in _LOSSES:
            weight = float(_one(layer, "loss_weight", 1.0))
            if weight > 0:
                self.losses.append((self.current[bottoms[0]], weight))
            return None
        handler = getattr(self, f"_{kind.lower()}", None)
        if handler is None:
            self.fail(layer, "no archbuilder layer computes it")
            self.mark_broken(layer, [self.current[b] for b in bottoms])
            return None
        inputs = [self.current[b] for b in bottoms]
        problems = len(self.problems)
        try:
            result = handler(layer, inputs)
        except (KeyError, TypeError, ValueError, IndexError) as exc:  # a parameter missing or mistyped
            self.fail(layer, f"malformed parameters ({type(exc).__name__}: {exc})")
            result = None
        if len(self.problems) > problems or any(t in self.broken for t in inputs):
            self.mark_broken(layer, inputs)  # later layers are still checked, not built
            return None
        if result is None:
            return None
        op, attrs = result
        return self.add(layer, op, inputs, attrs)

    def mark_broken(self, layer: Message, inputs: list[str]) -> None:
        """The layer's outputs exist (so readers are checked) but are not built; shape guessed."""
        shape = (
            self.shapes.get(inputs[0], self.shapes.get(self.input or "", (1, 1, 1))) if inputs else (1, 1, 1)
        )
        for top in layer.get("top", []):
            tensor = f"{top}#broken{len(self.broken)}"
            self.broken.add(tensor)
            self.shapes[tensor] = shape
            self.current[str(top)] = tensor

    def add(self, layer: Message, op: str, inputs: list[str], attrs: dict[str, Any]) -> str:
        name = str(_one(layer, "name", op))
        top = str(_one(layer, "top", name))
        tensor = top if top not in self.shapes else f"{top}#{len(self.nodes)}"
        node = Node(
            name, op, inputs, tensor, attrs, scope=tuple(name.split("/")), source_op=str(_one(layer, "type"))
        )
        self.nodes.append(node)
        self.shapes[tensor] = output_shape(node, [self.shapes[t] for t in inputs])
        self.current[top] = tensor
        return tensor

    def _convolution(self, layer: Message, inputs: list[str]):
        p = _param(layer, "convolution_param")
        if len(self.shapes[inputs[0]]) != 3:
            self.fail(layer, "a convolution needs a C×H×W input")
            return None
        attrs = dict(
            out=int(_one(p, "num_output")),
            kernel=_pair(p, "kernel_size", 1),
            stride=_pair(p, "stride", 1),
            padding=_pair(p, "pad", 0),
            dilation=_pair(p, "dilation", 1),
            groups=int(_one(p, "group", 1)),
            bias=bool(_one(p, "bias_term", True)),
        )
        return "conv", attrs

    def _innerproduct(self, layer: Message, inputs: list[str]):
        p = _param(layer, "inner_product_param")
        if int(_one(p, "axis", 1)) != 1 or _one(p, "transpose", False):
            self.fail(layer, "only axis: 1 without transpose is supported")
            return None
        if len(self.shapes[inputs[0]]) != 1:
            inputs[0] = self.flatten(inputs[0])
        return "linear", dict(out=int(_one(p, "num_output")), bias=bool(_one(p, "bias_term", True)))

    def flatten(self, tensor: str) -> str:
        """A flatten for an InnerProduct's C×H×W input, placed after the last spatial op
        (before dropouts and activations between them) as a person writes it."""
        producer = {node.output: node for node in self.nodes}
        readers = {}
        for node in self.nodes:
            for t in node.inputs:
                readers[t] = readers.get(t, 0) + 1
        chain, at = [], tensor
        while at in producer and self.movable(producer[at], producer, readers):
            chain.append(producer[at])
            at = producer[at].inputs[0]
        flat = f"{at}#flat"
        position = self.nodes.index(chain[-1]) if chain else len(self.nodes)
        self.nodes.insert(
            position, Node("flatten", "flatten", [at], flat, scope=("flatten",), source_op="(InnerProduct)")
        )
        self.shapes[flat] = (self.shapes[at][0] * self.shapes[at][1] * self.shapes[at][2],)
        if chain:
            chain[-1].inputs[0] = flat
            for node in reversed(chain):
                self.shapes[node.output] = self.shapes[flat]
        return tensor if chain else flat

    @staticmethod
    def movable(node: Node, producer: dict[str, Node], readers: dict[str, int]) -> bool:
        """A dropout (or an activation not folded into the conv before it) alone on its input."""
        if readers.get(node.inputs[0]) != 1:
            return False
        before = producer.get(node.inputs[0])
        return node.op == "dropout" or (
            node.op == "act" and (before is None or before.op not in ("conv", "bn"))
        )

    def _pooling(self, layer: Message, inputs: list[str]):
        p = _param(layer, "pooling_param")
        pool = str(_one(p, "pool", "MAX"))
        shape = self.shapes[inputs[0]]
        kernel, stride, pad = _pair(p, "kernel_size", 1), _pair(p, "stride", 1), _pair(p, "pad", 0)
        if pool not in ("MAX", "AVE"):
            self.fail(layer, f"pool: {pool} (only MAX and AVE)")
            return None
        if _one(p, "global_pooling", False) or (kernel == tuple(shape[1:]) and pad == (0, 0)):
            if pool == "MAX":
                self.fail(layer, "global max pooling has no archbuilder layer")
                return None
            return "global_avgpool", {}
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
        if str(_one(p, "norm_region", "ACROSS_CHANNELS")) != "ACROSS_CHANNELS":
            self.fail(layer, "norm_region: WITHIN_CHANNEL has no archbuilder layer")
            return None
        attrs = dict(
            size=int(_one(p, "local_size", 5)),
            alpha=float(_one(p, "alpha", 1.0)),
            beta=float(_one(p, "beta", 0.75)),
            k=float(_one(p, "k", 1.0)),
        )
        return "lrn", attrs

    def _relu(self, layer: Message, inputs: list[str]):
        slope = float(_one(_param(layer, "relu_param"), "negative_slope", 0.0))
        if slope not in (0.0, 0.01):
            self.fail(layer, f"negative_slope {slope}: only 0 (relu) and 0.01 (leaky_relu)")
            return None
        return "act", {"function": "relu" if slope == 0 else "leaky_relu"}

    def _sigmoid(self, layer: Message, inputs: list[str]):
        return "act", {"function": "sigmoid"}

    def _tanh(self, layer: Message, inputs: list[str]):
        return "act", {"function": "tanh"}

    def _dropout(self, layer: Message, inputs: list[str]):
        return "dropout", {"p": float(_one(_param(layer, "dropout_param"), "dropout_ratio", 0.5))}

    def _concat(self, layer: Message, inputs: list[str]):
        p = _param(layer, "concat_param")
        if int(_one(p, "axis", _one(p, "concat_dim", 1))) != 1:
            self.fail(layer, "only concatenation along channels (axis: 1)")
            return None
        return "concat", {}

    def _eltwise(self, layer: Message, inputs: list[str]):
        p = _param(layer, "eltwise_param")
        operation = str(_one(p, "operation", "SUM"))
        if operation != "SUM":
            self.fail(layer, f"operation: {operation} (only SUM, an add merge)")
            return None
        coeffs = tuple(float(c) for c in p.get("coeff", []))
        return "add", {"scales": coeffs} if coeffs and any(c != 1 for c in coeffs) else {}

    def _split(self, layer: Message, inputs: list[str]):
        for top in layer.get("top", []):
            self.current[str(top)] = inputs[0]
        return None

    def _flatten(self, layer: Message, inputs: list[str]):
        return "flatten", {}

    def _softmax(self, layer: Message, inputs: list[str]):
        self.notes.append(
            f"{_one(layer, 'name')}: the final Softmax is left out (archbuilder models output logits)"
        )
        for top in layer.get("top", []):
            self.current[str(top)] = inputs[0]
        return None

    def _batchnorm(self, layer: Message, inputs: list[str]):
        p = _param(layer, "batch_norm_param")
        momentum = round(1 - float(_one(p, "moving_average_fraction", 0.999)), 9)
        return "bn", {"eps": float(_one(p, "eps", 1e-5)), "momentum": momentum, "affine": False}

    def _scale(self, layer: Message, inputs: list[str]):
        producer = next((n for n in self.nodes if n.output == inputs[0]), None)
        p = _param(layer, "scale_param")
        if producer is None or producer.op != "bn" or not _one(p, "bias_term", False) or len(inputs) != 1:
            self.fail(layer, "a Scale is supported only right after a BatchNorm, with bias_term: true")
            return None
        producer.attrs["affine"] = True  # BatchNorm + Scale is one batch norm with weight and bias
        producer.attrs["scale_layer"] = str(_one(layer, "name", ""))  # where its weights are
        for top in layer.get("top", []):
            self.current[str(top)] = inputs[0]
        return None


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
