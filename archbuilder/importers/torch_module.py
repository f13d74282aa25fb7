"""torch modules → the importer graph, traced with ``torch.fx`` (weights from the modules).

A module in training mode traces what its training forward returns: torchvision's GoogLeNet
with ``aux_logits=True`` gives its two aux heads; in eval mode only the main output.
"""

from __future__ import annotations

import hashlib
import operator
import re
from typing import Any

import torch
from torch import fx, nn
from torch.nn import functional as F

from archbuilder.builder.ops import torch_function
from archbuilder.importers.graph import Graph, ImportFailure, Node, Unsupported
from archbuilder.spec.activations import REGISTRY

__all__ = ["module_graph"]

_PART_NAMES = {"conv", "bn"}
# Modules and functions read as the spec's activations (spec/activations.py). Not the
# modules whose constructor fixes a parameter the spec does not carry (LeakyReLU's slope,
# GELU's approximation), nor leaky_relu called with its slope.
_PARAMETRIC = {"leaky_relu", "gelu"}
_ACT_MODULES = {getattr(nn, e.module): e.name for e in REGISTRY.values() if e.name not in _PARAMETRIC}
_ACT_FUNCTIONS = {
    **{torch_function(e.name): e.name for e in REGISTRY.values() if e.name != "leaky_relu"},
    torch.relu: "relu",
}
_ACT_METHODS = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh"}


class _Unsupported(Exception):
    pass


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _array(tensor: torch.Tensor) -> Any:
    return tensor.detach().cpu().float().numpy().copy()


