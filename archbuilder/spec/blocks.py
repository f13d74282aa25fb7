"""Spec models of multi-branch blocks, and the ``Layer`` union of everything a sequence holds."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from archbuilder.spec.layers import (
    Activation,
    ActivationFunction,
    AdaptiveAvgPool,
    AvgPool,
    BatchNorm,
    ChannelShuffle,
    Conv,
    ConvOptions,
    Dropout,
    DropPath,
    Flatten,
    GlobalAvgPool,
    LayerBase,
    LayerNorm,
    LayerScale,
    Linear,
    LocalResponseNorm,
    MaxPool,
    Name,
    NonNegative,
    PaddingPair,
    PairOrInt,
    Separable,
    SpecModel,
    SqueezeExcite,
    Width,
)
from archbuilder.spec.rounding import make_divisible, squeeze_width
from archbuilder.spec.templates import TemplateUse

__all__ = [
    "LAYER_TYPES",
    "Branch",
    "Branches",
    "Inception",
    "InceptionPool",
    "InvertedResidual",
    "Layer",
    "SliceSize",
    "SqueezeExciteOptions",
]

# A channel slice: a count, a ratio of the input channels (0.125 or "1/8"), or the rest.
Fraction = Annotated[str, Field(pattern=r"^[1-9][0-9]{0,5}/[1-9][0-9]{0,5}$")]
Ratio = Annotated[float, Field(gt=0, lt=1)]
SliceSize = Width | Ratio | Fraction | Literal["rest"]


class InceptionPool(SpecModel):
    """The pooling branch's pool. ``padding`` defaults to ``kernel // 2`` (size-preserving)."""

    kind: Literal["max", "avg"] = "max"
    """Pool type."""
    kernel: PairOrInt = 3
    """Window size."""
    stride: PairOrInt = 1
    """Stride. Anything but 1 shrinks this branch only, so the concat fails."""
    padding: NonNegative | PaddingPair | None = None
    """Padding. Unset: `kernel // 2` (size-preserving)."""
    ceil_mode: bool = False
    """Round the output size up instead of down, as for `maxpool`."""
    count_include_pad: bool = True
    """Average pool only: count the padded zeros in the average, as for `avgpool`."""

    @model_validator(mode="after")
    def _count_include_pad_is_for_avg(self) -> InceptionPool:
        if not self.count_include_pad and self.kind == "max":
            raise ValueError("count_include_pad is an average-pool setting; this pool is kind: max")
        return self


