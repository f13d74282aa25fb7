"""The modules an optimized model is made of: ``FusedConv`` (a conv with its batch norm folded
in and its activation attached, run as one oneDNN call on the CPU), ``InferenceParallel`` (a
block whose sibling opening convs run as one) and ``InferenceModel`` (the whole, eval only).
:mod:`.rewrite` builds them from a built model; :mod:`.optimize` is the entry point."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from archbuilder.builder.modules import merge_branches
from archbuilder.spec.activations import REGISTRY

__all__ = ["FusedConv", "InferenceModel", "InferenceParallel", "enable_onednn"]


def _onednn_activation(act: nn.Module | None) -> tuple[str, list[float], str] | None:
    """oneDNN's name, scalars and algorithm for an activation it fuses into a conv, else None."""
    if act is None:
        return ("none", [], "")
    name = _ONEDNN.get(type(act))
    if name is None:
        return None
    scalars = {"hardtanh": [0.0, 6.0], "leaky_relu": [getattr(act, "negative_slope", 0.0)]}.get(name, [])
    return (name, scalars, act.approximate if name == "gelu" else "")


# the activation modules oneDNN fuses into a conv, and its names for them
_ONEDNN = {getattr(nn, entry.module): entry.onednn for entry in REGISTRY.values() if entry.onednn}


_PACKED_SHAPES = 4  # input shapes a conv keeps packed weights for
_compiling: Callable[[], bool] = getattr(getattr(torch, "compiler", None), "is_compiling", lambda: False)


class FusedConv(nn.Module):
    """A conv with its batch norm folded in and its activation attached: ``act(conv(x) + b)``.

    With oneDNN enabled, on the CPU in float32 or bfloat16, it runs as one fused oneDNN call on a weight
    packed into oneDNN's layout for the input's shape (packed on the first call with that
    shape, and kept for the last few shapes); otherwise, and while ``torch.compile`` traces
    it (inductor does its own packing), as ``F.conv2d`` followed by the activation. After
    :meth:`compute_in_float32`, a bf16 conv computes in float32 from its bf16 values and
    returns bf16 (for CPUs whose oneDNN has no bf16 convs).
    """

    def __init__(self, weight: Tensor, bias: Tensor, conv: nn.Conv2d | FusedConv, act: nn.Module | None):
        super().__init__()
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)
        self.stride, self.padding = conv.stride, conv.padding
        self.dilation, self.groups = conv.dilation, conv.groups
        self.act = act
        self._onednn_activation = _onednn_activation(act)
        self._onednn = False
        self._packed: dict[tuple[int, ...], Tensor] = {}
        self.register_buffer("_weight_fp32", None, persistent=False)
        self.register_buffer("_bias_fp32", None, persistent=False)

    @property
    def onednn(self) -> bool:
        """Whether the conv runs as one fused oneDNN call (on CPU inputs of its weight's dtype)."""
        return self._onednn

    @property
    def out_channels(self) -> int:
        return self.weight.shape[0]

    def config(self) -> tuple:
        """What two convs reading one input must share to be fused into one."""
        act = None if self.act is None else (type(self.act), repr(self.act))
        return (tuple(self.weight.shape[1:]), self.stride, self.padding, self.dilation, self.groups, act)

    @property
    def computes_in_float32(self) -> bool:
        """Whether a bf16 conv computes in float32 (:meth:`compute_in_float32`)."""
        return self._weight_fp32 is not None

    def compute_in_float32(self) -> None:
        """Compute in float32 from the bf16 weight's values and return bf16: the products of
        bf16 values are exact in float32 and the sums are float32, as in oneDNN's bf16 convs,
        for CPUs where torch has no oneDNN bf16 convs and its own is several times slower."""
        self.register_buffer("_weight_fp32", self.weight.float(), persistent=False)
        self.register_buffer("_bias_fp32", self.bias.float(), persistent=False)
        self._packed.clear()

    def enable_onednn(self) -> bool:
        """Run as one oneDNN call where it can (CPU, float32 or bf16, an activation oneDNN fuses)."""
        self._onednn = (
            _onednn_usable(self._computed()[0])
            and self._onednn_activation is not None
            and not isinstance(self.padding, str)
        )
        return self._onednn

    def _computed(self) -> tuple[Tensor, Tensor]:
        """The weight and bias the conv computes with."""
        if self._weight_fp32 is not None:
            return self._weight_fp32, self._bias_fp32
        return self.weight, self.bias

    def _packed_for(self, weight: Tensor, shape: tuple[int, ...]) -> Tensor:
        packed = self._packed.get(shape)
        if packed is None:
            if len(self._packed) >= _PACKED_SHAPES:
                del self._packed[next(iter(self._packed))]  # the oldest
            packed = torch.ops.mkldnn._reorder_convolution_weight(
                weight, list(self.padding), list(self.stride), list(self.dilation), self.groups, list(shape),
            )  # fmt: skip
            self._packed[shape] = packed
        return packed

    def forward(self, x: Tensor) -> Tensor:
        if self._weight_fp32 is not None:
            return self._conv(x.float()).to(x.dtype)
        return self._conv(x)

    def _conv(self, x: Tensor) -> Tensor:
        weight, bias = self._computed()
        if self._onednn and x.device.type == "cpu" and x.dtype == weight.dtype and not _compiling():
            attr, scalars, algorithm = self._onednn_activation
            return torch.ops.mkldnn._convolution_pointwise(
                x, self._packed_for(weight, tuple(x.shape)), bias, list(self.padding), list(self.stride),
                list(self.dilation), self.groups, attr, scalars, algorithm,
            )  # fmt: skip
        x = F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)
        return x if self.act is None else self.act(x)

    def extra_repr(self) -> str:
        o, i, kh, kw = self.weight.shape
        fused = f", onednn={self._onednn_activation[0]}" if self._onednn else ""
        fp32 = ", computes in float32" if self.computes_in_float32 else ""
        return (
            f"{i * self.groups}, {o}, kernel_size=({kh}, {kw}), stride={self.stride}, "
            f"padding={self.padding}{fused}{fp32}"
        )


