"""Spec models of the primitive layers. Pure data: nothing here knows about torch.

Every layer is a mapping with a ``kind`` (the discriminator) and an optional ``name``.
Input channel counts are never written; the IR infers them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from archbuilder.spec.activations import ACTIVATION_NAMES

__all__ = [
    "ACTIVATIONS",
    "LAYER_NORM_EPS",
    "Activation",
    "ActivationFunction",
    "AdaptiveAvgPool",
    "AvgPool",
    "BatchNorm",
    "ChannelShuffle",
    "Conv",
    "ConvOptions",
    "DropPath",
    "Dropout",
    "Flatten",
    "GlobalAvgPool",
    "LayerBase",
    "LayerNorm",
    "LayerScale",
    "Linear",
    "LocalResponseNorm",
    "MaxPool",
    "Separable",
    "SpecModel",
    "SqueezeExcite",
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

ActivationFunction = Literal[(*ACTIVATION_NAMES, "none")]  # type: ignore[valid-type]
ACTIVATIONS: tuple[str, ...] = ActivationFunction.__args__  # type: ignore[attr-defined]
Norm = Literal["batch", "layer", "none"]
LAYER_NORM_EPS = 1e-6  # `norm: layer`: ConvNeXt's LayerNorm2d (torchvision and timm)
Order = Literal["post", "pre"]


class SpecModel(BaseModel):
    """Base of every spec model: immutable, unknown keys rejected, no NaN or infinity.

    A field's docstring (the string literal under it) is its description: it is shown in
    the JSON Schema (editor hovers) and in the field tables of docs/spec.md.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True)


class ConvOptions(SpecModel):
    """Convolution settings shared by many layers (``defaults.conv``, a block's ``conv``).

    ``norm: layer`` normalizes over the channels at each position (eps 1e-6) with a learnable
    weight and bias per channel; ``bn_eps`` and ``bn_momentum`` apply to ``norm: batch`` only.
    Unset fields inherit: layer, then block, then ``defaults.conv``, then the built-ins
    (``norm: batch``, ``activation: relu``, ``bn_eps: 1e-5``, ``bn_momentum: 0.1``,
    ``order: post``, and ``bias`` true exactly when ``norm`` is ``none``).
    """

    norm: Norm | None = None
    """Batch norm after the convolution (`batch`), layer norm over its channels at each position
    (`layer`: ConvNeXt's LayerNorm2d, eps 1e-6), or none. Unset: inherited (built-in `batch`)."""
    activation: ActivationFunction | None = None
    """Activation after the norm; `none` for none. Unset: inherited (built-in `relu`)."""
    bias: bool | None = None
    """Convolution bias. Unset: inherited; if no level sets it, true exactly when the resolved `norm` is `none`."""
    bn_eps: Annotated[float, Field(gt=0, lt=1)] | None = None
    """Batch-norm epsilon. Unset: inherited (built-in `1e-5`)."""
    bn_momentum: Annotated[float, Field(ge=0, le=1)] | None = None
    """Batch-norm running-statistics momentum. Unset: inherited (built-in `0.1`)."""
    order: Order | None = None
    """`post`: the conv, then its norm and activation; `pre`: the norm and activation on the
    conv's input, then the conv (pre-activation: DenseNet's BN → ReLU → conv). Unset:
    inherited (built-in `post`)."""


class LayerBase(SpecModel):
    """Fields every layer has.

    ``name`` becomes the module name in the built model. ``repeat: n`` writes n copies in a
    row, named ``{name}_1`` … ``{name}_n``; a tap on ``name`` reads the last copy.
    """

    name: Name | None = None
    """The layer's name, which becomes its module name. Unset: automatic (`{kind}{n}`, such as
    `conv2`)."""
    repeat: Annotated[int, Field(strict=True, ge=1, le=1000)] = 1
    """Write the layer this many times in a row, named `{name}_1` … `{name}_n`."""


