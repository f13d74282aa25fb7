"""Separable and depthwise convolutions, scaled residual adds: counts by hand, outputs by hand."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch.nn import functional as F

import archbuilder
from archbuilder.catalog.variants import emit
from archbuilder.core.errors import SpecError

from .conftest import ROOT, SPECS

HEADER = "name: t\ninput: {channels: 8, height: 10, width: 10}\ndefaults: {conv: {norm: none, bias: false}}\n"


def load(blocks: str, header: str = HEADER) -> archbuilder.ArchSpec:
    return archbuilder.load_spec(header + "blocks:\n" + blocks)


def test_separable_counts_and_modules():
    spec = load("  - {name: sep, kind: separable, out: 16, kernel: 3, stride: 2, padding: 1, norm: batch}\n")
    op = archbuilder.lower(spec).op("sep")
    assert op.shape == (16, 5, 5)
    # depthwise 3·3·8, pointwise 8·16, batch norm 2·16; MACs: both convs at 5×5
    assert op.params == 72 + 128 + 32
    assert op.macs == (72 + 128) * 25
    model = archbuilder.build(spec)
    assert sum(p.numel() for p in model.parameters()) == op.params
    assert [name for name, _ in model.sep.named_children()] == ["depthwise", "pointwise", "bn", "act"]
    assert model.sep.depthwise.groups == 8 and model.sep.depthwise.bias is None


def test_separable_multiplier_and_bias():
    spec = load(
        "  - {name: sep, kind: separable, out: 4, kernel: 3, padding: 1, multiplier: 2, bias: true}\n"
    )
    # depthwise 3·3·8·2 (no bias), pointwise 16·4 + 4 bias
    assert archbuilder.lower(spec).op("sep").params == 144 + 64 + 4
    model = archbuilder.build(spec)
    assert model.sep.depthwise.out_channels == 16 and model.sep.pointwise.bias is not None


def test_separable_computes_depthwise_then_pointwise():
    model = archbuilder.build(
        load("  - {name: sep, kind: separable, out: 4, kernel: 3, padding: 1, activation: none}\n")
    )
    x = torch.randn(2, 8, 10, 10)
    conv = model.sep
    expected = F.conv2d(F.conv2d(x, conv.depthwise.weight, padding=1, groups=8), conv.pointwise.weight)
    with torch.no_grad():
        assert torch.allclose(model.eval()(x), expected, atol=1e-5)


def test_depthwise_conv_infers_its_width():
    spec = load(
        "  - {name: dw, kind: conv, groups: depthwise, kernel: 3, padding: 1}\n"
        "  - {name: dw2, kind: conv, groups: depthwise, out: 16, kernel: 3, padding: 1}\n"
    )
    ir = archbuilder.lower(spec)
    assert ir.op("dw").attrs["groups"] == 8 and ir.op("dw").shape == (8, 10, 10)
    assert ir.op("dw").params == 9 * 8
    assert ir.op("dw2").attrs["groups"] == 8 and ir.op("dw2").params == 9 * 16  # two filters per channel
    diagram = archbuilder.diagram(spec).source
    assert "dwconv 3×3 → 8" in diagram


def test_depthwise_errors():
    with pytest.raises(SpecError, match=r"blocks.0: dw: a depthwise conv's out \(12\) must be a multiple"):
        load("  - {name: dw, kind: conv, groups: depthwise, out: 12, kernel: 3}\n")
    with pytest.raises(SpecError, match=r"missing required key 'out' \(only a groups: depthwise conv"):
        load("  - {name: c, kind: conv, kernel: 3}\n")
    with pytest.raises(SpecError, match=r"groups: expected an integer ≥ 1, or 'depthwise', got 'dw'"):
        load("  - {name: c, kind: conv, out: 8, kernel: 3, groups: dw}\n")


RESIDUAL = """\
  - name: res
    kind: branches
    merge: add
    activation: relu
    branches:
      - {name: shortcut}
      - name: body
        scale: 0.25
        layers: [{name: conv, kind: conv, out: 8, kernel: 3, padding: 1, activation: none}]
