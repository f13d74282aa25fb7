"""BVLC Caffe GoogLeNet written out by hand in torch: an independent reference for the v1 variant.

Transcribed from Caffe's deploy definition (tests/data/import/bvlc_googlenet_deploy.prototxt,
BVLC/caffe ``models/bvlc_googlenet/deploy.prototxt``) layer by layer, with Caffe's layer names.
Caffe's semantics are written out rather than borrowed from torch layers that archbuilder
also uses: pooling sizes follow Caffe's rule (round up, then drop a last window that would
start in the padding), and LRN is Caffe's ACROSS_CHANNELS formula. The deploy file has no
aux heads; they follow the paper (Szegedy et al. 2015, section 5: 5×5/3 average pool, 1×1
conv of 128 + ReLU, fully connected 1024 + ReLU, dropout 0.7, linear classifier) on the
outputs of 4a and 4d, named as in Caffe's train_val definition (``loss1/conv`` ...).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

# name: (1x1, 3x3_reduce, 3x3, 5x5_reduce, 5x5, pool_proj), in the deploy file's order.
INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def caffe_pool(x: torch.Tensor, kernel: int, stride: int, pad: int = 0, *, mode: str) -> torch.Tensor:
    """Caffe's PoolingLayer: out = ceil((in + 2 pad - kernel) / stride) + 1, less one when the
    last window would start in the padding; MAX ignores the padding."""
    size = x.shape[-1]
    out = math.ceil((size + 2 * pad - kernel) / stride) + 1
    if pad and (out - 1) * stride >= size + pad:
        out -= 1
    extra = (out - 1) * stride + kernel - (size + 2 * pad)  # windows that run past the far edge
    if mode == "MAX":
        padded = F.pad(x, (pad, pad + extra, pad, pad + extra), value=float("-inf"))
        return F.max_pool2d(padded, kernel, stride)
    assert pad == 0 and extra == 0, "every AVE pool of GoogLeNet fits its input exactly"
    return F.avg_pool2d(x, kernel, stride)


def caffe_lrn(
    x: torch.Tensor, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> torch.Tensor:
    """Caffe's LRN, ACROSS_CHANNELS: x / (k + alpha / size * sum of x² over size channels)^beta."""
    squares = F.pad(x.pow(2), (0, 0, 0, 0, (size - 1) // 2, size // 2))  # zero channels at both ends
    window = sum(squares[:, i : i + x.shape[1]] for i in range(size))
    return x / (k + alpha / size * window).pow(beta)


class CaffeGoogLeNet(nn.Module):
    """Layers keyed by Caffe's names, ``/`` written ``__``: ``layer("inception_3a/1x1")``."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.layers = nn.ModuleDict()
        self._conv("conv1/7x7_s2", 3, 64, 7, stride=2, pad=3)
        self._conv("conv2/3x3_reduce", 64, 64, 1)
        self._conv("conv2/3x3", 64, 192, 3, pad=1)
        channels = 192
        for name, (c1, r3, c3, r5, c5, proj) in INCEPTION.items():
            prefix = f"inception_{name}/"
            self._conv(prefix + "1x1", channels, c1, 1)
            self._conv(prefix + "3x3_reduce", channels, r3, 1)
            self._conv(prefix + "3x3", r3, c3, 3, pad=1)
            self._conv(prefix + "5x5_reduce", channels, r5, 1)
            self._conv(prefix + "5x5", r5, c5, 5, pad=2)
            self._conv(prefix + "pool_proj", channels, proj, 1)
            channels = c1 + c3 + c5 + proj
        self._add("loss3/classifier", nn.Linear(1024, num_classes))
        for loss, channels in (("loss1", 512), ("loss2", 528)):
            self._conv(f"{loss}/conv", channels, 128, 1)
            self._add(f"{loss}/fc", nn.Linear(128 * 4 * 4, 1024))
            self._add(f"{loss}/classifier", nn.Linear(1024, num_classes))

    def _conv(self, name: str, cin: int, cout: int, kernel: int, *, stride: int = 1, pad: int = 0) -> None:
        self._add(name, nn.Conv2d(cin, cout, kernel, stride, pad))

    def _add(self, name: str, layer: nn.Module) -> None:
        self.layers[name.replace("/", "__")] = layer

    def layer(self, name: str) -> nn.Module:
        return self.layers[name.replace("/", "__")]

    def caffe_names(self) -> list[str]:
        return [key.replace("__", "/") for key in self.layers]

    def relu_conv(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.layer(name)(x))  # every Convolution in the file is followed by a ReLU

    def inception(self, name: str, x: torch.Tensor) -> torch.Tensor:
        p = f"inception_{name}/"
        branches = [
            self.relu_conv(p + "1x1", x),
            self.relu_conv(p + "3x3", self.relu_conv(p + "3x3_reduce", x)),
            self.relu_conv(p + "5x5", self.relu_conv(p + "5x5_reduce", x)),
            self.relu_conv(p + "pool_proj", caffe_pool(x, 3, 1, 1, mode="MAX")),
        ]
        return torch.cat(branches, dim=1)  # the Concat's bottoms, in this order

    def aux(self, loss: str, x: torch.Tensor) -> torch.Tensor:
        x = self.relu_conv(f"{loss}/conv", caffe_pool(x, 5, 3, mode="AVE"))
        x = F.relu(self.layer(f"{loss}/fc")(x.flatten(1)))
        return self.layer(f"{loss}/classifier")(F.dropout(x, 0.7, self.training))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits of the main classifier and of both aux heads (dropout in training mode only)."""
        x = caffe_pool(self.relu_conv("conv1/7x7_s2", x), 3, 2, mode="MAX")  # pool1/3x3_s2
        x = caffe_lrn(x)  # pool1/norm1
        x = self.relu_conv("conv2/3x3", self.relu_conv("conv2/3x3_reduce", x))
        x = caffe_pool(caffe_lrn(x), 3, 2, mode="MAX")  # conv2/norm2, pool2/3x3_s2
        outputs = {}
        for name in INCEPTION:
            x = self.inception(name, x)
            if name == "4a":
                outputs["loss1"] = self.aux("loss1", x)
            if name == "4d":
                outputs["loss2"] = self.aux("loss2", x)
            if name in ("3b", "4e"):
                x = caffe_pool(x, 3, 2, mode="MAX")  # pool3/3x3_s2, pool4/3x3_s2
        x = caffe_pool(x, 7, 1, mode="AVE").flatten(1)  # pool5/7x7_s1
        outputs["loss3"] = self.layer("loss3/classifier")(F.dropout(x, 0.4, self.training))
        return outputs


def archbuilder_key(caffe: str) -> str:
    """The archbuilder v1 module (``specs/googlenet-v1-original.yaml``) that holds a Caffe layer's weights."""
    fixed = {
        "conv1/7x7_s2": "conv1.conv",
        "conv2/3x3_reduce": "conv2_reduce.conv",
        "conv2/3x3": "conv2.conv",
        "loss3/classifier": "fc",
    }
    if caffe in fixed:
        return fixed[caffe]
    if caffe.startswith("loss"):
        head, layer = caffe.split("/")
        return f"aux{head[-1]}." + {"conv": "conv.conv", "fc": "fc1", "classifier": "fc2"}[layer]
    block, layer = caffe.removeprefix("inception_").split("/")
    branch = {
        "1x1": "branch1x1.conv.conv",
        "3x3_reduce": "branch3x3.reduce.conv",
        "3x3": "branch3x3.conv.conv",
        "5x5_reduce": "branch5x5.reduce.conv",
        "5x5": "branch5x5.conv.conv",
        "pool_proj": "branch_pool.proj.conv",
    }[layer]
    return f"{block}.{branch}"
