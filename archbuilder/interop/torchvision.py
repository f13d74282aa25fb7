"""torchvision's ``transform_input``: the input re-normalization its GoogLeNet and Inception3
do inside ``forward`` (with the ImageNet weights) and a spec-built model does not."""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

__all__ = ["torchvision_input_transform", "warn_if_transform_input"]


def torchvision_input_transform(x: Tensor) -> Tensor:
    """torchvision GoogLeNet's and Inception3's ``transform_input``, exactly: channels 0–2 of an
    ImageNet-normalized batch re-normalized to mean 0.5, std 0.5 (further channels dropped, as
    torchvision does)."""
    x_ch0 = torch.unsqueeze(x[:, 0], 1) * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
    x_ch1 = torch.unsqueeze(x[:, 1], 1) * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
    x_ch2 = torch.unsqueeze(x[:, 2], 1) * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
    return torch.cat((x_ch0, x_ch1, x_ch2), 1)


def warn_if_transform_input(source: nn.Module | object, reference: str) -> None:
    """Warn when ``source`` re-normalizes its input in ``forward`` (``transform_input=True``)."""
    if getattr(source, "transform_input", False) is True:
        warnings.warn(
            f"the {reference} has transform_input=True: its forward re-normalizes the input "
            "(from ImageNet mean and std to mean 0.5, std 0.5) and the spec-built model does not; to get "
            "its outputs, call the model on archbuilder.interop.torchvision_input_transform(x)",
            UserWarning,
            stacklevel=4,
        )