class _Converter:
    def __init__(self, traced: fx.GraphModule, aux_loss_weight: float):
        self.traced = traced
        self.modules = dict(traced.named_modules())
        self.nodes: list[Node] = []
        self.problems: list[Unsupported] = []
        self.tensor: dict[str, str] = {}  # fx node name -> importer tensor
        self.aux_loss_weight = aux_loss_weight

    def data(self, arg: Any) -> str:
        if not isinstance(arg, fx.Node) or arg.name not in self.tensor:
            raise _Unsupported(f"reads {arg}, which is not a traced feature map")
        return self.tensor[arg.name]

    def add(
        self, fx_node: fx.Node, op: str, inputs: list[str], attrs: dict, weights: dict | None = None
    ) -> None:
        self.nodes.append(
            Node(
                fx_node.name,
                op,
                inputs,
                fx_node.name,
                attrs,
                weights or {},
                _scope(fx_node),
                str(fx_node.target),
            )
        )
        self.tensor[fx_node.name] = fx_node.name

    def same(self, fx_node: fx.Node, arg: Any) -> None:
        self.tensor[fx_node.name] = self.data(arg)

    def run(self, input_shape: tuple[int, ...], partial: bool) -> Graph:
        placeholders = [n for n in self.traced.graph.nodes if n.op == "placeholder"]
        if len(placeholders) != 1:
            raise _Unsupported(
                f"the module's forward takes {len(placeholders)} inputs; archbuilder networks take one"
            )
        self.tensor[placeholders[0].name] = "input"
        outputs: list[str] = []
        for fx_node in self.traced.graph.nodes:
            if partial and self.problems:
                break
            try:
                if fx_node.op == "output":
                    outputs = self.outputs(fx_node.args[0])
                elif fx_node.op != "placeholder":
                    self.convert(fx_node)
            except (_Unsupported, KeyError, TypeError, ValueError, IndexError) as exc:
                reason = str(exc) if isinstance(exc, _Unsupported) else f"unexpected arguments ({exc})"
                op = str(getattr(fx_node.target, "__name__", fx_node.target))
                self.problems.append(Unsupported(fx_node.name, op, reason))
                known = [a.name for a in fx_node.all_input_nodes if a.name in self.tensor]
                if known:  # readers are still checked (their own problems listed too)
                    self.tensor[fx_node.name] = self.tensor[known[0]]
        main = outputs[0] if outputs else (self.nodes[-1].output if self.nodes else "input")
        aux = [(tensor, self.aux_loss_weight) for tensor in outputs[1:]]
        return Graph("input", input_shape, self.nodes, main, aux, self.problems, True)

    def outputs(self, value: Any) -> list[str]:
        if isinstance(value, (tuple, list)):
            return [self.data(v) for v in value]
        if isinstance(value, fx.Node) and value.name not in self.tensor and value.op == "call_function":
            return [self.data(v) for v in value.args]  # a namedtuple of outputs (GoogLeNetOutputs)
        return [self.data(value)]

    def convert(self, fx_node: fx.Node) -> None:
        if fx_node.op == "call_module":
            self.module(fx_node, self.modules[fx_node.target])
        elif fx_node.op == "call_function":
            self.function(fx_node, fx_node.target, fx_node.args, fx_node.kwargs)
        elif fx_node.op == "call_method":
            self.method(fx_node, fx_node.target, fx_node.args, fx_node.kwargs)
        elif fx_node.op != "get_attr":
            raise _Unsupported(f"fx op {fx_node.op}")

    def module(self, fx_node: fx.Node, module: nn.Module) -> None:
        x = [self.data(fx_node.args[0])]
        if isinstance(module, nn.Conv2d):
            self.conv(fx_node, x, module)
        elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
            self.batchnorm(fx_node, x, module)
        elif _activation_of(module) is not None:
            self.add(fx_node, "act", x, {"function": _activation_of(module)})
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            self.pool(fx_node, x, module.kernel_size, module.stride, module.padding, module.ceil_mode, module)
        elif isinstance(module, nn.AdaptiveAvgPool2d):
            self.adaptive(fx_node, x, module.output_size)
        elif isinstance(module, nn.LocalResponseNorm):
            self.add(
                fx_node, "lrn", x, dict(size=module.size, alpha=module.alpha, beta=module.beta, k=module.k)
            )
        elif isinstance(module, nn.Dropout):
            self.add(fx_node, "dropout", x, {"p": module.p})
        elif isinstance(module, nn.Flatten) and module.start_dim == 1 and module.end_dim == -1:
            self.add(fx_node, "flatten", x, {})
        elif isinstance(module, nn.Linear):
            attrs = {"out": module.out_features, "bias": module.bias is not None}
            self.add(fx_node, "linear", x, attrs, _weights(module, "weight", "bias"))
        elif isinstance(module, nn.Identity):
            self.same(fx_node, fx_node.args[0])
        else:
            raise _Unsupported(f"no archbuilder layer computes a {type(module).__name__}")

    def conv(self, fx_node: fx.Node, x: list[str], module: nn.Conv2d) -> None:
        if module.padding_mode != "zeros" or isinstance(module.padding, str):
            raise _Unsupported("only zero padding given in pixels")
        attrs = dict(
            out=module.out_channels,
            kernel=_pair(module.kernel_size),
            stride=_pair(module.stride),
            padding=_pair(module.padding),
            dilation=_pair(module.dilation),
            groups=module.groups,
            bias=module.bias is not None,
        )
        self.add(fx_node, "conv", x, attrs, _weights(module, "weight", "bias"))

    def batchnorm(self, fx_node: fx.Node, x: list[str], module: nn.Module) -> None:
        if not module.track_running_stats or not module.affine:
            raise _Unsupported("a batch norm without running statistics or affine weights")
        momentum = module.momentum if module.momentum is not None else 0.1
        weights = _weights(module, "weight", "bias", "running_mean", "running_var")
        self.add(fx_node, "bn", x, {"eps": module.eps, "momentum": momentum}, weights)

    def pool(self, fx_node, x, kernel, stride, padding, ceil_mode, module=None, kind=None) -> None:
        kind = kind or ("maxpool" if isinstance(module, nn.MaxPool2d) else "avgpool")
        if (
            module is not None
            and isinstance(module, nn.MaxPool2d)
            and (module.dilation not in (1, (1, 1)) or module.return_indices)
        ):
            raise _Unsupported("dilated max pooling or pooling that returns indices")
        if module is not None and isinstance(module, nn.AvgPool2d) and module.divisor_override is not None:
            raise _Unsupported("divisor_override")
        kernel = _pair(kernel)
        attrs = dict(
            kernel=kernel,
            stride=_pair(stride) if stride else kernel,
            padding=_pair(padding),
            ceil_mode=bool(ceil_mode),
        )
        if kind == "avgpool":
            attrs["count_include_pad"] = bool(getattr(module, "count_include_pad", True))
        self.add(fx_node, kind, x, attrs)

    def adaptive(self, fx_node, x, output) -> None:
        output = _pair(output)
        if output == (1, 1):
            self.add(fx_node, "global_avgpool", x, {})
        else:
            self.add(fx_node, "adaptive_avgpool", x, {"output": output})

    def function(self, fx_node: fx.Node, target: Any, args: tuple, kwargs: dict) -> None:
        if isinstance(target, type) and issubclass(target, tuple):
            return  # a namedtuple of outputs, read by the output node
        if target in _ACT_FUNCTIONS:
            if target is F.gelu and kwargs.get("approximate", "none") != "none":
                raise _Unsupported("tanh-approximated gelu")
            self.add(fx_node, "act", [self.data(args[0])], {"function": _ACT_FUNCTIONS[target]})
        elif target in (torch.flatten,):
            if tuple(args[1:]) + tuple(kwargs.values()) not in ((1,), (1, -1)):
                raise _Unsupported("only flatten from dimension 1")
            self.add(fx_node, "flatten", [self.data(args[0])], {})
        elif target is torch.cat:
            dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
            if dim != 1:
                raise _Unsupported("only a concatenation along channels (dim 1)")
            self.add(fx_node, "concat", [self.data(a) for a in args[0]], {})
        elif target in (operator.add, torch.add) and all(isinstance(a, fx.Node) for a in args[:2]):
            self.add(fx_node, "add", [self.data(a) for a in args[:2]], {})
        elif target in (operator.mul, torch.mul) and any(isinstance(a, (int, float)) for a in args[:2]):
            tensor, factor = (args[0], args[1]) if isinstance(args[1], (int, float)) else (args[1], args[0])
            self.add(fx_node, "scale", [self.data(tensor)], {"factor": float(factor)})
        elif target is F.dropout:
            p = args[1] if len(args) > 1 else kwargs.get("p", 0.5)
            self.add(fx_node, "dropout", [self.data(args[0])], {"p": float(p)})
        elif target is F.adaptive_avg_pool2d:
            self.adaptive(fx_node, [self.data(args[0])], args[1] if len(args) > 1 else kwargs["output_size"])
        elif target in (F.max_pool2d, F.avg_pool2d):
            self.functional_pool(fx_node, target, args, kwargs)
        else:
            raise _Unsupported("no archbuilder layer computes it")

    def functional_pool(self, fx_node, target, args, kwargs) -> None:
        names = ["input", "kernel_size", "stride", "padding"]
        given = {**dict(zip(names, args)), **kwargs}
        kind = "maxpool" if target is F.max_pool2d else "avgpool"
        if kind == "avgpool" and not given.get("count_include_pad", True):
            raise _Unsupported("count_include_pad=False in a functional avg_pool2d")
        self.pool(
            fx_node,
            [self.data(given["input"])],
            given["kernel_size"],
            given.get("stride"),
            given.get("padding", 0),
            given.get("ceil_mode", False),
            kind=kind,
        )

    def method(self, fx_node: fx.Node, target: str, args: tuple, kwargs: dict) -> None:
        if target in _ACT_METHODS:
            self.add(fx_node, "act", [self.data(args[0])], {"function": _ACT_METHODS[target]})
        elif target == "size":
            return  # shape arithmetic, not data
        elif _is_flatten(target, args):
            self.add(fx_node, "flatten", [self.data(args[0])], {})
        elif target == "mean" and set(args[1] if len(args) > 1 else kwargs.get("dim", ())) in (
            {2, 3},
            {-1, -2},
        ):
            keep = kwargs.get("keepdim", args[2] if len(args) > 2 else False)
            self.add(fx_node, "global_avgpool", [self.data(args[0])], {})
            if not keep:
                raise _Unsupported(
                    "a mean over height and width without keepdim (add a flatten after a keepdim mean)"
                )
        else:
            raise _Unsupported(f"no archbuilder layer computes .{target}()")


