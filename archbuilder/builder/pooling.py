"""A max pool for inference on channels-last tensors: separable maxima over strided views.

PyTorch's eager CPU max pool always computes the argmax indices too (``max_pool2d`` calls
``max_pool2d_with_indices``), writing an int64 per output value next to each bf16 value,
and takes up to ~40% of GoogLeNet's eager bf16 time. Max is separable and exact: the pool
is the maximum over the kernel's rows of the maximum over its columns. Here each is a few
``torch.maximum`` calls on strided views of a channels-last tensor, vectorized over the
contiguous channels, with no indices. Padding is handled without padding the tensor: a
kernel offset whose rows fall off the edge only updates the outputs whose rows are inside
(the padding is -inf, which never wins a maximum).

It replaces the stride-1 pools only (see :meth:`InferenceMaxPool2d.replacing`).
Only :func:`optimize_for_inference` uses it (no autograd); under ``torch.compile`` /
``torch.export`` it is ``F.max_pool2d``, which inductor generates its own loop for.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from archbuilder.ir.geometry import window_output

__all__ = ["EdgePaddedMaxPool2d", "InferenceMaxPool2d", "separable_max_pool2d"]

_compiling: Callable[[], bool] = getattr(getattr(torch, "compiler", None), "is_compiling", lambda: False)


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _offset_ranges(length: int, out_size: int, kernel: int, stride: int, padding: int) -> list[tuple]:
    """``(offset, first input row, lo, hi)`` per kernel offset: output o reads input row
    o·stride + first, which is inside the input for the outputs [lo, hi)."""
    ranges = []
    for i in range(kernel):
        first = i - padding
        lo = -(first // stride) if first < 0 else 0  # ceil(-first / stride)
        hi = min(out_size, (length - 1 - first) // stride + 1) if length - 1 >= first else 0
        ranges.append((i, first, lo, hi))
    return ranges


def _max_along(x: Tensor, dim: int, kernel: int, stride: int, padding: int, ceil_mode: bool) -> Tensor | None:
    """The 1-D max pool of ``x`` along ``dim`` (2 or 3), or None where no kernel offset covers
    every output (then the caller falls back to torch's pool)."""
    length = x.shape[dim]
    out_size = window_output(length, kernel, stride, padding, ceil_mode=ceil_mode)
    ranges = _offset_ranges(length, out_size, kernel, stride, padding)
    full = [r for r in ranges if r[2] == 0 and r[3] == out_size]
    if not full:
        return None

    def view(first: int, lo: int, hi: int) -> Tensor:
        start = first + lo * stride
        return x.narrow(dim, start, (hi - lo - 1) * stride + 1)[
            (slice(None),) * dim + (slice(None, None, stride),)
        ]

    base = full[0]
    others = [r for r in ranges if r is not base and r[3] > r[2]]
    if not others:  # a 1-wide kernel, or every other offset in the padding
        return view(base[1], 0, out_size)
    others.sort(key=lambda r: r[3] - r[2], reverse=True)  # a full offset first, if any
    shape = list(x.shape)
    shape[dim] = out_size
    out = torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=_format(x))
    source = view(base[1], 0, out_size)
    _, first, lo, hi = others[0]
    torch.maximum(source.narrow(dim, lo, hi - lo), view(first, lo, hi), out=out.narrow(dim, lo, hi - lo))
    for start, stop in ((0, lo), (hi, out_size)):  # the outputs that offset does not reach
        if stop > start:
            out.narrow(dim, start, stop - start).copy_(source.narrow(dim, start, stop - start))
    for _, first, lo, hi in others[1:]:
        part = out.narrow(dim, lo, hi - lo)
        torch.maximum(part, view(first, lo, hi), out=part)  # in place: out aliases its input exactly
    return out


def _format(x: Tensor) -> torch.memory_format:
    return (
        torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    )


