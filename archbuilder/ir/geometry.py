"""Sliding-window geometry as torch computes it: the one rule the IR, the importers and the
builder's pooling share. No torch."""

from __future__ import annotations

__all__ = ["window_output"]


def window_output(
    size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1, ceil_mode: bool = False
) -> int:
    """Positions of a window sliding over ``size`` (torch's conv and pooling output size).

    With ``ceil_mode`` a last, partial window counts, as long as it starts inside the input
    or its left padding. The result is below 1 when the window does not fit; callers decide
    whether that is an error.
    """
    extent = dilation * (kernel - 1) + 1
    out = (size + 2 * padding - extent + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out
