"""specs/inception-v3.yaml against torchvision's Inception3 and against a count by hand.

The hand counts below are written from torchvision's source widths (and the Inception-v3
paper's Figures 5–7): every conv is k_h·k_w·C_in·C_out weights plus a batch norm's 2·C_out,
no bias; MACs are k_h·k_w·C_in·C_out·H_out·W_out. Nothing here reads the spec's numbers back.
"""

from __future__ import annotations

import pytest
import torch

import archbuilder

from .conftest import SPECS

torchvision = pytest.importorskip("torchvision")

SPEC = SPECS / "inception-v3.yaml"


def conv(c_in: int, c_out: int, kh: int, kw: int | None = None, out_hw: int = 0) -> tuple[int, int]:
    """(params, MACs) of one BasicConv2d: conv without bias, then batch norm."""
    kw = kh if kw is None else kw
    weights = kh * kw * c_in * c_out
    return weights + 2 * c_out, weights * out_hw * out_hw


def total(*convs: tuple[int, int]) -> tuple[int, int]:
    return sum(p for p, _ in convs), sum(m for _, m in convs)


def block_a(c_in: int, pool_features: int) -> tuple[int, int]:
    s = 35
    return total(
        conv(c_in, 64, 1, out_hw=s),
        conv(c_in, 48, 1, out_hw=s),
        conv(48, 64, 5, out_hw=s),
        conv(c_in, 64, 1, out_hw=s),
        conv(64, 96, 3, out_hw=s),
        conv(96, 96, 3, out_hw=s),
        conv(c_in, pool_features, 1, out_hw=s),
    )


def block_b(c_in: int) -> tuple[int, int]:
    return total(
        conv(c_in, 384, 3, out_hw=17),
        conv(c_in, 64, 1, out_hw=35),
        conv(64, 96, 3, out_hw=35),
        conv(96, 96, 3, out_hw=17),
    )


def block_c(c7: int) -> tuple[int, int]:
    s, c_in = 17, 768
    return total(
        conv(c_in, 192, 1, out_hw=s),
        conv(c_in, c7, 1, out_hw=s),
        conv(c7, c7, 1, 7, out_hw=s),
        conv(c7, 192, 7, 1, out_hw=s),
        conv(c_in, c7, 1, out_hw=s),
        conv(c7, c7, 7, 1, out_hw=s),
        conv(c7, c7, 1, 7, out_hw=s),
        conv(c7, c7, 7, 1, out_hw=s),
        conv(c7, 192, 1, 7, out_hw=s),
        conv(c_in, 192, 1, out_hw=s),
    )


def block_d() -> tuple[int, int]:
    c_in = 768
    return total(
        conv(c_in, 192, 1, out_hw=17),
        conv(192, 320, 3, out_hw=8),
        conv(c_in, 192, 1, out_hw=17),
        conv(192, 192, 1, 7, out_hw=17),
        conv(192, 192, 7, 1, out_hw=17),
        conv(192, 192, 3, out_hw=8),
    )


def block_e(c_in: int) -> tuple[int, int]:
    s = 8
    return total(
        conv(c_in, 320, 1, out_hw=s),
        conv(c_in, 384, 1, out_hw=s),
        conv(384, 384, 1, 3, out_hw=s),
        conv(384, 384, 3, 1, out_hw=s),
        conv(c_in, 448, 1, out_hw=s),
        conv(448, 384, 3, out_hw=s),
        conv(384, 384, 1, 3, out_hw=s),
        conv(384, 384, 3, 1, out_hw=s),
        conv(c_in, 192, 1, out_hw=s),
    )


HAND = {
    "Conv2d_1a_3x3": conv(3, 32, 3, out_hw=149),
    "Conv2d_2a_3x3": conv(32, 32, 3, out_hw=147),
    "Conv2d_2b_3x3": conv(32, 64, 3, out_hw=147),
    "Conv2d_3b_1x1": conv(64, 80, 1, out_hw=73),
    "Conv2d_4a_3x3": conv(80, 192, 3, out_hw=71),
    "Mixed_5b": block_a(192, 32),
    "Mixed_5c": block_a(256, 64),
    "Mixed_5d": block_a(288, 64),
    "Mixed_6a": block_b(288),
    "Mixed_6b": block_c(128),
    "Mixed_6c": block_c(160),
    "Mixed_6d": block_c(160),
    "Mixed_6e": block_c(192),
    "Mixed_7a": block_d(),
    "Mixed_7b": block_e(1280),
    "Mixed_7c": block_e(2048),
    "fc": (2048 * 1000 + 1000, 2048 * 1000),
    # avg pool 5/3 on 17×17 → 5×5; 1×1 conv to 128; 5×5 conv to 768 (1×1 out); linear
    "AuxLogits": total(
        conv(768, 128, 1, out_hw=5), conv(128, 768, 5, out_hw=1), (768 * 1000 + 1000, 768 * 1000)
    ),
}


@pytest.fixture(scope="module")
def summary() -> archbuilder.Summary:
    return archbuilder.summarize(SPEC)


def test_parameter_counts_are_torchvisions(summary):
    assert (summary.params, summary.inference_params) == (27_161_264, 23_834_568)  # torchvision's
    reference = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    assert summary.params == sum(p.numel() for p in reference.parameters())
    without_aux = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
    assert summary.inference_params == sum(p.numel() for p in without_aux.parameters())


def test_parameters_and_macs_of_every_block_equal_a_hand_count(summary):
    rows = {row.name: (row.params, row.macs) for row in summary.rows if row.params or row.macs}
    assert rows == HAND
    assert sum(params for params, _ in HAND.values()) == 27_161_264


def record(found: dict[str, tuple[int, ...]], name: str):
    def hook(_module, _inputs, output) -> None:
        found[name] = tuple(output.shape[1:])

    return hook


def test_output_shapes_equal_torchvisions_at_every_block(summary):
    """Forward hooks on torchvision's modules of the same names, and on the built model's."""
    reference = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    model = archbuilder.build(SPEC)
    shapes: dict[str, dict[str, tuple[int, ...]]] = {"theirs": {}, "ours": {}}
    for side, net in (("theirs", reference), ("ours", model)):
        for name, module in net.named_children():
            module.register_forward_hook(record(shapes[side], name))
        with torch.no_grad():
            net.train()(torch.randn(2, 3, 299, 299))
    common = sorted(set(shapes["theirs"]) & set(shapes["ours"]))
    assert len(common) == 22  # 5 stem convs, 2 max pools, 11 blocks, the aux head, avgpool, dropout, fc
    assert {name: shapes["ours"][name] for name in common} == {
        name: shapes["theirs"][name] for name in common
    }
    expected = {row.name: row.out_shape for row in summary.rows}  # the IR's inferred shapes
    assert {name: expected[name] for name in shapes["ours"]} == shapes["ours"]


def test_a_template_parameter_can_be_overridden():
    spec = archbuilder.load_spec(SPEC, overrides=["blocks.Mixed_5b.with.pool_features=16"])
    shapes = {row.name: row.out_shape for row in archbuilder.summarize(spec).rows}
    assert shapes["Mixed_5b"] == (64 + 64 + 96 + 16, 35, 35)
    assert shapes["Mixed_5c"] == (64 + 64 + 96 + 64, 35, 35)  # the other uses keep their value
