"""Spec models of the primitive layers. Pure data: nothing here knows about torch.

Every layer is a mapping with a ``kind`` (the discriminator) and an optional ``name``.
Input channel counts are never written; the IR infers them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "ActivationFunction",
    "AdaptiveAvgPool",
    "AvgPool",
    "BatchNorm",
    "Conv",
    "ConvOptions",
    "Dropout",
    "Flatten",
    "GlobalAvgPool",
    "LayerBase",
    "Linear",
    "LocalResponseNorm",
    "MaxPool",
    "SpecModel",
]

MAX_WIDTH = 1 << 20  # channels/features; larger is a typo, not a network
MAX_SIZE = 1 << 16  # kernels, strides, paddings, spatial sizes

Width = Annotated[int, Field(strict=True, ge=1, le=MAX_WIDTH)]
Positive = Annotated[int, Field(strict=True, ge=1, le=MAX_SIZE)]
NonNegative = Annotated[int, Field(strict=True, ge=0, le=MAX_SIZE)]
Pair = tuple[Positive, Positive]
PairOrInt = Positive | Pair
PaddingPair = tuple[NonNegative, NonNegative]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$", max_length=64)]

ActivationFunction = Literal[
    "relu", "relu6", "leaky_relu", "gelu", "silu", "hardswish", "sigmoid", "tanh", "none"
]
ACTIVATIONS: tuple[str, ...] = ActivationFunction.__args__  # type: ignore[attr-defined]
Norm = Literal["batch", "none"]


class SpecModel(BaseModel):
    """Base of every spec model: immutable, unknown keys rejected, no NaN or infinity."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class ConvOptions(SpecModel):
    """Convolution settings shared by many layers (``defaults.conv``, a block's ``conv``).

    Unset fields inherit: layer, then block, then ``defaults.conv``, then the built-ins
    (``norm: batch``, ``activation: relu``, ``bn_eps: 1e-5``, ``bn_momentum: 0.1``, and
    ``bias`` true exactly when ``norm`` is ``none``).
    """

    norm: Norm | None = None
    activation: ActivationFunction | None = None
    bias: bool | None = None
    bn_eps: Annotated[float, Field(gt=0, lt=1)] | None = None
    bn_momentum: Annotated[float, Field(ge=0, le=1)] | None = None


class LayerBase(SpecModel):
    """Fields every layer has.

    ``name`` becomes the module name in the built model. ``repeat: n`` writes n copies in a
    row, named ``{name}_1`` … ``{name}_n``; a tap on ``name`` reads the last copy.
    """

    name: Name | None = None
    repeat: Annotated[int, Field(strict=True, ge=1, le=1000)] = 1


class Conv(LayerBase):
    """2-D convolution, followed by batch norm and an activation as ``norm``/``activation`` say.

    The last five fields override the enclosing block's ``conv`` and ``defaults.conv``.
    """

    kind: Literal["conv"]
    out: Width
    kernel: PairOrInt
    stride: PairOrInt = 1
    padding: NonNegative | PaddingPair | Literal["same"] = 0
    dilation: PairOrInt = 1
    groups: Width = 1
    norm: Norm | None = None
    activation: ActivationFunction | None = None
    bias: bool | None = None
    bn_eps: Annotated[float, Field(gt=0, lt=1)] | None = None
    bn_momentum: Annotated[float, Field(ge=0, le=1)] | None = None


class MaxPool(LayerBase):
    """Max pooling. ``stride`` defaults to ``kernel``, as in torch."""

    kind: Literal["maxpool"]
    kernel: PairOrInt
    stride: PairOrInt | None = None
    padding: NonNegative | PaddingPair = 0
    ceil_mode: bool = False


class AvgPool(LayerBase):
    """Average pooling. ``stride`` defaults to ``kernel``, as in torch."""

    kind: Literal["avgpool"]
    kernel: PairOrInt
    stride: PairOrInt | None = None
    padding: NonNegative | PaddingPair = 0
    ceil_mode: bool = False
    count_include_pad: bool = True


class AdaptiveAvgPool(LayerBase):
    """Average pooling to a fixed output size."""

    kind: Literal["adaptive_avgpool"]
    output: PairOrInt


class GlobalAvgPool(LayerBase):
    """Average over all spatial positions (output 1×1)."""

    kind: Literal["global_avgpool"]


class LocalResponseNorm(LayerBase):
    """Local response normalization across channels (AlexNet, GoogLeNet v1)."""

    kind: Literal["lrn"]
    size: Positive
    alpha: Annotated[float, Field(ge=0)] = 1e-4
    beta: Annotated[float, Field(ge=0)] = 0.75
    k: Annotated[float, Field(ge=0)] = 1.0


class BatchNorm(LayerBase):
    """Standalone batch norm (over channels of a feature map, or over features)."""

    kind: Literal["batchnorm"]
    eps: Annotated[float, Field(gt=0, lt=1)] = 1e-5
    momentum: Annotated[float, Field(ge=0, le=1)] = 0.1


class Activation(LayerBase):
    """A standalone element-wise activation."""

    kind: Literal["activation"]
    function: ActivationFunction


class Dropout(LayerBase):
    """Dropout with drop probability ``p``."""

    kind: Literal["dropout"]
    p: Annotated[float, Field(ge=0, lt=1)]


class Flatten(LayerBase):
    """Flatten a C×H×W feature map to C·H·W features."""

    kind: Literal["flatten"]


class Linear(LayerBase):
    """Fully connected layer. ``out: num_classes`` refers to the spec's ``num_classes``."""

    kind: Literal["linear"]
    out: Width | Literal["num_classes"]
    bias: bool = True
