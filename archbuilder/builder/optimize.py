"""``optimize_for_inference``: an eval-only copy of a built model, rewritten for speed.

A spec-built model has a known structure: conv units (conv, batch norm, activation) and
multi-branch blocks whose branches all read the block's input. The rewrite uses it:

* **fold_bn** — each batch norm is folded into the conv before it (new weight and bias), a
  standalone batch norm into an unpadded conv right after it, and a layer scale into the conv
  before it when no activation comes between;
* **fuse_siblings** — convs that open different branches of one block and have the same
  kernel, stride, padding and activation (Inception's 1×1 conv and its two 1×1 reductions)
  become one conv, whose output is split among the branches;
* **channels_last** — weights and activations in NHWC, the layout oneDNN's kernels prefer;
* **fuse_activations** — on the CPU, conv, bias and activation run as one oneDNN call, with
  the weight reordered once per input shape into oneDNN's blocked layout instead of at every
  call;
* **separable_pools** — stride-1 max pools (Inception's pool branches) run as separable maxima
  over strided views, without the argmax indices torch's eager pool always computes
  (:mod:`archbuilder.builder.pooling`); exact. Off by default: on the 2-core machine the
  benchmarks ran on it was slower at batch 1 and no faster at batch 8 (docs/performance.md);
* **dtype** — ``torch.bfloat16`` converts weights and activations to bf16 except where the
  precision policy keeps float32 (:mod:`archbuilder.builder.precision` says which and why).
  On a CPU whose oneDNN has no bf16 convs (AVX2 without AVX-512), each conv computes in
  float32 from the bf16 values and rounds its output to bf16
  (:mod:`archbuilder.builder.precision_cpu`).

Dropout, drop path and the aux heads, which do nothing in eval mode, are left out. Each step
can be switched off, to measure what it contributes (``bench/inference.py --ablation``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from archbuilder.builder import precision_cpu
from archbuilder.builder.layers import DropPath, LayerScale
from archbuilder.builder.modules import ArchModel, ParallelBlock, merge_branches
from archbuilder.builder.pooling import InferenceMaxPool2d
from archbuilder.builder.precision import apply_precision, check_dtype, kept_in_fp32
from archbuilder.spec.activations import REGISTRY

__all__ = ["FusedConv", "InferenceModel", "InferenceParallel", "optimize_for_inference"]


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


def optimize_for_inference(
    model: ArchModel,
    *,
    fold_bn: bool = True,
    fuse_siblings: bool = True,
    channels_last: bool = True,
    fuse_activations: bool = True,
    separable_pools: bool = False,
    input_shape: Sequence[int] | None = None,
    dtype: torch.dtype | str = torch.float32,
    keep_fp32: Sequence[str] | None = None,
    output_dtype: torch.dtype | None = torch.float32,
) -> InferenceModel:
    """An eval-only copy of ``model`` computing the same logits faster; ``model`` is untouched.

    Optimize on the device the copy will run on; the copy is frozen (its weights are packed).
    oneDNN weights are packed for ``input_shape`` (N, C, H, W; default: batch 8 at the spec's
    input size) here, and for any other shape on its first call. Each step can be switched
    off (see the module docstring). ``dtype="bf16"`` (or ``torch.bfloat16``) runs the layers
    in bf16 except those ``keep_fp32`` names (default: the spec's ``precision.keep_fp32``, else
    the classifier); the logits come out as ``output_dtype`` (None: as computed).
    """
    if not isinstance(model, ArchModel):
        raise TypeError(
            f"optimize_for_inference takes a model made by archbuilder.build, not {type(model).__name__}"
        )
    dtype = check_dtype(dtype)
    keep = kept_in_fp32(model, keep_fp32)  # before any work: a bad name fails fast
    rewriter = _Rewriter(fold_bn=fold_bn, fuse_siblings=fuse_siblings, separable_pools=separable_pools)
    with torch.no_grad():
        layers = [(name, rewriter.rewrite(model.get_submodule(name))) for name in model.body_names]  # no aux
        if fold_bn:
            layers = _fold_neighbours(layers)
        if dtype != torch.float32:
            precision_cpu.warn_if_not_accelerated("bf16", next(model.parameters()).device)
        body = _without_identities(nn.Sequential(*apply_precision(layers, dtype, keep, output_dtype)))
        steps = {
            "fold_bn": fold_bn,
            "fuse_siblings": fuse_siblings,
            "channels_last": channels_last,
            "fuse_activations": fuse_activations,
            "separable_pools": separable_pools,
            "bf16": dtype == torch.bfloat16,
        }
        optimized = InferenceModel(body, steps).eval()
        if dtype == torch.bfloat16 and not precision_cpu.cpu_support().onednn_bf16:
            for conv in optimized.modules():
                if isinstance(conv, FusedConv) and conv.weight.dtype == torch.bfloat16:
                    conv.compute_in_float32()
        if channels_last:
            optimized = optimized.to(memory_format=torch.channels_last)
        if fuse_activations:
            _enable_onednn(optimized, input_shape or _default_input_shape(model))
    return optimized


class _Rewriter:
    def __init__(self, *, fold_bn: bool, fuse_siblings: bool, separable_pools: bool = False):
        self.fold_bn = fold_bn
        self.fuse_siblings = fuse_siblings
        self.separable_pools = separable_pools

    def rewrite(self, module: nn.Module) -> nn.Module:
        if _is_conv_unit(module):
            return self._conv_unit(module)
        if isinstance(module, ParallelBlock):
            return self._parallel(module)
        if isinstance(module, nn.Sequential):
            children = [self.rewrite(child) for child in module]
            if self.fold_bn:
                children = [child for _, child in _fold_neighbours([("", child) for child in children])]
            return _without_identities(nn.Sequential(*children))
        if isinstance(module, (nn.Dropout, DropPath)):
            return nn.Identity()
        if self.separable_pools and type(module) is nn.MaxPool2d:
            return InferenceMaxPool2d.replacing(module)
        return copy.deepcopy(module).eval()

    def _conv_unit(self, unit: nn.Sequential) -> nn.Module:
        if next(iter(unit._modules)) != "conv":
            return self._preactivated_unit(unit)
        conv: nn.Conv2d = unit.conv
        bn = getattr(unit, "bn", None)
        if bn is not None and not self.fold_bn:
            return copy.deepcopy(unit).eval()
        act = copy.deepcopy(getattr(unit, "act", None))
        weight = conv.weight.detach().clone()
        bias = conv.bias.detach().clone() if conv.bias is not None else weight.new_zeros(weight.shape[0])
        if bn is not None:
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            weight = weight * scale.reshape(-1, 1, 1, 1)
            bias = (bias - bn.running_mean) * scale + bn.bias
        if act is not None and hasattr(act, "inplace"):
            act.inplace = True  # the conv's output is a fresh tensor nothing else reads
        return FusedConv(weight, bias, conv, act)

    def _preactivated_unit(self, unit: nn.Sequential) -> nn.Module:
        """A pre-activation unit (norm, activation, then conv): its batch norm cannot fold into
        the conv after it across the activation, so it stays, in eval mode; with no activation
        between them it folds forward into an unpadded conv."""
        conv: nn.Conv2d = unit.conv
        weight = conv.weight.detach().clone()
        bias = conv.bias.detach().clone() if conv.bias is not None else weight.new_zeros(weight.shape[0])
        fused = FusedConv(weight, bias, conv, None)
        layers = [("", copy.deepcopy(m).eval()) for name, m in unit.named_children() if name != "conv"]
        layers.append(("", fused))
        if self.fold_bn:
            layers = _fold_neighbours(layers)
        return _without_identities(nn.Sequential(*(module for _, module in layers)))

    def _parallel(self, block: ParallelBlock) -> nn.Module:
        branches = [self.rewrite(branch) for branch in block.children()]
        openers = [_opening_conv(branch) for branch in branches]
        groups: dict[tuple, list[int]] = {}
        if self.fuse_siblings:
            for index, conv in enumerate(openers):
                if conv is not None:
                    groups.setdefault(conv.config(), []).append(index)
        heads: list[FusedConv] = []
        routes: list[tuple[int, int, int] | None] = [None] * len(branches)
        rests: list[nn.Module] = list(branches)
        for members in groups.values():
            if len(members) < 2:
                continue
            convs = [openers[i] for i in members]
            heads.append(_concat_convs(convs))
            offset = 0
            for index, conv in zip(members, convs):
                routes[index] = (len(heads) - 1, offset, conv.out_channels)
                rests[index] = _after_opening_conv(branches[index])
                offset += conv.out_channels
        return InferenceParallel(
            heads, routes, rests, block.merge, block.scales, block.activation, block.shuffle
        )


def _fold_neighbours(layers: list[tuple[str, nn.Module]]) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` layers with each layer scale or standalone batch norm folded into a
    conv before it that has no activation, else a batch norm into an unpadded, ungrouped conv
    after it; a fused pair keeps its conv's name."""
    folded: list[tuple[str, nn.Module]] = []
    for name, module in layers:
        previous_name, previous = folded[-1] if folded else (None, None)
        if (
            isinstance(module, (LayerScale, nn.BatchNorm2d))
            and isinstance(previous, FusedConv)
            and previous.act is None
        ):
            if isinstance(module, LayerScale):
                scale, shift = module.gamma.detach(), torch.zeros_like(module.gamma)
            else:
                scale, shift = _bn_affine(module)
            weight = previous.weight * scale.reshape(-1, 1, 1, 1)
            folded[-1] = (previous_name, FusedConv(weight, previous.bias * scale + shift, previous, None))
        elif _folds_forward(previous, module):
            folded[-1] = (name, _bn_into_next_conv(previous, module))
        else:
            folded.append((name, module))
    return folded