class Conv(LayerBase):
    """2-D convolution, followed by a norm and an activation as ``norm``/``activation`` say.

    ``groups: depthwise`` makes one group per input channel; ``out`` may then be left out
    (it is the input's channels) or be a multiple of them.
    The last six fields override the enclosing block's ``conv`` and ``defaults.conv``;
    ``order: pre`` puts the norm and activation before the conv (pre-activation).
    """

    kind: Literal["conv"]
    out: Width | None = None
    """Output channels. Required, except for `groups: depthwise` (unset: the input channels)."""
    kernel: PairOrInt
    """Kernel size."""
    stride: PairOrInt = 1
    """Stride."""
    padding: NonNegative | PaddingPair | Literal["same"] = 0
    """Zero padding on each side, or `same` (output size = input size; needs stride 1)."""
    dilation: PairOrInt = 1
    """Dilation."""
    groups: Width | Literal["depthwise"] = 1
    """Grouped convolution; must divide the input channels and `out`. `depthwise`: one group per input channel."""
    norm: Norm | None = None
    """Norm after the convolution: `batch`, `layer` (over channels, eps 1e-6) or `none`. Unset: inherited (built-in `batch`)."""
    activation: ActivationFunction | None = None
    """Activation after the norm; `none` for none. Unset: inherited (built-in `relu`)."""
    bias: bool | None = None
    """Convolution bias. Unset: inherited; if no level sets it, true exactly when the resolved `norm` is `none`."""
    bn_eps: Annotated[float, Field(gt=0, lt=1)] | None = None
    """Batch-norm epsilon. Unset: inherited (built-in `1e-5`)."""
    bn_momentum: Annotated[float, Field(ge=0, le=1)] | None = None
    """Batch-norm momentum. Unset: inherited (built-in `0.1`)."""
    order: Order | None = None
    """`post`: the conv, then its norm and activation; `pre`: the norm (over the input
    channels) and activation first, then the conv (DenseNet's BN → ReLU → conv). Unset:
    inherited (built-in `post`)."""

    @model_validator(mode="after")
    def _out_is_given(self) -> Conv:
        if self.out is None and self.groups != "depthwise":
            raise ValueError("missing required key 'out' (only a groups: depthwise conv may leave it out)")
        _no_bn_settings_on_layer_norm(self)
        return self


def _no_bn_settings_on_layer_norm(layer: Conv | Separable) -> None:
    """``bn_eps``/``bn_momentum`` written beside ``norm: layer`` would silently do nothing."""
    given = [key for key in ("bn_eps", "bn_momentum") if getattr(layer, key) is not None]
    if layer.norm == "layer" and given:
        raise ValueError(
            f"{' and '.join(given)} set a batch norm, but this conv has norm: layer (eps 1e-6); drop "
            f"{'them' if len(given) > 1 else 'it'}, or for another eps write norm: none and a layernorm layer after"
        )


class Separable(LayerBase):
    """Depthwise-separable convolution: a k×k conv per input channel (``multiplier`` filters
    each, no bias, norm or activation), then a 1×1 conv to ``out`` channels followed by batch
    norm and an activation as ``norm``/``activation`` say (Xception's ``SeparableConv2D``).

    ``stride``, ``padding`` and ``dilation`` apply to the depthwise conv; the last five
    fields to the pointwise conv, inheriting like a conv's.
    """

    kind: Literal["separable"]
    out: Width
    """Output channels (of the pointwise conv)."""
    kernel: PairOrInt
    """Kernel size of the depthwise conv."""
    stride: PairOrInt = 1
    """Stride of the depthwise conv."""
    padding: NonNegative | PaddingPair | Literal["same"] = 0
    """Zero padding of the depthwise conv, or `same` (needs stride 1)."""
    dilation: PairOrInt = 1
    """Dilation of the depthwise conv."""
    multiplier: Annotated[int, Field(strict=True, ge=1, le=1024)] = 1
    """Depthwise filters per input channel (the depth multiplier)."""
    norm: Norm | None = None
    """Norm after the pointwise conv: `batch`, `layer` or `none`. Unset: inherited (built-in `batch`)."""
    activation: ActivationFunction | None = None
    """Activation after the norm; `none` for none. Unset: inherited (built-in `relu`)."""
    bias: bool | None = None
    """Bias of the pointwise conv (the depthwise conv has none). Unset: inherited, as a conv's."""
    bn_eps: Annotated[float, Field(gt=0, lt=1)] | None = None
    """Batch-norm epsilon. Unset: inherited (built-in `1e-5`)."""
    bn_momentum: Annotated[float, Field(ge=0, le=1)] | None = None
    """Batch-norm momentum. Unset: inherited (built-in `0.1`)."""

    @model_validator(mode="after")
    def _norm_settings_fit(self) -> Separable:
        _no_bn_settings_on_layer_norm(self)
        return self


