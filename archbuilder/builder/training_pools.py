"""A max pool for training that keeps no argmax indices for the backward pass.

Torch's max pool saves, for its backward pass, both its input and the index of each output's
maximum: an 8-byte integer beside every value it outputs. Its input is kept anyway, so the
indices are what the pool alone adds to a step's memory (in GoogLeNet, as much as the pooled
maps themselves, twice over). :class:`LeanMaxPool2d` keeps the input only and finds the
indices again in the backward pass: the same gradient, one more pool forward per step.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx

__all__ = ["LeanMaxPool2d"]


class _MaxPoolKeepingInput(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, settings: tuple) -> Tensor:
        output, _ = torch.ops.aten.max_pool2d_with_indices(x, *settings)
        ctx.save_for_backward(x)
        ctx.settings = settings
        return output

    @staticmethod
    def backward(ctx: FunctionCtx, grad: Tensor) -> tuple[Tensor, None]:
        (x,) = ctx.saved_tensors
        _, indices = torch.ops.aten.max_pool2d_with_indices(x, *ctx.settings)
        return torch.ops.aten.max_pool2d_with_indices_backward(grad, x, *ctx.settings, indices), None


class LeanMaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d`` whose backward pass recomputes the argmax instead of storing it."""

    @classmethod
    def replacing(cls, pool: nn.MaxPool2d) -> LeanMaxPool2d:
        return cls(pool.kernel_size, pool.stride, pool.padding, pool.dilation, False, pool.ceil_mode)

    def forward(self, x: Tensor) -> Tensor:
        if not (torch.is_grad_enabled() and x.requires_grad) or torch.compiler.is_compiling():
            return super().forward(x)  # inductor plans its own saved tensors
        settings = tuple(
            list(value) if isinstance(value, tuple) else [value] * 2
            for value in (self.kernel_size, self.stride or self.kernel_size, self.padding, self.dilation)
        )
        return _MaxPoolKeepingInput.apply(x, (*settings, self.ceil_mode))