def _folds_forward(bn: nn.Module | None, conv: nn.Module) -> bool:
    # Zero padding would pad the normalized map with zeros, which no bias can reproduce.
    return (
        isinstance(bn, nn.BatchNorm2d)
        and isinstance(conv, FusedConv)
        and conv.groups == 1
        and (
            conv.padding in ("valid", (0, 0)) or (conv.padding == "same" and conv.weight.shape[2:] == (1, 1))
        )
    )


def _bn_into_next_conv(bn: nn.BatchNorm2d, conv: FusedConv) -> FusedConv:
    """conv(bn(x)) as one conv: bn(x) = scale·x + shift per input channel."""
    scale, shift = _bn_affine(bn)
    weight = conv.weight * scale.reshape(1, -1, 1, 1)
    bias = conv.bias + (conv.weight * shift.reshape(1, -1, 1, 1)).sum(dim=(1, 2, 3))
    return FusedConv(weight, bias, conv, conv.act)


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """(scale, shift) per channel of an eval-mode batch norm: bn(x) = scale·x + shift."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


def _is_conv_unit(module: nn.Module) -> bool:
    return (
        isinstance(module, nn.Sequential)
        and isinstance(getattr(module, "conv", None), nn.Conv2d)
        and set(module._modules) <= {"conv", "bn", "act"}
    )


def _opening_conv(branch: nn.Module) -> FusedConv | None:
    if isinstance(branch, FusedConv):
        return branch
    if isinstance(branch, nn.Sequential) and len(branch) and isinstance(branch[0], FusedConv):
        return branch[0]
    return None


def _after_opening_conv(branch: nn.Module) -> nn.Module:
    if isinstance(branch, FusedConv):
        return nn.Identity()
    rest = nn.Sequential(*list(branch)[1:])
    return rest if len(rest) else nn.Identity()


def _concat_convs(convs: Sequence[FusedConv]) -> FusedConv:
    first = convs[0]
    return FusedConv(
        torch.cat([c.weight for c in convs]), torch.cat([c.bias for c in convs]), first, first.act
    )


def _without_identities(sequential: nn.Sequential) -> nn.Module:
    kept = [m for m in sequential if not isinstance(m, nn.Identity)]
    if len(kept) == 1:
        return kept[0]
    return nn.Sequential(*kept) if kept else nn.Identity()


def _onednn_usable(weight: Tensor) -> bool:
    return (
        weight.device.type == "cpu"
        and weight.dtype in (torch.float32, torch.bfloat16)
        and torch.backends.mkldnn.is_available()
    )


def _default_input_shape(model: ArchModel) -> tuple[int, ...]:
    spec = getattr(model, "spec", None)
    if spec is None:
        raise ValueError("the model has no spec attached; pass input_shape=(N, C, H, W)")
    return (8, spec.input.channels, spec.input.height, spec.input.width)


def _enable_onednn(model: InferenceModel, input_shape: Sequence[int]) -> None:
    """Switch the convs to oneDNN and pack their weights for ``input_shape`` with one example."""
    convs = [m for m in model.modules() if isinstance(m, FusedConv)]
    if any([conv.enable_onednn() for conv in convs]):  # a list: every conv is switched
        model(torch.zeros(*input_shape, device=convs[0].weight.device))