def _activation_of(module: nn.Module) -> str | None:
    if type(module) in _ACT_MODULES:
        return _ACT_MODULES[type(module)]
    if isinstance(module, nn.GELU) and module.approximate == "none":
        return "gelu"
    if isinstance(module, nn.LeakyReLU) and module.negative_slope == 0.01:
        return "leaky_relu"
    return None


def _weights(module: nn.Module, *names: str) -> dict[str, Any]:
    """The module's tensors of these names that it has (a conv may have no bias)."""
    return {name: _array(getattr(module, name)) for name in names if getattr(module, name, None) is not None}


def _is_flatten(method: str, args: tuple) -> bool:
    """``x.flatten(1)``, or ``x.view(x.size(0), -1)`` / ``x.reshape(n, -1)``."""
    if method == "flatten":
        return tuple(args[1:]) in ((1,), (1, -1))
    return method in ("view", "reshape") and len(args) == 3 and args[2] == -1


def _scope(fx_node: fx.Node) -> tuple[str, ...]:
    if fx_node.op == "call_module":
        parts = tuple(str(fx_node.target).split("."))
        return parts[:-1] if len(parts) > 1 and parts[-1] in _PART_NAMES else parts
    stack = fx_node.meta.get("nn_module_stack") or {}
    path = list(stack)[-1] if stack else ""
    function = re.sub(r"_\d+$", "", fx_node.name)
    return (*(tuple(path.split(".")) if path else ()), function)


