"""Rounding shared by width scaling, expansion ratios, squeeze widths and depth scaling."""

from __future__ import annotations

import math

__all__ = ["make_divisible", "scaled_depth", "squeeze_width"]


def make_divisible(value: float, divisor: int) -> int:
    """Round to the nearest multiple of ``divisor`` (at least ``divisor``), as timm and
    torchvision (``_make_divisible``) do; round up instead where rounding down would lose
    more than 10%."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def scaled_depth(repeat: int, depth: float, rounding: str = "round") -> int:
    """A ``repeat`` times ``scale.depth``, at least 1: rounded half up, or up (``ceil``, as
    torchvision's EfficientNet: ``int(math.ceil(num_layers * depth_mult))``)."""
    if rounding == "ceil":
        return max(1, math.ceil(repeat * depth))
    return max(1, math.floor(repeat * depth + 0.5))


def squeeze_width(channels: int, reduction: float, divisor: int = 1) -> int:
    """``channels / reduction`` rounded down (at least 1), then to a multiple of ``divisor``
    when it is above 1 (torchvision's MobileNetV3: ``_make_divisible(channels // 4, 8)``)."""
    width = max(1, math.floor(channels / reduction))
    return width if divisor == 1 else make_divisible(width, divisor)
