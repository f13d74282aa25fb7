"""ir.geometry.window_output, the one window rule the IR, the importers and the builder's
pooling share, against torch's own pooling and conv output sizes."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.nn import functional as F

from archbuilder.ir.geometry import window_output

CASES = [
    (size, kernel, stride, padding, ceil)
    for size, kernel, stride, padding, ceil in itertools.product(
        (5, 7, 8, 13, 112), (1, 2, 3, 5), (1, 2, 3), (0, 1, 2), (False, True)
    )
    if padding <= kernel // 2 and size + 2 * padding >= kernel
]


@pytest.mark.parametrize("size, kernel, stride, padding, ceil", CASES)
def test_pooling_sizes_are_torchs(size, kernel, stride, padding, ceil):
    pooled = F.max_pool2d(torch.zeros(1, 1, size, 1), (kernel, 1), (stride, 1), (padding, 0), ceil_mode=ceil)
    assert window_output(size, kernel, stride, padding, ceil_mode=ceil) == pooled.shape[2]


@pytest.mark.parametrize("dilation", [1, 2, 3])
def test_dilated_conv_sizes_are_torchs(dilation):
    for size, kernel, stride, padding in itertools.product((9, 16, 17), (1, 3, 5), (1, 2), (0, 1, 2)):
        if size + 2 * padding < dilation * (kernel - 1) + 1:
            continue
        out = F.conv2d(
            torch.zeros(1, 1, size, 1),
            torch.zeros(1, 1, kernel, 1),
            None,
            (stride, 1),
            (padding, 0),
            (dilation, 1),
        )
        assert window_output(size, kernel, stride, padding, dilation) == out.shape[2]


def test_a_window_larger_than_its_input_gives_less_than_one():
    assert window_output(2, 5) < 1