def separable_max_pool2d(
    x: Tensor,
    kernel: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
    ceil_mode: bool = False,
) -> Tensor:
    """``F.max_pool2d(x, kernel, stride, padding, ceil_mode=ceil_mode)`` (no dilation, no
    indices), bit for bit, computed as rows then columns of ``torch.maximum`` on views."""
    kh, kw = _pair(kernel)
    sh, sw = _pair(stride if stride is not None and stride != () else kernel)
    ph, pw = _pair(padding)
    rows = _max_along(x, 2, kh, sh, ph, ceil_mode)
    out = None if rows is None else _max_along(rows, 3, kw, sw, pw, ceil_mode)
    if out is None:
        return F.max_pool2d(x, (kh, kw), (sh, sw), (ph, pw), ceil_mode=ceil_mode)
    fresh = out is not x and out._base is None  # not a view of x (a 1-wide kernel)
    return out if fresh else out.clone(memory_format=_format(x))


class InferenceMaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d`` (without dilation or indices) that runs :func:`separable_max_pool2d`
    eagerly on the CPU without autograd, and ``F.max_pool2d`` otherwise."""

    def forward(self, x: Tensor) -> Tensor:
        if _compiling() or x.device.type != "cpu" or x.dim() != 4 or x.requires_grad:
            return super().forward(x)
        return separable_max_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode)

    @classmethod
    def replacing(cls, pool: nn.MaxPool2d) -> nn.MaxPool2d:
        """``pool`` as an InferenceMaxPool2d where that is faster (stride 1, no dilation, no
        indices), else a copy of ``pool``.

        Stride 1 (Inception's branch pools) measured 1.4-1.6x faster than torch's pool in
        bf16 on a 2-core Xeon; stride 2 over a large map measured slower (two full passes
        over the input, against torch's one), so it keeps torch's pool."""
        stride = _pair(pool.stride if pool.stride is not None else pool.kernel_size)
        if pool.return_indices or _pair(pool.dilation) != (1, 1) or stride != (1, 1):
            return nn.MaxPool2d(
                pool.kernel_size,
                pool.stride,
                pool.padding,
                pool.dilation,
                pool.return_indices,
                pool.ceil_mode,
            )
        return cls(pool.kernel_size, pool.stride, pool.padding, ceil_mode=pool.ceil_mode)


class EdgePaddedMaxPool2d(nn.MaxPool2d):
    """A ceil-mode max pool computed as a floor-mode one over the input extended by copies of
    its last rows and columns: the same values, since each window ceil mode adds at the end
    holds the last real row (or column), and a copy of it never changes a maximum.

    For int8 graphs: inductor (torch 2.14.1) lowers a quantized max pool in ceil mode as if
    in floor mode, so 112×112 pools to 55×55 instead of 56×56, silently where every branch
    reads the same pool, and as a compile error where a concat meets a conv's output. A
    replicate pad and a floor-mode pool are lowered right.
    """

    def forward(self, x: Tensor) -> Tensor:
        kernel, stride, padding = _pair(self.kernel_size), _pair(self.stride), _pair(self.padding)
        extra = [
            max(0, (window_output(x.shape[d + 2], kernel[d], stride[d], padding[d], ceil_mode=True) - 1) * stride[d]
                + kernel[d] - x.shape[d + 2] - 2 * padding[d])
            for d in (0, 1)
        ]  # fmt: skip
        if any(extra):
            x = F.pad(x, (0, extra[1], 0, extra[0]), mode="replicate")
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)

    @classmethod
    def replacing(cls, pool: nn.MaxPool2d) -> nn.MaxPool2d:
        """``pool`` as an EdgePaddedMaxPool2d when it is in ceil mode (without dilation or
        indices), else a floor-mode copy of it."""
        if pool.return_indices or _pair(pool.dilation) != (1, 1):
            raise ValueError("an edge-padded max pool has no dilation and returns no indices")
        stride = pool.stride if pool.stride is not None else pool.kernel_size
        if not pool.ceil_mode:
            return nn.MaxPool2d(pool.kernel_size, stride, pool.padding)
        return cls(pool.kernel_size, stride, pool.padding)
