"""An independent, hand-written GoogLeNet of the article's design (BN variant), for comparison.

Written out module by module the way the article's PyTorch code structures it: BN + ReLU
after every conv (conv bias kept), true 5×5 convs, 3×3/2 max pools with padding 1, aux
classifiers after 4a and 4d. ``to_spec_names`` translates its state-dict keys to the names
a model built from specs/googlenet.yaml uses.
"""

from __future__ import annotations

import re

import torch
from torch import nn
from torch.nn import functional as F


def conv_bn_relu(cin: int, cout: int, kernel: int, **kwargs) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, **kwargs), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class InceptionV1(nn.Module):
    def __init__(self, cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, proj: int):
        super().__init__()
        self.branch1 = nn.Sequential(*conv_bn_relu(cin, c1, 1))
        self.branch2 = nn.Sequential(*conv_bn_relu(cin, c3r, 1), *conv_bn_relu(c3r, c3, 3, padding=1))
        self.branch3 = nn.Sequential(*conv_bn_relu(cin, c5r, 1), *conv_bn_relu(c5r, c5, 5, padding=2))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), *conv_bn_relu(cin, proj, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class AuxClassifier(nn.Module):
    def __init__(self, cin: int, num_classes: int):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.conv = nn.Sequential(*conv_bn_relu(cin, 128, 1))
        self.fc1 = nn.Linear(128 * 16, 1024)
        self.dropout = nn.Dropout(0.7)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.conv(self.pool(x)), 1)
        return self.fc2(self.dropout(F.relu(self.fc1(x))))


class ArticleGoogLeNet(nn.Module):
    def __init__(self, num_classes: int = 1000, aux_logits: bool = True):
        super().__init__()
        self.aux_logits = aux_logits
        self.conv1 = nn.Sequential(*conv_bn_relu(3, 64, 7, stride=2, padding=3), nn.MaxPool2d(3, 2, 1))
        self.conv2 = nn.Sequential(
            *conv_bn_relu(64, 64, 1), *conv_bn_relu(64, 192, 3, padding=1), nn.MaxPool2d(3, 2, 1)
        )
        self.inception3a = InceptionV1(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = InceptionV1(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, 2, 1)
        self.inception4a = InceptionV1(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = InceptionV1(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = InceptionV1(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = InceptionV1(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = InceptionV1(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(3, 2, 1)
        self.inception5a = InceptionV1(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = InceptionV1(832, 384, 192, 384, 48, 128, 128)
        if aux_logits:
            self.aux1 = AuxClassifier(512, num_classes)
            self.aux2 = AuxClassifier(528, num_classes)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.4)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor):
        x = self.maxpool3(self.inception3b(self.inception3a(self.conv2(self.conv1(x)))))
        x = self.inception4a(x)
        aux1 = self.aux1(x) if self.training and self.aux_logits else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if self.training and self.aux_logits else None
        x = self.inception5b(self.inception5a(self.maxpool4(self.inception4e(x))))
        x = self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))
        if self.training and self.aux_logits:
            return x, aux1, aux2
        return x


# (reference key pattern, spec-built key template)
_RULES = [
    (r"conv1\.0\.", "conv1.conv."),
    (r"conv1\.1\.", "conv1.bn."),
    (r"conv2\.0\.", "conv2_reduce.conv."),
    (r"conv2\.1\.", "conv2_reduce.bn."),
    (r"conv2\.3\.", "conv2.conv."),
    (r"conv2\.4\.", "conv2.bn."),
    (r"inception(\w\w)\.branch1\.0\.", r"\1.branch1x1.conv.conv."),
    (r"inception(\w\w)\.branch1\.1\.", r"\1.branch1x1.conv.bn."),
    (r"inception(\w\w)\.branch2\.0\.", r"\1.branch3x3.reduce.conv."),
    (r"inception(\w\w)\.branch2\.1\.", r"\1.branch3x3.reduce.bn."),
    (r"inception(\w\w)\.branch2\.3\.", r"\1.branch3x3.conv.conv."),
    (r"inception(\w\w)\.branch2\.4\.", r"\1.branch3x3.conv.bn."),
    (r"inception(\w\w)\.branch3\.0\.", r"\1.branch5x5.reduce.conv."),
    (r"inception(\w\w)\.branch3\.1\.", r"\1.branch5x5.reduce.bn."),
    (r"inception(\w\w)\.branch3\.3\.", r"\1.branch5x5.conv.conv."),
    (r"inception(\w\w)\.branch3\.4\.", r"\1.branch5x5.conv.bn."),
    (r"inception(\w\w)\.branch4\.1\.", r"\1.branch_pool.proj.conv."),
    (r"inception(\w\w)\.branch4\.2\.", r"\1.branch_pool.proj.bn."),
    (r"(aux\d)\.conv\.0\.", r"\1.conv.conv."),
    (r"(aux\d)\.conv\.1\.", r"\1.conv.bn."),
    (r"(aux\d)\.(fc\d)\.", r"\1.\2."),
    (r"fc\.", "fc."),
]


def to_spec_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The reference state dict under the spec-built model's key names."""
    renamed = {}
    for key, value in state.items():
        for pattern, template in _RULES:
            match = re.match(pattern, key)
            if match:
                renamed[match.expand(template) + key[match.end() :]] = value
                break
        else:
            raise KeyError(f"no rule for reference key {key}")
    return renamed
