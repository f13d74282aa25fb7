"""The separable max pool of optimize_for_inference (bit for bit torch's ``F.max_pool2d``), and
the edge-padded ceil-mode pool of quantize."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import archbuilder
from archbuilder.builder.pooling import EdgePaddedMaxPool2d, InferenceMaxPool2d, separable_max_pool2d
from tests.conftest import SPECS
from tests.test_optimize import trained_looking

CONFIGS = [
    (kernel, stride, padding, ceil)
    for kernel, stride, padding, ceil in itertools.product([1, 2, 3, 5], [1, 2, 3], [0, 1, 2], [False, True])
    if padding <= kernel // 2
]


@pytest.mark.parametrize(("dtype", "channels_last"), [(torch.bfloat16, True), (torch.float32, False)])
def test_every_kernel_stride_padding_and_ceil_mode_matches_torch(dtype, channels_last):
    torch.manual_seed(0)
    checked = 0
    for (kernel, stride, padding, ceil), size in itertools.product(CONFIGS, [1, 2, 5, 8]):
        x = torch.randn(2, 6, size, size + 1).to(dtype)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        try:
            expected = F.max_pool2d(x, kernel, stride, padding, ceil_mode=ceil)
        except RuntimeError:  # torch refuses it (output size 0): so do we, by falling back
            continue
        actual = separable_max_pool2d(x, kernel, stride, padding, ceil)
        assert actual.shape == expected.shape and torch.equal(actual, expected), (
            kernel,
            stride,
            padding,
            ceil,
        )
        layout = torch.channels_last if channels_last else torch.contiguous_format
        assert actual.is_contiguous(memory_format=layout)  # the next conv gets the layout it expects
        checked += 1
    assert checked > 150


def test_rectangular_kernels_nan_and_infinity_and_views():
    x = torch.randn(1, 4, 9, 7).contiguous(memory_format=torch.channels_last)
    x[0, 0, 3, 3] = float("nan")
    x[0, 1] = float("-inf")
    expected = F.max_pool2d(x, (3, 1), (1, 1), (1, 0))
    actual = separable_max_pool2d(x, (3, 1), (1, 1), (1, 0))
    assert torch.equal(actual.isnan(), expected.isnan())
    assert torch.equal(actual.nan_to_num(0.0), expected.nan_to_num(0.0))
    # A 1×1 pool is a strided view of its input in the separable form: it must still be a new tensor.
    out = separable_max_pool2d(x, 1, 1)
    out.zero_()
    assert x[0, 2].abs().sum() > 0
    narrowed = torch.randn(2, 8, 6, 6).contiguous(memory_format=torch.channels_last).narrow(1, 2, 4)
    assert torch.equal(separable_max_pool2d(narrowed, 3, 1, 1), F.max_pool2d(narrowed, 3, 1, 1))


def test_optimize_for_inference_swaps_only_the_stride_1_pools():
    spec = archbuilder.load_spec(
        SPECS / "googlenet.yaml", overrides=["scale.width=0.25", "input.height=64", "input.width=64"]
    )
    torch.manual_seed(0)
    model = trained_looking(archbuilder.build(spec, aux=False))
    optimized = archbuilder.optimize_for_inference(
        model, dtype="bf16", input_shape=(1, 3, 64, 64), separable_pools=True
    )
    pools = [m for m in optimized.modules() if isinstance(m, nn.MaxPool2d)]
    fast = [m for m in pools if isinstance(m, InferenceMaxPool2d)]
    # GoogLeNet: 9 Inception blocks, each with a 3×3/1 pool branch; 4 stride-2 pools between stages.
    assert (len(pools), len(fast)) == (13, 9)
    assert all(m.stride in (1, (1, 1)) for m in fast)
    reference = archbuilder.optimize_for_inference(
        model, dtype="bf16", input_shape=(1, 3, 64, 64)
    )  # the default: torch's pools
    assert not any(isinstance(m, InferenceMaxPool2d) for m in reference.modules())
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        assert torch.equal(optimized(x), reference(x))  # exact: the same convs, exact pools


def test_under_torch_export_it_is_torchs_pool():
    pool = InferenceMaxPool2d(3, 1, 1)
    x = torch.randn(1, 4, 8, 8).contiguous(memory_format=torch.channels_last)
    program = torch.export.export(pool, (x,))
    targets = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
    assert any("max_pool2d" in target for target in targets), targets
    assert torch.equal(program.module()(x), F.max_pool2d(x, 3, 1, 1))


@pytest.mark.parametrize("kernel, stride, padding", [(3, 2, 0), (3, 2, 1), (2, 2, 0), (3, 1, 1), (3, 3, 0)])
def test_edge_padding_gives_ceil_modes_maxima(kernel, stride, padding):
    """Against torch's ceil-mode pool, on sizes with and without a remainder (the extra
    windows), and with ties: the same shapes and values."""
    torch.manual_seed(0)
    for height, width in [(5, 6), (7, 8), (13, 14), (55, 56), (112, 113)]:
        x = torch.randn(2, 4, height, width)
        x[:, :, -1] = x[:, :, -2]  # ties along the edge that ceil mode's windows read
        pool = nn.MaxPool2d(kernel, stride, padding, ceil_mode=True)
        edge_padded = EdgePaddedMaxPool2d.replacing(pool)
        assert isinstance(edge_padded, EdgePaddedMaxPool2d)
        assert torch.equal(edge_padded(x), pool(x)), (height, width)
    floor = EdgePaddedMaxPool2d.replacing(nn.MaxPool2d(kernel, stride, padding))
    assert type(floor) is nn.MaxPool2d and not floor.ceil_mode
