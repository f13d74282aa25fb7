"""Torch modules for the layers torch has no module for: channel slices, layer scale, layer
norm over the channels of a feature map, stochastic depth, channel shuffle and
squeeze-and-excitation."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = [
    "ChannelShuffle",
    "ChannelSlice",
    "DropPath",
    "LayerNorm2d",
    "LayerScale",
    "SqueezeExcite",
    "channel_shuffle",
]


class ChannelSlice(nn.Module):
    """Channels ``start`` … ``start + channels - 1`` of the input (a view, no copy)."""

    def __init__(self, start: int, channels: int):
        super().__init__()
        self.start = start
        self.channels = channels

    def forward(self, x: Tensor) -> Tensor:
        return x.narrow(1, self.start, self.channels)

    def extra_repr(self) -> str:
        return f"{self.start}:{self.start + self.channels}"


class LayerScale(nn.Module):
    """``x`` times a learnable per-channel ``gamma``, every channel starting at ``init``."""

    def __init__(self, channels: int, init: float):
        super().__init__()
        self.init = init
        self.gamma = nn.Parameter(torch.empty(channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.gamma.fill_(self.init)

    def forward(self, x: Tensor) -> Tensor:
        return x * (self.gamma if x.dim() == 2 else self.gamma.reshape(-1, 1, 1))

    def extra_repr(self) -> str:
        return f"{self.gamma.shape[0]}, init={self.init:g}"


class LayerNorm2d(nn.LayerNorm):
    """Layer norm over the channels at each position of an N×C×H×W feature map."""

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class DropPath(nn.Module):
    """Stochastic depth: in training, zero each sample (``mode="row"``) or the whole batch
    (``"batch"``) with probability ``rate``, dividing what is kept by ``1 - rate`` when
    ``scale_by_keep``. The identity in eval mode."""

    def __init__(self, rate: float, mode: str = "row", scale_by_keep: bool = True):
        super().__init__()
        if not 0 <= rate < 1 or mode not in ("row", "batch"):
            raise ValueError(f"rate must be in [0, 1) and mode 'row' or 'batch', not {rate!r}, {mode!r}")
        self.rate = rate
        self.mode = mode
        self.scale_by_keep = scale_by_keep

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.rate == 0:
            return x
        keep = 1 - self.rate
        shape = (x.shape[0],) + (1,) * (x.dim() - 1) if self.mode == "row" else (1,) * x.dim()
        mask = x.new_empty(shape).bernoulli_(keep)
        if self.scale_by_keep:
            mask.div_(keep)
        return x * mask

    def extra_repr(self) -> str:
        return f"rate={self.rate:g}, mode={self.mode}" + (
            "" if self.scale_by_keep else ", scale_by_keep=False"
        )


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """ShuffleNet's channel shuffle: channels read as ``groups`` rows, written column by column."""
    return x.unflatten(1, (groups, -1)).transpose(1, 2).flatten(1, 2)


class ChannelShuffle(nn.Module):
    """:func:`channel_shuffle` as a module (no parameters)."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: Tensor) -> Tensor:
        return channel_shuffle(x, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class SqueezeExcite(nn.Module):
    """``x`` times ``gate(fc2(activation(fc1(mean of x over H, W))))`` per channel: torchvision's
    ``SqueezeExcitation``, with the same ``fc1``/``fc2`` 1×1 convs (with bias)."""

    def __init__(self, channels: int, squeeze: int, activation: nn.Module, gate: nn.Module):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.activation = activation
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.gate = gate

    def forward(self, x: Tensor) -> Tensor:
        # The activations may work in place: each reads a fresh tensor of the squeeze path.
        scale = self.gate(self.fc2(self.activation(self.fc1(F.adaptive_avg_pool2d(x, 1)))))
        return x * scale