class MaxPool(LayerBase):
    """Max pooling. ``stride`` defaults to ``kernel``, as in torch."""

    kind: Literal["maxpool"]
    kernel: PairOrInt
    """Window size."""
    stride: PairOrInt | None = None
    """Stride. Unset: the kernel size, as in torch."""
    padding: NonNegative | PaddingPair = 0
    """Padding on each side; at most half the kernel."""
    ceil_mode: bool = False
    """Round the output size up instead of down."""


class AvgPool(LayerBase):
    """Average pooling. ``stride`` defaults to ``kernel``, as in torch."""

    kind: Literal["avgpool"]
    kernel: PairOrInt
    """Window size."""
    stride: PairOrInt | None = None
    """Stride. Unset: the kernel size, as in torch."""
    padding: NonNegative | PaddingPair = 0
    """Padding on each side; at most half the kernel."""
    ceil_mode: bool = False
    """Round the output size up instead of down."""
    count_include_pad: bool = True
    """Count the padded zeros in the average."""


class AdaptiveAvgPool(LayerBase):
    """Average pooling to a fixed output size."""

    kind: Literal["adaptive_avgpool"]
    output: PairOrInt
    """Output height and width."""


class GlobalAvgPool(LayerBase):
    """Average over all spatial positions (output 1×1)."""

    kind: Literal["global_avgpool"]


class LocalResponseNorm(LayerBase):
    """Local response normalization across channels (AlexNet, GoogLeNet v1)."""

    kind: Literal["lrn"]
    size: Positive
    """Number of neighbouring channels."""
    alpha: Annotated[float, Field(ge=0)] = 1e-4
    """Scale."""
    beta: Annotated[float, Field(ge=0)] = 0.75
    """Exponent."""
    k: Annotated[float, Field(ge=0)] = 1.0
    """Additive constant."""


class BatchNorm(LayerBase):
    """Standalone batch norm (over channels of a feature map, or over features)."""

    kind: Literal["batchnorm"]
    eps: Annotated[float, Field(gt=0, lt=1)] = 1e-5
    """Epsilon."""
    momentum: Annotated[float, Field(ge=0, le=1)] = 0.1
    """Running-statistics momentum."""


class LayerNorm(LayerBase):
    """Layer normalization: over the features of a flat vector, or over the channels at each
    position of a C×H×W feature map (ConvNeXt's ``LayerNorm2d``); a learnable weight and bias
    per channel."""

    kind: Literal["layernorm"]
    eps: Annotated[float, Field(gt=0, lt=1)] = 1e-5
    """Epsilon (torch's default; timm's ConvNeXt-style models use `1e-6`)."""


class LayerScale(LayerBase):
    """A learnable per-channel multiplier ``gamma`` (CaiT / ConvNeXt layer scale), every
    channel starting at ``init``."""

    kind: Literal["layer_scale"]
    init: float = 1e-6
    """Initial value of every channel's multiplier."""


