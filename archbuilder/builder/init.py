"""Weight initialization: one documented scheme, deterministic under ``torch.manual_seed``.

Convolutions: Kaiming normal (fan-out, ReLU gain), as torchvision's ResNets. Linear layers:
normal with std 0.01. Biases: zero. Batch norm: weight 1, bias 0, running mean 0, running
variance 1. Every tensor of the model is written, so a model made on the meta device and
given uninitialized memory (``to_empty``) comes out fully initialized.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
from torch import nn

__all__ = ["init_weights", "made_initialized"]

M = TypeVar("M", bound=nn.Module)


def made_initialized(
    make: Callable[[], M], *, device: torch.device | str = "cpu", dtype: torch.dtype | None = None
) -> M:
    """``make()``'s module, made on the meta device, given memory once and initialized once.

    torch's default initialization of each layer would be overwritten by :func:`init_weights`
    anyway, and costs as much as the rest of a build.
    """
    with torch.device("meta"):
        module = make()
    module.to_empty(device=device)
    if dtype is not None:
        module.to(dtype=dtype)
    init_weights(module)
    return module


def init_weights(model: nn.Module) -> None:
    """Initialize every conv, linear and batch-norm layer of ``model`` in module order, and
    reset any other layer that holds tensors."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.01)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
            module.reset_running_stats()
        elif module._parameters or module._buffers:
            reset = getattr(module, "reset_parameters", None)
            if reset is None:
                raise TypeError(f"init_weights does not know how to initialize {type(module).__name__}")
            reset()
