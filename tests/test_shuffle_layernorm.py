"""Channel shuffle (the `channel_shuffle` layer and `shuffle:` on branches), `norm: layer` on
convs, and the weight-layout `reshape` and whole-tensor rules: against torchvision's
functions, hand counts, onnxruntime, and with located errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F
from torchvision.models.convnext import LayerNorm2d as TorchvisionLayerNorm2d
from torchvision.models.shufflenetv2 import channel_shuffle as torchvision_shuffle

import archbuilder
from archbuilder.builder.layers import ChannelShuffle, LayerNorm2d, channel_shuffle
from archbuilder.builder.optimize import FusedConv, InferenceParallel
from archbuilder.core.errors import SpecError
from archbuilder.export import export_onnx, export_program
from archbuilder.interop import InteropError, load_layout, load_weights
from archbuilder.render import diagram

from .conftest import ROOT

MINI = ROOT / "tests" / "data" / "constructs" / "shuffle-mini.yaml"
BASE = "name: n\ninput: {channels: 3, height: 8, width: 8}\nnum_classes: 3\n"


def _mini() -> archbuilder.ArchModel:
    torch.manual_seed(0)
    model = archbuilder.build(MINI)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
            if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.LayerNorm)):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    return model.eval()


def _problems(text: str) -> list:
    with pytest.raises(SpecError) as caught:
        archbuilder.summarize(archbuilder.load_spec(text))
    return caught.value.problems


@pytest.mark.parametrize("groups", [1, 2, 3, 4, 12])
def test_channel_shuffle_is_torchvisions(groups):
    x = torch.randn(2, 12, 3, 5)
    assert torch.equal(channel_shuffle(x, groups), torchvision_shuffle(x, groups))
    assert torch.equal(ChannelShuffle(groups)(x), torchvision_shuffle(x, groups))


def test_channel_shuffle_by_hand():
    """Six channels in 2 groups, [0 1 2 | 3 4 5], come out column by column: 0 3 1 4 2 5."""
    x = torch.arange(6.0).reshape(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    assert channel_shuffle(x, 3).flatten().tolist() == [0, 2, 4, 1, 3, 5]


def test_the_mini_network_counts_and_shapes_by_hand():
    rows = {row.name: row for row in archbuilder.summarize(archbuilder.load_spec(MINI)).rows}
    assert rows["stem"].params == 3 * 3 * 3 * 16 + 2 * 16  # no bias under a norm; LN weight and bias
    assert rows["siblings"].params == (16 * 8 + 16) + (9 * 8 + 16) + (16 * 8 + 16)
    assert (rows["shuffle4"].params, rows["shuffle4"].macs, rows["shuffle4"].out_shape) == (0, 0, (16, 8, 8))
    assert rows["unit"].params == (8 * 8 + 16) + (9 * 8 + 16)  # reads its half: 8 of 16 channels
    assert rows["unit"].out_shape == (16, 8, 8)


def test_the_mini_network_computes_what_its_torch_pieces_do():
    model = _mini()
    x = torch.randn(2, 3, 16, 16)
    stem = model.stem
    assert isinstance(stem.norm, LayerNorm2d) and stem.norm.eps == 1e-6
    with torch.no_grad():
        conv = stem.conv(x)
        normed = F.layer_norm(conv.permute(0, 2, 3, 1), (16,), stem.norm.weight, stem.norm.bias, 1e-6)
        h = F.gelu(normed.permute(0, 3, 1, 2))
        reference = TorchvisionLayerNorm2d(16, eps=1e-6)
        reference.load_state_dict(stem.norm.state_dict())
        assert torch.allclose(stem(x), F.gelu(reference(conv)), atol=1e-6)
        assert torch.allclose(stem(x), h, atol=1e-6)
        s = model.siblings
        h = torchvision_shuffle(torch.cat([s.a(h), s.b(h)], 1), 2)
        h = torchvision_shuffle(h, 4)
        left, right = h.chunk(2, dim=1)
        h = torchvision_shuffle(torch.cat([left, model.unit.branch2[1:](right)], 1), 2)
        logits = model.fc(h.mean((2, 3)))
        assert torch.allclose(model(x), logits, atol=1e-6)


def test_optimize_fuses_the_siblings_and_folds_every_batch_norm_around_the_shuffles():
    model = _mini()
    fast = archbuilder.optimize_for_inference(model, input_shape=(2, 3, 16, 16))
    blocks = [m for m in fast.modules() if isinstance(m, InferenceParallel)]
    assert [len(block.heads) for block in blocks] == [1, 0]  # the two 1×1 convs are one; none in the split
    assert [block.shuffle for block in blocks] == [2, 2]
    kinds = {type(m) for m in fast.modules()}
    assert torch.nn.BatchNorm2d not in kinds and FusedConv in kinds and ChannelShuffle in kinds
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        expected = model(x)
        assert torch.allclose(fast(x), expected, rtol=1e-4, atol=1e-5)
        plain = archbuilder.optimize_for_inference(model, fuse_activations=False, channels_last=False)
        assert torch.allclose(plain(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_onnx_and_torch_export_compute_the_shuffles_and_layer_norm(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model = _mini()
    path = export_onnx(model, tmp_path / "mini.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 4):
        x = torch.randn(batch, 3, 16, 16)
        with torch.no_grad():
            expected = model(x).numpy()
        (actual,) = session.run(None, {"input": x.numpy()})
        assert np.abs(actual - expected).max() <= 1e-4 * np.abs(expected).max()
        program = export_program(model).module()
        assert torch.allclose(program(x), torch.from_numpy(expected), rtol=1e-5, atol=1e-6)


def test_diagrams_show_the_layer_norm_and_the_shuffles():
    source = diagram(MINI).source
    assert "· LN · GELU" in source and "channel shuffle g4" in source
    assert source.count("then shuffle g2") == 2
    layers = diagram(MINI, detail="layers").source
    assert "LayerNorm" in layers


@pytest.mark.parametrize(
    ("layers", "key", "message"),
    [
        ("[{name: c, kind: conv, out: 6, kernel: 1}, {name: s, kind: channel_shuffle, groups: 4}]", "blocks.1: s:", "groups=4 must divide the 6 channels it shuffles; pick a divisor of 6 (2, 3, 6)"),
        ("[{kind: flatten}, {name: s, kind: channel_shuffle, groups: 2}]", "blocks.1: s:", "needs a C×H×W feature map"),
        ("[{name: s, kind: channel_shuffle, groups: 0}]", "blocks.0.groups:", "greater than or equal to 1"),
        ("[{name: c, kind: conv, out: 6, kernel: 1, norm: layernorm}]", "blocks.0.norm:", "'batch', 'layer' or 'none'"),
        ("[{name: b, kind: branches, shuffle: 4, branches: [{layers: [{kind: conv, out: 3, kernel: 1}]}, {}]}]", "blocks.0.shuffle:", "groups=4 must divide the 6 channels"),
        ("[{name: c, kind: separable, out: 6, kernel: 1, norm: layer, bn_eps: 0.001}]", "blocks.0:", "bn_eps set a batch norm, but this conv has norm: layer"),
    ],
    ids=["groups-do-not-divide", "flat-input", "zero-groups", "unknown-norm", "branches-shuffle", "bn-eps-on-layer-norm"],
)  # fmt: skip
def test_bad_shuffles_and_norms_are_located_errors(layers, key, message):
    (problem,) = _problems(BASE + f"blocks: {layers}\n")
    assert problem.line == 4 and problem.column is not None
    assert message in problem.message
    assert key in str(problem)


def test_layout_reshape_and_whole_tensor_rules(tmp_path):
    """A reshape pattern lets a [4, 3] weight fill a [4, 3, 1, 1] conv weight; a rule naming a
    tensor renames that tensor alone; a different element count is still a mismatch."""
    spec = BASE + "blocks: [{name: pw, kind: conv, out: 4, kernel: 1, norm: none, activation: none}]\n"
    layout = tmp_path / "layout.yaml"
    layout.write_text(
        "reference: toy\nlibrary: toy\nspec: n\nreshape: ['pw\\.conv\\.weight']\n"
        "passes: [{rules: [[fc, pw.conv], [scale, pw.conv.bias]]}]\n"
    )
    model = archbuilder.build(spec)
    weight, bias = torch.randn(4, 3), torch.randn(4)
    load_weights(model, {"fc.weight": weight, "scale": bias}, layout)
    assert torch.equal(model.pw.conv.weight, weight.reshape(4, 3, 1, 1))
    assert torch.equal(model.pw.conv.bias, bias)
    with pytest.raises(InteropError, match=r"shape \(4, 2\) vs \(4, 3, 1, 1\)"):
        load_weights(model, {"fc.weight": torch.randn(4, 2), "scale": bias}, layout)


def test_a_bad_reshape_pattern_is_a_located_error(tmp_path):
    layout = tmp_path / "bad.yaml"
    layout.write_text("reference: toy\nlibrary: toy\nspec: n\nreshape: ['(']\npasses: [{rules: [[a, b]]}]\n")
    with pytest.raises(SpecError) as caught:
        load_layout(layout)
    (problem,) = caught.value.problems
    assert problem.line == 4 and "not a regular expression" in problem.message


def test_the_shipped_layouts_load():
    for name in ("torchvision-convnext-tiny", "torchvision-shufflenet-v2-x1-0"):
        assert load_layout(name).library == "torchvision"


@pytest.mark.slow
def test_int8_quantization_keeps_the_shuffles():
    """int8 (exact arithmetic simulated in float32) stays close to float on the calibration
    distribution: a shuffle dropped or misplaced in the rewrite would scramble the channels."""
    from archbuilder.builder.quantize import calibration_batches, quantize

    model = _mini()
    batches = calibration_batches(model, count=4, batch=8)
    quantized = quantize(model, batches, compile=False)
    with torch.no_grad():
        expected, actual = model(batches[0]), quantized(batches[0])
    assert torch.corrcoef(torch.stack([expected.flatten(), actual.flatten()]))[0, 1] > 0.99
    for block in (model.siblings, model.unit):
        block.shuffle = None
    with torch.no_grad():
        unshuffled = model(batches[0])
    assert (unshuffled - expected).abs().max() > 10 * (actual - expected).abs().max()
