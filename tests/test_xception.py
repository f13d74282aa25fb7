"""specs/xception.yaml against Keras' published count and a count by hand from Chollet's widths.

A separable conv is a k×k depthwise conv (k·k·C_in weights) and a 1×1 pointwise conv
(C_in·C_out), no bias; every conv is followed by a batch norm (2·C_out trainable values).
"""

from __future__ import annotations

import torch

import archbuilder

from .conftest import SPECS

SPEC = SPECS / "xception.yaml"


def sep(c_in: int, c_out: int) -> int:
    return 9 * c_in + c_in * c_out + 2 * c_out


def conv(c_in: int, c_out: int, k: int) -> int:
    return k * k * c_in * c_out + 2 * c_out


def entry(c_in: int, first: int, second: int) -> int:
    return sep(c_in, first) + sep(first, second) + conv(c_in, second, 1)


HAND = {
    "block1_conv1": conv(3, 32, 3),
    "block1_conv2": conv(32, 64, 3),
    "block2": entry(64, 128, 128),
    "block3": entry(128, 256, 256),
    "block4": entry(256, 728, 728),
    **{f"middle_{i}": 3 * sep(728, 728) for i in range(1, 9)},
    "block13": entry(728, 728, 1024),
    "block14_sepconv1": sep(1024, 1536),
    "block14_sepconv2": sep(1536, 2048),
    "predictions": 2048 * 1000 + 1000,
}


def test_parameters_equal_keras_and_a_hand_count():
    summary = archbuilder.summarize(SPEC)
    assert summary.params == 22_855_952  # keras.applications.Xception(): trainable parameters
    assert {row.name: row.params for row in summary.rows if row.params} == HAND
    assert sum(HAND.values()) == 22_855_952


def test_shapes_follow_the_paper():
    shapes = {row.name: row.out_shape for row in archbuilder.summarize(SPEC).rows}
    assert shapes["block2"] == (128, 74, 74)
    assert shapes["block4"] == (728, 19, 19)  # entry flow: 19×19×728
    assert shapes["middle_8"] == (728, 19, 19)
    assert shapes["block14_sepconv2"] == (2048, 10, 10)  # exit flow: 2048-dimensional vectors


def test_residual_blocks_add_what_they_should():
    model = archbuilder.build(SPEC).eval()
    block = model.middle_3
    x = torch.randn(1, 728, 19, 19)
    with torch.no_grad():
        assert torch.allclose(block(x), block.main(x) + x, atol=1e-5)  # identity shortcut
        entry_block = model.block3
        y = torch.randn(1, 128, 74, 74)
        assert torch.allclose(entry_block(y), entry_block.main(y) + entry_block.residual(y), atol=1e-5)
    assert model.block14_sepconv1.depthwise.groups == 1024
