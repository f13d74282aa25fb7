"""The constructs the Inception lineage needs, in a spec of their own: average pools that
exclude (or count) the padding, ceil mode, a residual Inception block (concat → linear 1×1
projection with bias → scale, activation after the sum, off in the last block), conv bias
before batch norm. Each is validated, shape-inferred, counted, drawn, exported and optimized;
the truths are arithmetic by hand and a torch reference written here."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import archbuilder
from archbuilder.core.errors import SpecError

from .shape_check import assert_ir_matches_torch
from .test_optimize import trained_looking

SPEC = """
name: lineage-constructs
input: {channels: 3, height: 21, width: 21}
num_classes: 4
defaults:
  conv: {bias: true, bn_eps: 0.001}   # conv bias before batch norm, as in BN-Inception
templates:
  residual:
    defaults: {activation: relu}
    layer:
      kind: branches
      merge: add
      activation: $activation
      branches:
        - name: shortcut
        - name: residual
          scale: 0.2
          layers:
            - name: mixed
              kind: branches
              branches:
                - {name: branch0, layers: [{name: '0', kind: conv, out: 4, kernel: 1}]}
                - name: branch1
                  layers:
                    - {name: '0', kind: avgpool, kernel: 3, stride: 1, padding: 1, count_include_pad: false}
                    - {name: '1', kind: conv, out: 4, kernel: 1}
            - {name: conv2d, kind: conv, out: 16, kernel: 1, norm: none, activation: none}
stem:
  - {name: conv, kind: conv, out: 8, kernel: 3, stride: 2}                      # 8×10×10
  - {name: pool, kind: maxpool, kernel: 3, stride: 2, ceil_mode: true}          # 8×5×5 (floor: 4×4)
blocks:
  - name: module
    kind: inception
    ch1x1: 4
    ch3x3red: 4
    ch3x3: 4
    ch5x5red: 2
    ch5x5: 4
    factorize_5x5: true
    pool: {kind: avg, count_include_pad: false, ceil_mode: true}
    pool_proj: 4                                                                # 16×5×5
  - {name: res1, kind: template, use: residual}
  - {name: res2, kind: template, use: residual, with: {activation: none}}
head:
  - {name: avg, kind: avgpool, kernel: 2, stride: 2, ceil_mode: true}           # 16×3×3
  - {name: gap, kind: global_avgpool}
  - {name: flatten, kind: flatten}
  - {name: fc, kind: linear, out: num_classes}
"""


@pytest.fixture(scope="module")
def model() -> nn.Module:
    torch.manual_seed(0)
    return trained_looking(archbuilder.build(SPEC))


def test_shapes_are_inferred_and_ceil_mode_rounds_up():
    ir = archbuilder.lower(archbuilder.load_spec(SPEC))
    assert ir.op("pool").shape == (8, 5, 5)  # (10 − 3 + 1) // 2 + 1; floor mode gives 4
    assert ir.op("avg").shape == (16, 3, 3)
    assert_ir_matches_torch(archbuilder.build(SPEC), ir)


def test_average_pools_exclude_or_count_the_padding_by_hand():
    spec = "name: p\ninput: {channels: 1, height: 3, width: 3}\nblocks:\n  - {name: p, kind: avgpool, kernel: 3, stride: 1, padding: 1, count_include_pad: %s}\n"
    ones = torch.ones(1, 1, 3, 3)
    with torch.no_grad():
        excluded = archbuilder.build(spec % "false")(ones)
        counted = archbuilder.build(spec % "true")(ones)
    assert torch.equal(excluded, ones)  # every window averages only real (1.0) pixels
    assert counted[0, 0, 0, 0] == pytest.approx(4 / 9) and counted[0, 0, 0, 1] == pytest.approx(6 / 9)
    assert counted[0, 0, 1, 1] == 1.0


def test_the_inception_blocks_pool_takes_count_include_pad():
    ir = archbuilder.lower(archbuilder.load_spec(SPEC))
    assert ir.op("module.branch_pool.pool").attrs["count_include_pad"] is False
    assert ir.op("module.branch_pool.pool").attrs["ceil_mode"] is True
    model = archbuilder.build(SPEC)
    assert model.module.branch_pool.pool.count_include_pad is False


def test_count_include_pad_errors_are_located():
    bad = SPEC.replace(
        "pool: {kind: avg, count_include_pad: false", "pool: {kind: max, count_include_pad: false"
    )
    with pytest.raises(
        SpecError, match=r"<spec>:\d+:\d+: blocks.0.pool: .*count_include_pad is an average-pool setting"
    ):
        archbuilder.load_spec(bad)
    bad = SPEC.replace(
        "{name: pool, kind: maxpool, kernel: 3, stride: 2,",
        "{name: pool, kind: maxpool, kernel: 3, stride: 2, count_include_pad: false,",
    )
    with pytest.raises(SpecError, match=r"<spec>:\d+:\d+: stem.1.count_include_pad: "):
        archbuilder.load_spec(bad)


class ResidualReference(nn.Module):
    """timm's Block35 pattern with our weights: act(x + scale · conv2d(cat(branch0(x), branch1(x))))."""

    def __init__(self, block: nn.Module, activation: bool):
        super().__init__()
        self.block, self.activation = block, activation

    def forward(self, x):
        mixed = self.block.residual.mixed
        branch0 = mixed.branch0[0](x)
        pooled = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
        branch1 = mixed.branch1[1](pooled)
        projection = self.block.residual.conv2d.conv
        out = F.conv2d(torch.cat((branch0, branch1), 1), projection.weight, projection.bias) * 0.2 + x
        return torch.relu(out) if self.activation else out


