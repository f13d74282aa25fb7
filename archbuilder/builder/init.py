"""Weight initialization: one documented scheme, deterministic under ``torch.manual_seed``.

Convolutions: Kaiming normal (fan-out, ReLU gain), as torchvision's ResNets. Linear layers:
normal with std 0.01. Biases: zero. Batch norm: weight 1, bias 0.
"""

from __future__ import annotations

from torch import nn

__all__ = ["init_weights"]


def init_weights(model: nn.Module) -> None:
    """Initialize every conv, linear and batch-norm layer of ``model`` in module order."""
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