"""


def test_scaled_residual_output_by_hand():
    model = archbuilder.build(load(RESIDUAL)).eval()
    x = torch.randn(2, 8, 10, 10)
    weight = model.res.body.conv.conv.weight
    with torch.no_grad():
        expected = F.relu(x + 0.25 * F.conv2d(x, weight, padding=1))
        assert torch.allclose(model(x), expected, atol=1e-6)
        assert x.min() < 0  # the input itself is untouched: the activation is not in place on it
        unscaled = archbuilder.build(load(RESIDUAL.replace("scale: 0.25", "scale: 1"))).eval()
        unscaled.load_state_dict(model.state_dict())  # scale and activation add no tensors
        assert torch.allclose(unscaled(x), F.relu(x + F.conv2d(x, weight, padding=1)), atol=1e-6)


def test_scale_and_activation_keep_the_state_dict_names():
    plain = RESIDUAL.replace("    activation: relu\n", "").replace("        scale: 0.25\n", "")
    assert list(archbuilder.build(load(RESIDUAL)).state_dict()) == list(
        archbuilder.build(load(plain)).state_dict()
    )
    assert "scales=(1.0, 0.25), activation=relu" in repr(archbuilder.build(load(RESIDUAL)))


def test_identity_only_add_with_activation_does_not_touch_its_input():
    model = archbuilder.build(load("  - {kind: branches, merge: add, activation: relu, branches: [{}]}\n"))
    x = torch.randn(2, 8, 10, 10)
    before = x.clone()
    model.eval()(x)
    assert torch.equal(x, before)


def test_scale_on_a_concat_block_is_an_error():
    with pytest.raises(SpecError) as caught:
        load(RESIDUAL.replace("merge: add", "merge: concat"))
    assert [str(p) for p in caught.value.problems] == [
        "<spec>:12:9: blocks.0.branches.1.scale: scale multiplies a branch before an add merge; this block concatenates"
    ]


def test_the_merge_node_says_scale_and_activation():
    dot = archbuilder.diagram(load(RESIDUAL)).source
    assert "×0.25 body" in dot and "then ReLU" in dot


def test_scaling_a_spec_with_depthwise_and_separable_convs():
    spec = load(
        "  - {kind: conv, out: 16, kernel: 1}\n"
        "  - {kind: conv, groups: depthwise, kernel: 3, padding: 1}\n"
        "  - {kind: separable, out: 32, kernel: 3, padding: 1}\n",
        HEADER + "scale: {width: 0.5}\n",
    )
    shapes = [row.out_shape[0] for row in archbuilder.summarize(spec).rows]
    assert shapes == [8, 8, 16]


def test_variants_refuse_a_spec_without_inception_blocks():
    spec = archbuilder.load_spec(SPECS / "inception-v3.yaml")
    with pytest.raises(SpecError, match=r"variant 'naive' rewrites GoogLeNet-style specs"):
        emit(spec, "naive")
    result = subprocess.run(
        [sys.executable, "-m", "archbuilder", "emit", "specs/inception-v3.yaml", "--variant", "v1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "specs/inception-v3.yaml: blocks: variant 'v1' rewrites GoogLeNet-style specs" in result.stderr


EVERY_NEW_CONSTRUCT = """\
name: new-constructs
input: {channels: 3, height: 16, width: 16}
num_classes: 5
templates:
  res:
    params: [scale]
    layer:
      kind: branches
      merge: add
      activation: relu
      branches:
        - {name: shortcut}
        - name: body
          scale: $scale
          layers:
            - kind: branches
              branches:
                - layers: [{kind: separable, out: 8, kernel: 3, padding: 1}]
                - layers: [{kind: conv, groups: depthwise, kernel: [1, 3], padding: [0, 1]}, {kind: conv, out: 8, kernel: 1}]
            - {kind: conv, out: 16, kernel: 1, activation: none}
blocks:
  - {kind: conv, out: 16, kernel: 3, padding: 1}
  - {name: res, kind: template, use: res, with: {scale: 0.3}, repeat: 2}
head:
  - {kind: global_avgpool}
  - {kind: flatten}
  - {kind: linear, out: num_classes}
"""


def test_new_constructs_export_to_onnx_and_torch_export(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from archbuilder.export import export_onnx, export_pt2

    torch.manual_seed(0)
    model = archbuilder.build(archbuilder.load_spec(EVERY_NEW_CONSTRUCT)).eval()
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        expected = model(x).numpy()
    session = ort.InferenceSession(
        str(export_onnx(model, tmp_path / "m.onnx")), providers=["CPUExecutionProvider"]
    )
    (actual,) = session.run(None, {"input": x.numpy()})
    assert abs(actual - expected).max() <= 1e-4 * abs(expected).max()
    program = torch.export.load(str(export_pt2(model, tmp_path / "m.pt2")))
    assert torch.allclose(program.module()(x), torch.from_numpy(expected), rtol=1e-4, atol=1e-5)
