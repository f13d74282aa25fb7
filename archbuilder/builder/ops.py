"""One torch module per IR op kind."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from archbuilder.builder.layers import (
    ChannelShuffle,
    ChannelSlice,
    DropPath,
    LayerNorm2d,
    LayerScale,
    SqueezeExcite,
)
from archbuilder.ir.graph import Op
from archbuilder.spec.activations import REGISTRY

__all__ = ["activation", "activation_function", "module_for", "torch_function"]


def activation(function: str, *, inplace: bool) -> nn.Module:
    """The activation module for a spec activation name (:data:`~archbuilder.spec.activations.REGISTRY`)."""
    entry = REGISTRY[function]
    module = getattr(nn, entry.module)(**entry.module_args)
    if hasattr(module, "inplace"):
        module.inplace = inplace
    return module


def torch_function(function: str) -> Callable[..., Tensor]:
    """The torch function a spec activation name stands for, as torch has it (no arguments bound)."""
    name = REGISTRY[function].function
    return getattr(torch, name.removeprefix("torch.")) if name.startswith("torch.") else getattr(F, name)


def activation_function(function: str) -> Callable[[Tensor], Tensor]:
    """The activation as a plain function (not a module), for a block's merged output."""
    found, arguments = torch_function(function), REGISTRY[function].module_args
    return partial(found, **arguments) if arguments else found


def _conv(op: Op) -> nn.Module:
    a = op.attrs
    parts: OrderedDict[str, nn.Module] = OrderedDict(
        conv=nn.Conv2d(
            a["in_channels"],
            a["out_channels"],
            a["kernel"],
            stride=a["stride"],
            padding=a["padding"],
            dilation=a["dilation"],
            groups=a["groups"],
            bias=a["bias"],
        )
    )
    if a.get("order") == "pre":
        return _preactivated(parts["conv"], a)
    return _normed(parts, a)


def _preactivated(conv: nn.Conv2d, a: Mapping[str, Any]) -> nn.Module:
    """The norm over the input channels and the activation, then ``conv`` (DenseNet's order)."""
    parts: OrderedDict[str, nn.Module] = OrderedDict()
    if a["norm"] == "batch":
        parts["bn"] = nn.BatchNorm2d(a["in_channels"], eps=a["bn_eps"], momentum=a["bn_momentum"])
    elif a["norm"] == "layer":
        parts["norm"] = LayerNorm2d(a["in_channels"], eps=a["ln_eps"])
    if a["activation"] != "none":
        # In place only on the norm's fresh output: the unit's input may be read elsewhere.
        parts["act"] = activation(a["activation"], inplace=bool(parts))
    parts["conv"] = conv
    return nn.Sequential(parts)


def _separable(op: Op) -> nn.Module:
    a = op.attrs
    middle = a["in_channels"] * a["multiplier"]
    parts: OrderedDict[str, nn.Module] = OrderedDict(
        depthwise=nn.Conv2d(
            a["in_channels"],
            middle,
            a["kernel"],
            stride=a["stride"],
            padding=a["padding"],
            dilation=a["dilation"],
            groups=a["in_channels"],
            bias=False,
        ),
        pointwise=nn.Conv2d(middle, a["out_channels"], 1, bias=a["bias"]),
    )
    return _normed(parts, a)


def _normed(parts: OrderedDict[str, nn.Module], a: Mapping[str, Any]) -> nn.Module:
    """The conv ``parts`` followed by the norm and the activation, as the op's settings say."""
    if a["norm"] == "batch":
        parts["bn"] = nn.BatchNorm2d(a["out_channels"], eps=a["bn_eps"], momentum=a["bn_momentum"])
    elif a["norm"] == "layer":
        parts["norm"] = LayerNorm2d(a["out_channels"], eps=a["ln_eps"])
    if a["activation"] != "none":
        # In place is safe here: the conv/bn output is a fresh tensor nothing else reads.
        parts["act"] = activation(a["activation"], inplace=True)
    return nn.Sequential(parts)


def _pool(op: Op) -> nn.Module:
    a = op.attrs
    if op.kind == "maxpool":
        return nn.MaxPool2d(a["kernel"], a["stride"], a["padding"], ceil_mode=a["ceil_mode"])
    return nn.AvgPool2d(
        a["kernel"],
        a["stride"],
        a["padding"],
        ceil_mode=a["ceil_mode"],
        count_include_pad=a["count_include_pad"],
    )


def _batchnorm(op: Op) -> nn.Module:
    a = op.attrs
    norm = nn.BatchNorm2d if len(op.shape) == 3 else nn.BatchNorm1d
    return norm(a["num_features"], eps=a["eps"], momentum=a["momentum"])


def _layernorm(op: Op) -> nn.Module:
    norm = LayerNorm2d if len(op.shape) == 3 else nn.LayerNorm
    return norm(op.attrs["num_features"], eps=op.attrs["eps"])


def _squeeze_excite(op: Op) -> nn.Module:
    a = op.attrs
    inner = activation(a["activation"], inplace=True) if a["activation"] != "none" else nn.Identity()
    return SqueezeExcite(a["channels"], a["squeeze"], inner, activation(a["gate"], inplace=True))


_BUILDERS: dict[str, Callable[[Op], nn.Module]] = {
    "conv": _conv,
    "separable": _separable,
    "maxpool": _pool,
    "avgpool": _pool,
    "adaptive_avgpool": lambda op: nn.AdaptiveAvgPool2d(op.attrs["output"]),
    "global_avgpool": lambda op: nn.AdaptiveAvgPool2d((1, 1)),
    "lrn": lambda op: nn.LocalResponseNorm(**op.attrs),
    "batchnorm": _batchnorm,
    "layernorm": _layernorm,
    "layer_scale": lambda op: LayerScale(op.attrs["channels"], op.attrs["init"]),
    "drop_path": lambda op: DropPath(op.attrs["rate"], op.attrs["mode"], op.attrs["scale_by_keep"]),
    "slice": lambda op: ChannelSlice(op.attrs["start"], op.attrs["channels"]),
    # A standalone activation may follow a tapped output, so it must not overwrite its input.
    "activation": lambda op: (
        activation(op.attrs["function"], inplace=False) if op.attrs["function"] != "none" else nn.Identity()
    ),
    "dropout": lambda op: nn.Dropout(op.attrs["p"]),
    "flatten": lambda op: nn.Flatten(1),
    "linear": lambda op: nn.Linear(op.attrs["in_features"], op.attrs["out_features"], bias=op.attrs["bias"]),
    "channel_shuffle": lambda op: ChannelShuffle(op.attrs["groups"]),
    "se": lambda op: _squeeze_excite(op),
}


def module_for(op: Op) -> nn.Module:
    """The torch module computing ``op``."""
    return _BUILDERS[op.kind](op)