class DropPath(LayerBase):
    """Stochastic depth: in training, each sample's input is zeroed with probability ``rate``
    (``mode: row``, timm's ``DropPath`` and torchvision's ``StochasticDepth``), or the whole
    batch's (``mode: batch``); kept inputs are divided by ``1 - rate``. The identity in eval mode.

    Put it at the end of a residual branch. Unset ``rate``: the spec's ``drop_path_rate`` ramp.
    """

    kind: Literal["drop_path"]
    rate: Annotated[float, Field(ge=0, lt=1)] | None = None
    """Drop probability. Unset: from the spec's `drop_path_rate`, which ramps linearly from 0 at
    the first such layer to `drop_path_rate` at the last."""
    mode: Literal["row", "batch"] = "row"
    """`row`: each sample is dropped on its own; `batch`: the whole batch at once."""
    scale_by_keep: bool = True
    """Divide kept inputs by the keep probability `1 - rate`, so the expectation is unchanged."""


class Activation(LayerBase):
    """A standalone element-wise activation."""

    kind: Literal["activation"]
    function: ActivationFunction
    """The activation function; `none` is the identity."""


class Dropout(LayerBase):
    """Dropout with drop probability ``p``."""

    kind: Literal["dropout"]
    p: Annotated[float, Field(ge=0, lt=1)]
    """Drop probability."""


class Flatten(LayerBase):
    """Flatten a C×H×W feature map to C·H·W features."""

    kind: Literal["flatten"]


class Linear(LayerBase):
    """Fully connected layer. ``out: num_classes`` refers to the spec's ``num_classes``."""

    kind: Literal["linear"]
    out: Width | Literal["num_classes"]
    """Output features; `num_classes` takes the spec's `num_classes`."""
    bias: bool = True
    """Bias."""


class ChannelShuffle(LayerBase):
    """Channel shuffle (ShuffleNet): the C channels, read as ``groups`` rows of C/``groups``,
    are written out column by column, so that each group of the next grouped conv or channel
    split sees channels from every group before it. No parameters."""

    kind: Literal["channel_shuffle"]
    groups: Width
    """Number of groups; must divide the input channels (ShuffleNetV2: 2)."""


class SqueezeExcite(LayerBase):
    """Squeeze-and-excitation (Hu et al. 2018; torchvision's ``SqueezeExcitation``): the input
    times a per-channel gate computed from it — global average pool, 1×1 conv to the squeeze
    width (with bias) → ``activation`` → 1×1 conv back (with bias) → ``gate``.

    The squeeze width is ``squeeze_channels``, or the input channels divided by ``reduction``
    (rounded down, at least 1; with ``divisor`` above 1, rounded to a multiple of it as
    width scaling rounds). Give exactly one of the two.
    """

    kind: Literal["se"]
    squeeze_channels: Width | None = None
    """Channels of the squeeze (the first 1×1 conv's output)."""
    reduction: Annotated[float, Field(ge=1, le=MAX_WIDTH)] | None = None
    """The squeeze width is the input channels divided by this (`4`: a quarter)."""
    divisor: Annotated[int, Field(strict=True, ge=1, le=256)] = 1
    """With `reduction`: round the squeeze width to a multiple of this (MobileNetV3: `8`)."""
    activation: ActivationFunction = "relu"
    """Activation after the squeeze conv (EfficientNet: `silu`)."""
    gate: Literal["sigmoid", "hardsigmoid"] = "sigmoid"
    """The gate's activation (MobileNetV3: `hardsigmoid`)."""

    @model_validator(mode="after")
    def _one_width(self) -> SqueezeExcite:
        if (self.squeeze_channels is None) == (self.reduction is None):
            raise ValueError("give exactly one of squeeze_channels and reduction")
        if self.divisor != 1 and self.reduction is None:
            raise ValueError("divisor rounds the width reduction gives; squeeze_channels is exact")
        return self
