"""Shape, parameter and MAC rules for each primitive op.

Each rule takes a spec layer and its input shape and returns the op's resolved attributes
and output shape, or raises :class:`ShapeError` with a message for the user.
MACs follow one convention: k_h·k_w·(C_in/groups)·C_out·H_out·W_out for convolutions (a
separable conv: its depthwise and its pointwise conv), in·out for linear layers, 0 for
everything else (a squeeze-and-excitation gate counts its two 1×1 convs, 2·C·s; its pooling
and its gating multiply are element-wise, as an add merge is, and torchvision's GFLOPs
figures for MobileNetV3 and EfficientNet leave them out too).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from archbuilder.ir.geometry import window_output
from archbuilder.ir.graph import Shape
from archbuilder.spec import layers as L

__all__ = [
    "BUILTIN_CONV",
    "Context",
    "OpResult",
    "ShapeError",
    "check_shuffle",
    "pair",
    "rule_for",
    "scope_conv",
]

BUILTIN_CONV = {"norm": "batch", "activation": "relu", "bn_eps": 1e-5, "bn_momentum": 0.1, "order": "post"}


class ShapeError(Exception):
    """The layer cannot take this input shape; the message says why.

    ``fallback`` is the result to carry on with when the output is still well defined, so
    that problems further down are found in the same pass.
    """

    def __init__(self, message: str, fallback: OpResult | None = None):
        super().__init__(message)
        self.fallback = fallback


_CONV_KEYS = ("norm", "activation", "bias", "bn_eps", "bn_momentum", "order")


@dataclass(frozen=True)
class Context:
    """What a rule needs beyond the layer: ``num_classes`` and the enclosing conv settings.

    ``conv`` holds the settings resolved for the enclosing scope (``bias`` may still be None:
    it then follows ``norm``); a conv layer's own settings override them.
    """

    num_classes: int | None
    conv: dict[str, Any]

    def inner(self, options: L.ConvOptions | None) -> Context:
        """The context inside a block with its own ``conv`` settings."""
        if options is None:
            return self
        overrides = {key: getattr(options, key) for key in _CONV_KEYS if getattr(options, key) is not None}
        return Context(self.num_classes, {**self.conv, **overrides})


@dataclass(frozen=True)
class OpResult:
    attrs: dict[str, Any]
    shape: Shape
    params: int = 0
    macs: int = 0


def pair(value: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (value[0], value[1])


def scope_conv(defaults: L.ConvOptions) -> dict[str, Any]:
    """The conv settings of the top-level scope: ``defaults.conv`` over the built-ins."""
    given = {key: getattr(defaults, key) for key in _CONV_KEYS if getattr(defaults, key) is not None}
    return {**BUILTIN_CONV, "bias": None, **given}


def _conv_options(layer: L.Conv | L.Separable, context: Context) -> dict[str, Any]:
    resolved = dict(context.conv)
    for key in _CONV_KEYS:
        value = getattr(layer, key, None)  # a separable conv has no order
        if value is not None:
            resolved[key] = value
    if resolved["bias"] is None:
        resolved["bias"] = resolved["norm"] == "none"
    if resolved["norm"] == "layer":
        resolved["ln_eps"] = L.LAYER_NORM_EPS
    return resolved


def _feature_map(shape: Shape, what: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ShapeError(f"{what} needs a C×H×W feature map, but its input is flat ({shape[0]} features)")
    return shape  # type: ignore[return-value]


def _spatial(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil: bool, axis: str) -> int:
    out = window_output(size, kernel, stride, pad, dilation, ceil)
    if out < 1:
        extent = dilation * (kernel - 1) + 1
        raise ShapeError(
            f"input {axis} {size} ({size + 2 * pad} with padding) is smaller than the kernel's extent "
            f"{extent}: the feature map collapses below 1 pixel"
        )
    return out


def _window_out(layer: L.Conv | L.Separable, height: int, width: int) -> tuple[Any, tuple[int, int]]:
    """A conv window's padding as torch takes it, and the output height and width."""
    kernel, stride, dilation = pair(layer.kernel), pair(layer.stride), pair(layer.dilation)
    if layer.padding == "same":
        if stride != (1, 1):
            raise ShapeError("padding: same needs stride 1 (torch's rule); give the padding in pixels")
        return "same", (height, width)
    padding = pair(layer.padding)
    out_hw = tuple(
        _spatial(size, k, s, p, d, False, axis)
        for size, k, s, p, d, axis in zip(
            (height, width), kernel, stride, padding, dilation, ("height", "width")
        )
    )
    return padding, out_hw  # type: ignore[return-value]