class Inception(LayerBase):
    """The GoogLeNet Inception module, by role.

    Four branches, concatenated: ``ch1x1`` 1×1 conv | ``ch3x3red`` 1×1 → ``ch3x3`` 3×3 |
    ``ch5x5red`` 1×1 → ``ch5x5`` k×k (``kernel_5x5``, default 5; ``factorize_5x5`` makes it two
    stacked 3×3 convs) | pool → ``pool_proj`` 1×1.
    Leaving out a reduction or the projection gives the naive module: the conv reads the
    block input directly, and the pool branch passes its input channels through.
    """

    BRANCHES: ClassVar[tuple[str, ...]] = ("branch1x1", "branch3x3", "branch5x5", "branch_pool")
    """The branches' names, in concat order (module names in a built model)."""
    ROLES: ClassVar[dict[str, str]] = {
        "branch1x1.conv": "ch1x1",
        "branch3x3.reduce": "ch3x3red",
        "branch3x3.conv": "ch3x3",
        "branch5x5.reduce": "ch5x5red",
        "branch5x5.conv": "ch5x5",
        "branch5x5.conv2": "ch5x5",
        "branch_pool.pool": "pool",
        "branch_pool.proj": "pool_proj",
    }
    """Each generated layer (``branch.layer``) and the field it is written by: the one role
    table the IR (where a layer's width is written), the importers and the docs read."""

    kind: Literal["inception"]
    ch1x1: Width
    """Channels of the 1×1 branch."""
    ch3x3red: Width | None = None
    """Channels of the 1×1 reduction before the 3×3 conv. Unset: no reduction."""
    ch3x3: Width
    """Channels of the 3×3 conv."""
    ch5x5red: Width | None = None
    """Channels of the 1×1 reduction before the k×k conv. Unset: no reduction."""
    ch5x5: Width
    """Channels of the k×k conv."""
    kernel_5x5: Annotated[int, Field(strict=True, ge=1, le=15)] = 5
    """k of the "5×5" conv (torchvision's GoogLeNet uses 3). Use an odd k: an even one changes the spatial size and the concat fails."""
    factorize_5x5: bool = False
    """Replace the 5×5 conv by two stacked 3×3 convs (`conv` and `conv2`, both `ch5x5`
    channels), as in Inception v2: the same receptive field. Needs `kernel_5x5: 5`. The second
    conv maps `ch5x5` to `ch5x5`, so this saves weights only when `ch5x5` is less than 16/9 of
    the first conv's input width (`ch5x5red`, or the block's input channels without one)."""
    pool: InceptionPool = InceptionPool()
    """The pool of the pool branch (max 3×3, stride 1, size-preserving by default)."""
    pool_proj: Width | None = None
    """Channels of the 1×1 projection after the pool. Unset: no projection (the pool passes its input channels through)."""
    conv: ConvOptions | None = None
    """Conv settings for the block's convs."""

    def as_branches(self) -> list[Branch]:
        """The four branches as a general block would write them (names become module names)."""

        def conv(name: str, out: int, kernel: int) -> Conv:
            # model_construct: the values come from this validated block, no need to check again
            return Conv.model_construct(name=name, kind="conv", out=out, kernel=kernel, padding=kernel // 2)

        def reduced(red: int | None, out: int, kernel: int, stacked: int = 1) -> list[Layer]:
            head = [conv("reduce", red, 1)] if red is not None else []
            convs = [conv("conv" if i == 0 else f"conv{i + 1}", out, kernel) for i in range(stacked)]
            return [*head, *convs]

        pool = self.pool
        kernel = pool.kernel if isinstance(pool.kernel, int) else tuple(pool.kernel)
        padding = (
            pool.padding
            if pool.padding is not None
            else (kernel // 2 if isinstance(kernel, int) else tuple(k // 2 for k in kernel))
        )
        pool_type = MaxPool if pool.kind == "max" else AvgPool
        extra = {} if pool.kind == "max" else {"count_include_pad": pool.count_include_pad}
        pool_layer = pool_type.model_construct(
            name="pool",
            kind=f"{pool.kind}pool",
            kernel=kernel,
            stride=pool.stride,
            padding=padding,
            ceil_mode=pool.ceil_mode,
            **extra,
        )
        projection = [conv("proj", self.pool_proj, 1)] if self.pool_proj is not None else []
        layers = [
            [conv("conv", self.ch1x1, 1)],
            reduced(self.ch3x3red, self.ch3x3, 3),
            self._branch5x5(reduced),
            [pool_layer, *projection],
        ]
        return [Branch.model_construct(name=name, layers=chain) for name, chain in zip(self.BRANCHES, layers)]

    def _branch5x5(self, reduced) -> list[Layer]:
        if self.factorize_5x5:  # two stacked 3×3 convs: the 5×5's receptive field
            return reduced(self.ch5x5red, self.ch5x5, 3, stacked=2)
        return reduced(self.ch5x5red, self.ch5x5, self.kernel_5x5)

    @model_validator(mode="after")
    def _factorize_needs_a_5x5(self) -> Inception:
        if self.factorize_5x5 and self.kernel_5x5 != 5:
            raise ValueError("factorize_5x5 replaces a 5×5 conv by two 3×3 convs; it needs kernel_5x5: 5")
        return self


class Branch(SpecModel):
    """One path of a multi-branch block. No layers means identity (a residual shortcut).

    ``scale`` multiplies the branch's output before an add merge (Inception-ResNet's
    residual scaling).
    """

    name: Name | None = None
    """Branch name. Unset: `branch{position}` (the second branch is `branch2`)."""
    layers: list[Layer] = []
    """The branch's layers, in order. No layers is the identity."""
    scale: Annotated[float, Field(gt=0, le=1000)] = 1.0
    """Multiplies the branch's output before an add merge (residual scaling)."""
    channels: SliceSize | None = None
    """In a `split: true` block, the input channels this branch reads: a count, a ratio of the
    block's input channels (`0.125` or `"1/8"`, rounded down), or `rest` (what the other
    branches leave). Unset: the branch reads all of the input (only outside split blocks)."""


class Branches(LayerBase):
    """A general multi-branch block: each branch reads the block input, outputs are merged.

    ``merge: concat`` joins along channels (spatial sizes must agree); ``merge: add`` sums
    (shapes must agree), each branch times its ``scale``; ``merge: mul`` multiplies, broadcasting
    a C×1×1 output over H×W (a squeeze-and-excitation gate times the block input). ``activation``
    is applied to the merged output (Inception-ResNet's ReLU after the residual sum). With ``split: true`` the
    branches read disjoint slices of the input channels instead, each its ``channels``.
    ``shuffle: g`` shuffles the merged channels in ``g`` groups last (a ShuffleNetV2 unit).
    """

    kind: Literal["branches"]
    merge: Literal["concat", "add", "mul"] = "concat"
    """`concat` joins along channels (spatial sizes must agree); `add` sums (shapes must agree);
    `mul` multiplies element-wise (channels must agree; a 1×1 output broadcasts over H×W)."""
    branches: Annotated[list[Branch], Field(min_length=1)]
    """The branches, in order (concat order)."""
    split: bool = False
    """Each branch reads its own slice of the input channels (its `channels`), the slices taken
    in branch order and covering the input exactly (InceptionNeXt's token mixer, ShuffleNetV2's
    channel split)."""
    activation: ActivationFunction | None = None
    """Activation applied to the merged output (e.g. ReLU after a residual sum). Unset: none."""
    shuffle: Width | None = None
    """Channel shuffle of the merged output in this many groups, after `activation` (as a
    `channel_shuffle` layer would do; ShuffleNetV2's units use 2). Must divide the merged
    channels. Unset: none."""
    conv: ConvOptions | None = None
    """Conv settings for every conv inside, nested blocks included."""


class SqueezeExciteOptions(SpecModel):
    """The squeeze-and-excitation gate of an inverted residual block (see the `se` layer).

    Its squeeze width is ``squeeze_channels``, or the channels ``of`` the block (the
    expanded ones the gate reads, or the block's input) divided by ``reduction``.
    """

    squeeze_channels: Width | None = None
    """Channels of the squeeze. Unset: from `reduction`."""
    reduction: Annotated[float, Field(ge=1, le=1 << 20)] | None = 4
    """The squeeze width is the channels `of` divided by this (rounded down, at least 1)."""
    of: Literal["expanded", "input"] = "expanded"
    """What `reduction` divides: the expanded channels (MobileNetV3) or the block's input channels (EfficientNet)."""
    divisor: Annotated[int, Field(strict=True, ge=1, le=256)] = 1
    """Round the squeeze width from `reduction` to a multiple of this (MobileNetV3: `8`)."""
    activation: ActivationFunction = "relu"
    """Activation after the squeeze conv (EfficientNet: `silu`)."""
    gate: Literal["sigmoid", "hardsigmoid"] = "sigmoid"
    """The gate's activation (MobileNetV3: `hardsigmoid`)."""

    @model_validator(mode="after")
    def _one_width(self) -> SqueezeExciteOptions:
        if self.squeeze_channels is not None and "reduction" in self.model_fields_set:
            raise ValueError("give squeeze_channels or reduction, not both")
        return self

    def layer(self, expanded: int, channels: int) -> SqueezeExcite:
        """The `se` layer for a block of ``channels`` input channels expanded to ``expanded``."""
        squeeze = self.squeeze_channels
        if squeeze is None:
            base = expanded if self.of == "expanded" else channels
            squeeze = squeeze_width(base, self.reduction or 4, self.divisor)
        return SqueezeExcite.model_construct(
            name="se", kind="se", squeeze_channels=squeeze, activation=self.activation, gate=self.gate
        )


class InvertedResidual(LayerBase):
    """MobileNetV2/V3's inverted residual and EfficientNet's MBConv, by role.

    Branch ``block``: a 1×1 ``expand`` conv to the expanded width (left out when that is the
    input width), a k×k depthwise conv (``depthwise``, stride ``stride``, size-preserving
    padding), an optional squeeze-and-excitation gate (``se``), and a 1×1 ``project`` conv to
    ``out`` with no activation; plus an identity ``shortcut`` added to it when the shapes
    allow (stride 1 and input channels = ``out``), with an optional drop path before the sum.

    With ``repeat: n`` the copies form a stage: the first has ``stride``, the rest stride 1
    (as torchvision and timm build a stage).
    """

    kind: Literal["inverted_residual"]
    out: Width
    """Output channels (of the project conv)."""
    expanded: Width | None = None
    """Expanded channels (MobileNetV3 writes these). Give this or `expansion`."""
    expansion: Annotated[float, Field(gt=0, le=64)] | None = None
    """Expansion ratio: the expanded width is the input channels times this, rounded to a
    multiple of 8 as torchvision and timm round it (EfficientNet writes these)."""
    kernel: Annotated[int, Field(strict=True, ge=1, le=15)] = 3
    """Kernel size of the depthwise conv (odd)."""
    stride: Annotated[int, Field(strict=True, ge=1, le=8)] = 1
    """Stride of the depthwise conv (of the first copy, when repeated)."""
    activation: ActivationFunction | None = None
    """Activation after the expand and depthwise convs. Unset: inherited (built-in `relu`)."""
    se: SqueezeExciteOptions | None = None
    """Squeeze-and-excitation after the depthwise conv. Unset: none."""
    shortcut: bool = True
    """Add the input to the output when the shapes allow (stride 1, input channels = `out`)."""
    drop_path: bool = False
    """Stochastic depth on the residual branch (rate from the spec's `drop_path_rate` ramp);
    no effect on a block without a shortcut, as in torchvision."""
    conv: ConvOptions | None = None
    """Conv settings for the block's convs (batch-norm eps and momentum, …)."""

    @model_validator(mode="after")
    def _one_width(self) -> InvertedResidual:
        if (self.expanded is None) == (self.expansion is None):
            raise ValueError("give exactly one of expanded (channels) and expansion (a ratio)")
        if self.kernel % 2 == 0:
            raise ValueError(f"kernel {self.kernel} is even; an odd kernel keeps the padding symmetric")
        return self

    def expanded_width(self, channels: int) -> int:
        """The expanded channels for ``channels`` input channels."""
        return self.expanded if self.expanded is not None else make_divisible(channels * self.expansion, 8)

    def has_shortcut(self, channels: int) -> bool:
        return self.shortcut and self.stride == 1 and channels == self.out

    def as_branches(self, channels: int) -> Branches:
        """The block as a general block would write it, for ``channels`` input channels."""
        expanded = self.expanded_width(channels)
        act = self.activation

        def conv(name: str, **fields) -> Conv:
            return Conv.model_construct(name=name, kind="conv", **fields)

        layers: list[Layer] = []
        if expanded != channels:
            layers.append(conv("expand", out=expanded, kernel=1, activation=act))
        window = {"kernel": self.kernel, "stride": self.stride, "padding": (self.kernel - 1) // 2}
        layers.append(conv("depthwise", groups="depthwise", activation=act, **window))
        if self.se is not None:
            layers.append(self.se.layer(expanded, channels))
        layers.append(conv("project", out=self.out, kernel=1, activation="none"))
        branches = [Branch.model_construct(name="block", layers=layers)]
        if self.has_shortcut(channels):
            if self.drop_path:
                layers.append(DropPath.model_construct(name="drop_path", kind="drop_path"))
            branches.append(Branch.model_construct(name="shortcut", layers=[]))
        merge = "add" if len(branches) == 2 else "concat"  # a concat of one branch is that branch
        return Branches.model_construct(kind="branches", merge=merge, branches=branches, conv=self.conv)

    def field_of(self, layer: str) -> str:
        """The field a generated layer comes from, for error locations."""
        width = "expanded" if self.expanded is not None else "expansion"
        return {"expand": width, "depthwise": "kernel", "se": "se", "project": "out"}.get(layer, "drop_path")


LAYER_TYPES = (
    Conv,
    Separable,
    MaxPool,
    AvgPool,
    AdaptiveAvgPool,
    GlobalAvgPool,
    LocalResponseNorm,
    BatchNorm,
    LayerNorm,
    LayerScale,
    DropPath,
    Activation,
    Dropout,
    Flatten,
    Linear,
    Inception,
    Branches,
    TemplateUse,
    ChannelShuffle,
    SqueezeExcite,
    InvertedResidual,
)

Layer = Annotated[
    Conv
    | Separable
    | MaxPool
    | AvgPool
    | AdaptiveAvgPool
    | GlobalAvgPool
    | LocalResponseNorm
    | BatchNorm
    | LayerNorm
    | LayerScale
    | DropPath
    | Activation
    | Dropout
    | Flatten
    | Linear
    | Inception
    | Branches
    | TemplateUse
    | ChannelShuffle
    | SqueezeExcite
    | InvertedResidual,
    Field(discriminator="kind"),
]

Branch.model_rebuild()
Branches.model_rebuild()