class InferenceParallel(nn.Module):
    """A multi-branch block after sibling fusion.

    ``heads`` are the fused opening convs; ``routes[i]`` says where branch ``i`` starts:
    ``(head index, channel offset, channels)`` into a head's output, or ``None`` when the
    branch reads the block input itself. ``branches[i]`` is the rest of branch ``i``.
    """

    def __init__(
        self,
        heads: Sequence[FusedConv],
        routes: Sequence[tuple[int, int, int] | None],
        branches: Sequence[nn.Module],
        merge: str,
        scales: Sequence[float] | None = None,
        activation: Callable[[Tensor], Tensor] | None = None,
        shuffle: int | None = None,
    ):
        super().__init__()
        self.heads = nn.ModuleList(heads)
        self.routes = tuple(routes)
        self.branches = nn.ModuleList(branches)
        self.merge = merge
        self.scales = tuple(scales) if scales else None
        self.activation = activation
        self.shuffle = shuffle

    def forward(self, x: Tensor) -> Tensor:
        opened = [head(x) for head in self.heads]
        outputs = []
        for route, branch in zip(self.routes, self.branches):
            if route is None:
                outputs.append(branch(x))
            else:
                head, start, width = route
                source = opened[head]
                if width != source.shape[1]:
                    source = source.narrow(1, start, width)
                outputs.append(branch(source))
        return merge_branches(outputs, self.merge, self.scales, self.activation, self.shuffle, x)

    def extra_repr(self) -> str:
        scales = f", scales={self.scales}" if self.scales else ""
        return f"merge={self.merge}{scales}, routes={self.routes}"


class InferenceModel(nn.Module):
    """The optimized model: input to logits, eval only. ``steps`` says which rewrites ran."""

    def __init__(self, body: nn.Module, steps: dict[str, bool]):
        super().__init__()
        self.body = body
        self.steps = steps

    def forward(self, x: Tensor) -> Tensor:
        if self.steps["channels_last"] and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.body(x)

    def train(self, mode: bool = True) -> InferenceModel:
        if mode:
            raise RuntimeError("an optimized model is eval only; train the model it was made from")
        return super().train(False)


def _onednn_usable(weight: Tensor) -> bool:
    return (
        weight.device.type == "cpu"
        and weight.dtype in (torch.float32, torch.bfloat16)
        and torch.backends.mkldnn.is_available()
    )


def enable_onednn(model: InferenceModel, input_shape: Sequence[int]) -> None:
    """Switch the convs to oneDNN and pack their weights for ``input_shape`` with one example."""
    convs = [m for m in model.modules() if isinstance(m, FusedConv)]
    if any([conv.enable_onednn() for conv in convs]):  # a list: every conv is switched
        model(torch.zeros(*input_shape, device=convs[0].weight.device))