def _norm_params(options: dict[str, Any], out: int, channels: int | None = None) -> int:
    """Bias and norm parameters; a pre-activation conv normalizes its ``channels`` inputs."""
    normed = channels if options.get("order") == "pre" and channels is not None else out
    return (out if options["bias"] else 0) + (2 * normed if options["norm"] != "none" else 0)


def _conv(layer: L.Conv, shape: Shape, context: Context) -> OpResult:
    options = _conv_options(layer, context)
    channels, height, width = _feature_map(shape, "conv")
    kernel = pair(layer.kernel)
    padding, out_hw = _window_out(layer, height, width)
    groups = channels if layer.groups == "depthwise" else layer.groups
    out = channels if layer.out is None else layer.out
    weights = kernel[0] * kernel[1] * (channels // groups) * out
    attrs = dict(
        in_channels=channels,
        out_channels=out,
        kernel=kernel,
        stride=pair(layer.stride),
        padding=padding,
        dilation=pair(layer.dilation),
        groups=groups,
        **options,
    )
    params = weights + _norm_params(options, out, channels)
    result = OpResult(attrs, (out, *out_hw), params, weights * out_hw[0] * out_hw[1])
    if layer.groups == "depthwise" and out % channels:
        message = f"a depthwise conv's out ({out}) must be a multiple of its input channels ({channels})"
        raise ShapeError(message, fallback=result)
    if channels % groups or out % groups:
        raise ShapeError(
            f"groups={groups} must divide both input channels ({channels}) and out ({out})", result
        )
    return result


def _separable(layer: L.Separable, shape: Shape, context: Context) -> OpResult:
    options = _conv_options(layer, context)
    channels, height, width = _feature_map(shape, "separable")
    kernel = pair(layer.kernel)
    padding, out_hw = _window_out(layer, height, width)
    middle = channels * layer.multiplier
    weights = kernel[0] * kernel[1] * middle + middle * layer.out  # depthwise, then pointwise
    attrs = dict(
        in_channels=channels,
        out_channels=layer.out,
        kernel=kernel,
        stride=pair(layer.stride),
        padding=padding,
        dilation=pair(layer.dilation),
        multiplier=layer.multiplier,
        **options,
    )
    attrs.pop("order")
    params = weights + _norm_params(attrs, layer.out)
    result = OpResult(attrs, (layer.out, *out_hw), params, weights * out_hw[0] * out_hw[1])
    if options["order"] == "pre":
        message = (
            "a separable conv has no pre-activation form, but the enclosing conv settings say "
            "order: pre; give this block conv: {order: post}, or set order on its convs alone"
        )
        raise ShapeError(message, fallback=result)
    return result


def _pool(layer: L.MaxPool | L.AvgPool, shape: Shape, _: Any) -> OpResult:
    channels, height, width = _feature_map(shape, layer.kind)
    kernel = pair(layer.kernel)
    stride = pair(layer.stride) if layer.stride is not None else kernel
    padding = pair(layer.padding)
    if any(2 * p > k for p, k in zip(padding, kernel)):
        raise ShapeError(f"padding {padding} is more than half the kernel {kernel} (torch's limit)")
    out_hw = tuple(
        _spatial(size, k, s, p, 1, layer.ceil_mode, axis)
        for size, k, s, p, axis in zip((height, width), kernel, stride, padding, ("height", "width"))
    )
    attrs: dict[str, Any] = dict(kernel=kernel, stride=stride, padding=padding, ceil_mode=layer.ceil_mode)
    if isinstance(layer, L.AvgPool):
        attrs["count_include_pad"] = layer.count_include_pad
    return OpResult(attrs, (channels, *out_hw))


def _adaptive(layer: L.AdaptiveAvgPool | L.GlobalAvgPool, shape: Shape, _: Any) -> OpResult:
    channels = _feature_map(shape, layer.kind)[0]
    output = pair(layer.output) if isinstance(layer, L.AdaptiveAvgPool) else (1, 1)
    return OpResult({"output": output}, (channels, *output))


def _lrn(layer: L.LocalResponseNorm, shape: Shape, _: Any) -> OpResult:
    _feature_map(shape, "lrn")
    return OpResult(dict(size=layer.size, alpha=layer.alpha, beta=layer.beta, k=layer.k), shape)


def _batchnorm(layer: L.BatchNorm, shape: Shape, _: Any) -> OpResult:
    attrs = dict(num_features=shape[0], eps=layer.eps, momentum=layer.momentum)
    return OpResult(attrs, shape, 2 * shape[0])


def _layernorm(layer: L.LayerNorm, shape: Shape, _: Any) -> OpResult:
    return OpResult(dict(num_features=shape[0], eps=layer.eps), shape, 2 * shape[0])


def _layer_scale(layer: L.LayerScale, shape: Shape, _: Any) -> OpResult:
    return OpResult(dict(channels=shape[0], init=layer.init), shape, shape[0])


def _drop_path(layer: L.DropPath, shape: Shape, _: Any) -> OpResult:
    # rate None: set by the spec's drop_path_rate ramp once every layer is lowered
    return OpResult(dict(rate=layer.rate, mode=layer.mode, scale_by_keep=layer.scale_by_keep), shape)


def _channel_shuffle(layer: L.ChannelShuffle, shape: Shape, _: Any) -> OpResult:
    channels = _feature_map(shape, "channel_shuffle")[0]
    result = OpResult({"groups": layer.groups}, shape)
    problem = check_shuffle(layer.groups, channels)
    if problem:
        raise ShapeError(problem, fallback=result)
    return result


def check_shuffle(groups: int, channels: int) -> str | None:
    """Why a channel shuffle in ``groups`` cannot take ``channels`` channels, or None."""
    if channels % groups:
        divisors = [d for d in range(2, min(channels, 64) + 1) if channels % d == 0][:4]
        fix = f"; pick a divisor of {channels} ({', '.join(map(str, divisors))})" if divisors else ""
        return f"shuffle groups={groups} must divide the {channels} channels it shuffles{fix}"
    return None


def _activation(layer: L.Activation, shape: Shape, _: Any) -> OpResult:
    return OpResult({"function": layer.function}, shape)


def _dropout(layer: L.Dropout, shape: Shape, _: Any) -> OpResult:
    return OpResult({"p": layer.p}, shape)


def _flatten(layer: L.Flatten, shape: Shape, _: Any) -> OpResult:
    return OpResult({}, (math.prod(shape),))


def _linear(layer: L.Linear, shape: Shape, context: Context) -> OpResult:
    num_classes = context.num_classes
    if layer.out == "num_classes" and num_classes is None:
        raise ShapeError("out: num_classes, but the spec sets no num_classes; add num_classes: N")
    out = num_classes if layer.out == "num_classes" else layer.out
    if len(shape) != 1:
        message = (
            f"linear needs flat features, but its input is a {'×'.join(map(str, shape))} feature map; "
            "add {kind: flatten} (or a global_avgpool and a flatten) before it"
        )
        raise ShapeError(message, OpResult({}, (out,)))
    attrs = dict(in_features=shape[0], out_features=out, bias=layer.bias)
    return OpResult(attrs, (out,), shape[0] * out + (out if layer.bias else 0), shape[0] * out)


def _se(layer: L.SqueezeExcite, shape: Shape, _: Any) -> OpResult:
    from archbuilder.spec.rounding import squeeze_width

    channels = _feature_map(shape, "se")[0]
    squeeze = layer.squeeze_channels or squeeze_width(channels, layer.reduction, layer.divisor)
    attrs = dict(channels=channels, squeeze=squeeze, activation=layer.activation, gate=layer.gate)
    params = 2 * channels * squeeze + squeeze + channels  # two 1×1 convs with bias
    return OpResult(attrs, shape, params, 2 * channels * squeeze)


Rule = Callable[[Any, Shape, Context], OpResult]
_RULES: dict[type, Rule] = {
    L.Conv: _conv,
    L.Separable: _separable,
    L.MaxPool: _pool,
    L.AvgPool: _pool,
    L.AdaptiveAvgPool: _adaptive,
    L.GlobalAvgPool: _adaptive,
    L.LocalResponseNorm: _lrn,
    L.BatchNorm: _batchnorm,
    L.LayerNorm: _layernorm,
    L.LayerScale: _layer_scale,
    L.DropPath: _drop_path,
    L.Activation: _activation,
    L.Dropout: _dropout,
    L.Flatten: _flatten,
    L.Linear: _linear,
    L.ChannelShuffle: _channel_shuffle,
    L.SqueezeExcite: _se,
}


def rule_for(layer: L.LayerBase) -> Rule:
    """The shape rule of a primitive layer."""
    return _RULES[type(layer)]