def test_residual_inception_blocks_compute_the_reference(model):
    x = torch.randn(2, 16, 5, 5)
    with torch.no_grad():
        for block, activation in ((model.res1, True), (model.res2, False)):
            assert torch.allclose(block(x), ResidualReference(block, activation)(x), atol=1e-6)
    assert (ResidualReference(model.res2, False)(x) < 0).any()  # the last block's ReLU is really off
    assert [name for name, _ in model.res1.named_children()] == ["shortcut", "residual"]


def test_summary_counts_by_hand():
    rows = {row.name: row for row in archbuilder.summarize(archbuilder.load_spec(SPEC)).rows}
    # a conv unit: weights + bias + batch norm (2 per channel); the module reads 8 channels
    unit = lambda c_in, c_out, k=1: k * k * c_in * c_out + c_out + 2 * c_out  # noqa: E731
    residual = unit(16, 4) + unit(16, 4) + (8 * 16 + 16)  # two branch convs, the projection (bias, no norm)
    assert rows["res1"].params == rows["res2"].params == residual
    assert rows["res1"].macs == (16 * 4 + 16 * 4 + 8 * 16) * 25
    module = unit(8, 4) + unit(8, 4) + unit(4, 4, 3) + unit(8, 2) + unit(2, 4, 3) + unit(4, 4, 3) + unit(8, 4)
    assert rows["module"].params == module
    assert rows["conv"].params == unit(3, 8, 3)


def test_render_draws_the_pools_and_the_scaled_sum():
    source = archbuilder.diagram(archbuilder.load_spec(SPEC), detail="layers").source
    assert "avgpool 3×3 excl. pad" in source and "maxpool 3×3 /2 ceil" in source
    assert "avgpool 3×3 ceil excl. pad" in source  # the Inception block's pool
    assert "avgpool 2×2 /2 ceil" in source and "excl. pad" not in source.split("avgpool 2×2 /2 ceil")[1][:5]


@pytest.mark.slow  # over 2.5 s: CI runs it; the fast subset stays under 3 minutes
def test_export_to_onnx_and_torch_export(model, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from archbuilder.export import export_onnx, export_pt2

    x = torch.randn(3, 3, 21, 21)
    with torch.no_grad():
        expected = model(x)
    session = ort.InferenceSession(
        str(export_onnx(model, tmp_path / "m.onnx")), providers=["CPUExecutionProvider"]
    )
    (actual,) = session.run(None, {"input": x.numpy()})
    assert abs(actual - expected.numpy()).max() <= 1e-4 * expected.abs().max().item()
    program = torch.export.load(str(export_pt2(model, tmp_path / "m.pt2")))
    assert torch.allclose(program.module()(x), expected, rtol=1e-4, atol=1e-5)


def test_optimize_for_inference_keeps_the_logits(model):
    optimized = archbuilder.optimize_for_inference(model, input_shape=(2, 3, 21, 21))
    x = torch.randn(2, 3, 21, 21)
    with torch.inference_mode():
        expected = model(x)
        assert (optimized(x) - expected).abs().max() <= 1e-5 * expected.abs().max()
