"""The rewrite ``optimize_for_inference`` and ``quantize`` run over a built model: conv units
into ``FusedConv`` (batch norm folded in), sibling opening convs of a block into one, batch
norms folded into their neighbours, dropout and drop path left out."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from archbuilder.builder.inference_modules import FusedConv, InferenceParallel
from archbuilder.builder.layers import DropPath, LayerScale
from archbuilder.builder.modules import ParallelBlock
from archbuilder.builder.pooling import InferenceMaxPool2d

__all__ = ["Rewriter", "concat_convs", "fold_neighbours", "without_identities"]


class Rewriter:
    """Rewrites a built model's modules into the optimized ones (each step switchable)."""

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
                children = [child for _, child in fold_neighbours([("", child) for child in children])]
            return without_identities(nn.Sequential(*children))
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
            layers = fold_neighbours(layers)
        return without_identities(nn.Sequential(*(module for _, module in layers)))

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
            heads.append(concat_convs(convs))
            offset = 0
            for index, conv in zip(members, convs):
                routes[index] = (len(heads) - 1, offset, conv.out_channels)
                rests[index] = _after_opening_conv(branches[index])
                offset += conv.out_channels
        return InferenceParallel(
            heads, routes, rests, block.merge, block.scales, block.activation, block.shuffle
        )


def fold_neighbours(layers: list[tuple[str, nn.Module]]) -> list[tuple[str, nn.Module]]:
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


def concat_convs(convs: Sequence[FusedConv]) -> FusedConv:
    first = convs[0]
    return FusedConv(
        torch.cat([c.weight for c in convs]), torch.cat([c.bias for c in convs]), first, first.act
    )


def without_identities(sequential: nn.Sequential) -> nn.Module:
    kept = [m for m in sequential if not isinstance(m, nn.Identity)]
    if len(kept) == 1:
        return kept[0]
    return nn.Sequential(*kept) if kept else nn.Identity()
