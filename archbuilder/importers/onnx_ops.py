"""The ONNX op handlers of the ONNX importer: each turns one node into importer-graph nodes
(or an alias), or raises :class:`Unconvertible` with the reason."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["OnnxOps", "Unconvertible"]


class Unconvertible(Exception):
    """This node cannot be imported; the message says why."""


class OnnxOps:
    """Mixed into the converter, which provides ``add``, ``same``, ``const``, ``consts``, ``folded``,
    ``data``, ``nodes``, ``shapes``, ``readers``, ``skip``, ``graph`` and ``notes``."""

    def _Conv(self, node, inputs, a):
        weight = self.const(inputs[1], "weight")
        if weight.ndim != 4:
            raise Unconvertible(f"a {weight.ndim - 2}-D convolution (archbuilder's are 2-D)")
        attrs = dict(out=int(weight.shape[0]), kernel=tuple(int(k) for k in weight.shape[2:]))
        bias = self.const(inputs[2], "bias") if len(inputs) > 2 and inputs[2] else None
        if bias is not None and inputs[2] in self.folded and not bias.any():
            bias = None  # torch.onnx writes a conv without bias as one adding computed zeros
        attrs.update(_window(a, attrs["kernel"]), groups=int(a.get("group", 1)), bias=bias is not None)
        weights = {"weight": weight}
        if bias is not None:
            weights["bias"] = bias
        self.add(node, "conv", inputs[:1], {**attrs, "path": _path(inputs[1])}, weights)

    def _BatchNormalization(self, node, inputs, a):
        if a.get("training_mode", 0):
            raise Unconvertible("training_mode: 1")
        keys = ("weight", "bias", "running_mean", "running_var")
        weights = {key: self.const(t, key) for key, t in zip(keys, inputs[1:5])}
        attrs = dict(eps=float(a.get("epsilon", 1e-5)), momentum=round(1 - float(a.get("momentum", 0.9)), 6))
        self.add(node, "bn", inputs[:1], {**attrs, "path": _path(inputs[1])}, weights)

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

    def _HardSigmoid(self, node, inputs, a):
        alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
        if not (math.isclose(alpha, 1 / 6, rel_tol=1e-6) and math.isclose(beta, 0.5, rel_tol=1e-6)):
            raise Unconvertible(f"alpha {alpha}, beta {beta} (archbuilder's hardsigmoid is relu6(x + 3) / 6)")
        self._activation(node, inputs, "hardsigmoid")

    def _Gelu(self, node, inputs, a):
        if a.get("approximate", "none") != "none":
            raise Unconvertible("approximate: tanh (archbuilder's gelu is exact)")
        self._activation(node, inputs, "gelu")

    def _LeakyRelu(self, node, inputs, a):
        if not math.isclose(a.get("alpha", 0.01), 0.01, rel_tol=1e-6):
            raise Unconvertible(f"alpha {a['alpha']} (archbuilder's leaky_relu has slope 0.01)")
        self._activation(node, inputs, "leaky_relu")

    def _Clip(self, node, inputs, a):
        low = a.get("min", self.consts.get(inputs[1]) if len(inputs) > 1 and inputs[1] else None)
        high = a.get("max", self.consts.get(inputs[2]) if len(inputs) > 2 and inputs[2] else None)
        if low is None or high is None or float(low) != 0 or float(high) != 6:
            raise Unconvertible("only Clip(0, 6), relu6")
        self._activation(node, inputs, "relu6")

    def _pool(self, node, inputs, a, op):
        if any(d != 1 for d in a.get("dilations", [1, 1])):
            raise Unconvertible("dilated pooling")
        if len(node.output) > 1 and node.output[1]:
            raise Unconvertible("its indices output is used")
        kernel = tuple(a["kernel_shape"])
        attrs = _window(a, kernel)
        attrs.pop("dilation")
        attrs.update(kernel=kernel, ceil_mode=bool(a.get("ceil_mode", 0)))
        if op == "avgpool":
            attrs["count_include_pad"] = bool(a.get("count_include_pad", 0))
        if any(2 * p > k for p, k in zip(attrs["padding"], kernel)):
            raise Unconvertible(f"padding {attrs['padding']} is more than half the kernel {kernel}")
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
            raise Unconvertible("only a mean over height and width (global average pooling)")
        if a.get("keepdims", 1):
            self.add(node, "global_avgpool", inputs[:1], {})
        else:
            pooled = self.add(node, "global_avgpool", inputs[:1], {}, output=f"{node.output[0]}#pooled")
            self.add(node, "flatten", [pooled.output], {})

    def _Flatten(self, node, inputs, a):
        if int(a.get("axis", 1)) != 1:
            raise Unconvertible("only axis: 1 (keep the batch dimension)")
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
        if self.shuffle(node, inputs[0]) or self.restrided(node, inputs[0]):
            return
        raise Unconvertible(
            f"only a reshape to N×features (a flatten) or a channel shuffle; {before} → {after}"
        )

    _Squeeze = _Reshape

    def _Gemm(self, node, inputs, a):
        if a.get("transA", 0):
            raise Unconvertible("transA: 1")
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
            raise Unconvertible("only a matrix product with a constant 2-D weight")
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
            raise Unconvertible("adds a constant that is not a linear layer's bias")
        producer.attrs["bias"] = True
        producer.weights["bias"] = bias.reshape(-1)
        self.same(node, data[0])

    def _Mul(self, node, inputs, a):
        data = [t for t in inputs if t in self.data]
        if len(data) == 2:
            self._swish(node, data)
            return
        factor = self.consts.get(next(t for t in inputs if t not in self.data))
        if factor is not None and factor.size > 1 and self.per_channel(node, data[0], factor):
            return
        if factor is None or factor.size != 1:
            raise Unconvertible(
                "multiplies by a constant that is neither one number (a branch scale) "
                "nor one per channel (a layer scale)"
            )
        self.add(node, "scale", data, {"factor": float(factor.reshape(-1)[0])})

    def _lrn_chain(self, node, x: str) -> bool:
        """torch.onnx writes LocalResponseNorm as x / (k + alpha·avg(x², size))^beta, from
        x·x through Reshape, Pad, AveragePool, Squeeze, Mul, Add, Pow to a Div; one lrn."""
        chain, tensor = [], node.output[0]
        for op in ("Reshape", "Pad", "AveragePool", "Squeeze", "Reshape?", "Mul", "Add", "Pow", "Div"):
            readers = self.readers.get(tensor, [])
            if op == "Reshape?":  # unoptimized exports reshape the squeezed 4-D tensor to itself
                if len(readers) == 1 and readers[0].op_type == "Reshape":
                    chain.append(readers[0])
                    tensor = readers[0].output[0]
                continue
            if len(readers) != 1 or readers[0].op_type != op:
                return False
            chain.append(readers[0])
            tensor = readers[0].output[0]
        pool, mul, add, power, div = chain[2], *chain[-4:]
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
        """x · sigmoid(x) is silu; x · x opens torch.onnx's local response norm; any other
        product of two tensors is a ``mul`` node, which closes a squeeze-and-excitation gate."""
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
        self.add(node, "mul", list(inputs), {})  # a gate's product, or reported (see gates.py)

    def _Concat(self, node, inputs, a):
        if int(a.get("axis", 1)) != 1 or any(t not in self.data for t in inputs):
            raise Unconvertible("only a concatenation of computed tensors along channels (axis 1)")
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
            raise Unconvertible("a softmax inside the network (only a final one, which is left out)")
        self.notes.append(
            f"{node.name or node.output[0]}: the final Softmax is left out (archbuilder models output logits)"
        )
        self.same(node, inputs[0])

    _LogSoftmax = _Softmax


def _path(weight: str) -> str:
    """The module path of a parameter named by torch (``stem.conv.weight`` → ``stem.conv``)."""
    return weight.rsplit(".", 1)[0] if "." in weight else ""


def _window(a: dict[str, Any], kernel: tuple[int, ...]) -> dict[str, Any]:
    if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise Unconvertible(f"auto_pad: {a['auto_pad']} (give explicit pads)")
    pads = list(a.get("pads", [0] * 2 * len(kernel)))
    if len(kernel) != 2:
        raise Unconvertible(f"a {len(kernel)}-D window (archbuilder's are 2-D)")
    if pads[:2] != pads[2:]:
        raise Unconvertible(f"asymmetric pads {pads} (archbuilder pads each side equally)")
    return dict(
        stride=tuple(a.get("strides", [1, 1])),
        padding=tuple(pads[:2]),
        dilation=tuple(a.get("dilations", [1, 1])),
    )