def _traced_shapes(traced: fx.GraphModule, example: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """Each traced node's output shape (one sample) when the module runs on ``example``: what
    the imported spec is checked against. Run in eval mode and without gradients, so that no
    batch norm statistic (imported as a weight) moves; every module's mode is put back."""
    from torch.fx.passes.shape_prop import ShapeProp, TensorMetadata

    modes = {submodule: submodule.training for submodule in traced.modules()}
    try:
        traced.eval()
        with torch.no_grad():
            ShapeProp(traced).propagate(example)
    except Exception:  # a module that traces but does not run: its spec is checked by the importer's shapes
        return {}
    finally:
        for submodule, training in modes.items():
            submodule.training = training
    return {
        node.name: tuple(meta.shape[1:])
        for node in traced.graph.nodes
        if isinstance(meta := node.meta.get("tensor_meta"), TensorMetadata)
    }


def module_graph(
    module: nn.Module, example: torch.Tensor, *, aux_loss_weight: float = 0.3, partial: bool = False
) -> tuple[Graph, str]:
    """The importer graph of ``module`` traced for ``example`` (N×C×H×W), and a digest of it."""
    label = f"<{type(module).__name__} module>"
    if not isinstance(example, torch.Tensor) or example.dim() != 4:
        raise ImportFailure(
            label, [Unsupported("(input)", "-", "the example input must be an N×C×H×W tensor")]
        )
    try:
        traced = fx.symbolic_trace(module)
    except Exception as exc:  # fx raises many kinds for code it cannot trace
        raise ImportFailure(
            label, [Unsupported("(module)", type(module).__name__, f"torch.fx cannot trace it: {exc}")]
        ) from None
    converter = _Converter(traced, aux_loss_weight)
    try:
        graph = converter.run(tuple(example.shape[1:]), partial)
    except _Unsupported as exc:
        raise ImportFailure(label, [Unsupported("(module)", type(module).__name__, str(exc))]) from None
    if not graph.problems:
        graph.source_shapes = _traced_shapes(traced, example)
    digest = hashlib.sha256(traced.code.encode())
    for key, value in module.state_dict().items():
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return graph, digest.hexdigest()
