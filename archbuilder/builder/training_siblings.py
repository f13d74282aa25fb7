"""Sibling conv units for training: the convs that open different branches of one block and
read its input, run as one conv, one batch norm and one activation.

A conv unit is ``Sequential(conv, [bn], [act])`` as the builder makes it. Siblings with the
same conv settings (Inception's 1×1 conv and its 1×1 reductions) compute the same thing as
one conv whose weight is their weights concatenated along the output channels, followed by
one batch norm over the concatenated channels. Nothing is copied into new parameters: the
concatenation happens in ``forward``, so autograd splits the gradient back into each unit's
own weight, and the running statistics, updated on a concatenated copy, are written back
into each unit's buffers. Parameters, buffers and ``state_dict`` keys are those of the plain
model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from archbuilder.builder.modules import ParallelBlock, merge_branches

__all__ = ["SiblingParallelBlock", "conv_unit", "fused_siblings"]

_UNIT_LAYOUTS = (("conv",), ("conv", "bn"), ("conv", "act"), ("conv", "bn", "act"))


def conv_unit(module: nn.Module) -> bool:
    """Whether ``module`` is a builder conv unit: ``Sequential(conv, [bn], [act])``."""
    return (
        type(module) is nn.Sequential
        and tuple(module._modules) in _UNIT_LAYOUTS
        and type(module.conv) is nn.Conv2d
        and (not hasattr(module, "bn") or type(module.bn) is nn.BatchNorm2d)
    )


def opening_unit(branch: nn.Module) -> tuple[nn.Sequential | None, tuple[nn.Module, ...]]:
    """The conv unit a branch starts with (None if it starts otherwise) and the layers after it."""
    if conv_unit(branch):
        return branch, ()
    if type(branch) is nn.Sequential and len(branch) and conv_unit(branch[0]):
        return branch[0], tuple(branch)[1:]
    return None, ()


def _fusion_key(unit: nn.Sequential) -> tuple | None:
    """What sibling units must share to run as one (None: this unit never fuses)."""
    conv: nn.Conv2d = unit.conv
    if conv.padding_mode != "zeros" or conv.groups != 1:
        return None
    bn = getattr(unit, "bn", None)
    norm = None
    if bn is not None:
        if bn.momentum is None:  # a cumulative average counts per module: keep it exact
            return None
        norm = (bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    act = getattr(unit, "act", None)
    if act is not None and any(True for _ in act.parameters()):
        return None
    activation = None if act is None else (type(act), repr(act))
    return (
        conv.in_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
        conv.bias is not None, norm, activation,
    )  # fmt: skip


def fused_siblings(branches: Sequence[nn.Module]) -> tuple[tuple[int, ...], ...]:
    """Groups of two or more branch indices whose opening conv units can run as one."""
    groups: dict[tuple, list[int]] = {}
    for index, branch in enumerate(branches):
        unit, _ = opening_unit(branch)
        key = None if unit is None else _fusion_key(unit)
        if key is not None:
            groups.setdefault(key, []).append(index)
    return tuple(tuple(members) for members in groups.values() if len(members) > 1)


def run_siblings(units: Sequence[nn.Sequential], x: Tensor) -> tuple[Tensor, ...]:
    """Each unit's output for input ``x``, computed as one conv, batch norm and activation."""
    convs = [unit.conv for unit in units]
    first = convs[0]
    weight = torch.cat([conv.weight for conv in convs])
    bias = torch.cat([conv.bias for conv in convs]) if first.bias is not None else None
    y = F.conv2d(x, weight, bias, first.stride, first.padding, first.dilation, first.groups)
    if hasattr(units[0], "bn"):
        y = _batch_norm([unit.bn for unit in units], y)
    if hasattr(units[0], "act"):
        y = units[0].act(y)
    return y.split([conv.out_channels for conv in convs], dim=1)


def _cat(tensors: Sequence[Tensor | None]) -> Tensor | None:
    return None if tensors[0] is None else torch.cat(list(tensors))


def _batch_norm(norms: Sequence[nn.BatchNorm2d], y: Tensor) -> Tensor:
    """``BatchNorm2d.forward`` of each norm over its channels of ``y``, in one call; running
    statistics are updated as each norm would update its own."""
    first = norms[0]
    updating = first.training and first.track_running_stats
    if updating and first.num_batches_tracked is not None:
        for norm in norms:
            norm.num_batches_tracked.add_(1)
    uses_running = not first.training or first.track_running_stats
    mean = _cat([norm.running_mean for norm in norms]) if uses_running else None
    var = _cat([norm.running_var for norm in norms]) if uses_running else None
    batch_stats = first.training or (first.running_mean is None and first.running_var is None)
    out = F.batch_norm(
        y, mean, var, _cat([n.weight for n in norms]), _cat([n.bias for n in norms]),
        batch_stats, first.momentum, first.eps,
    )  # fmt: skip
    if updating and mean is not None:
        sizes = [norm.num_features for norm in norms]
        with torch.no_grad():
            for norm, m, v in zip(norms, mean.split(sizes), var.split(sizes)):
                norm.running_mean.copy_(m)
                norm.running_var.copy_(v)
    return out


class SiblingParallelBlock(ParallelBlock):
    """A :class:`ParallelBlock` whose sibling opening conv units run as one (``groups`` holds
    their branch indices). Same children, so the same parameters and ``state_dict`` keys."""

    def __init__(
        self,
        branches: Sequence[tuple[str, nn.Module]],
        merge: str,
        scales: Sequence[float] | None = None,
        activation: Callable[[Tensor], Tensor] | None = None,
        shuffle: int | None = None,
    ):
        super().__init__(branches, merge, scales, activation, shuffle)
        self.groups = fused_siblings([branch for _, branch in branches])

    @classmethod
    def of(cls, block: ParallelBlock, branches: Sequence[tuple[str, nn.Module]]) -> SiblingParallelBlock:
        """``block`` with these (possibly rewritten) branches, training mode kept."""
        new = cls(branches, block.merge, block.scales, block.activation, block.shuffle)
        return new.train(block.training)

    def forward(self, x: Tensor) -> Tensor:
        branches = list(self.children())
        opened: dict[int, Tensor] = {}
        for group in self.groups:
            units = [opening_unit(branches[index])[0] for index in group]
            opened.update(zip(group, run_siblings(units, x)))
        outputs = []
        for index, branch in enumerate(branches):
            if index not in opened:
                outputs.append(branch(x))
                continue
            y = opened[index]
            for layer in opening_unit(branch)[1]:
                y = layer(y)
            outputs.append(y)
        return merge_branches(outputs, self.merge, self.scales, self.activation, self.shuffle, x)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", fused={list(self.groups)}"
