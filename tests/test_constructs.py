"""Channel-split branches, layer scale, drop path and layer norm, against timm's and
torchvision's modules, hand references and hand counts."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch.nn import functional as F

import archbuilder
from archbuilder.builder.layers import ChannelSlice, DropPath, LayerScale
from archbuilder.builder.optimize import FusedConv, optimize_for_inference
from archbuilder.ir.split import channel_slices
from archbuilder.render import to_digraph

from .conftest import ROOT, SPECS
from .shape_check import observed_shapes

pytest.importorskip("timm")  # the test extra has it; it is the reference for most of these
from timm.layers import DropPath as TimmDropPath
from timm.layers import LayerNorm2d as TimmLayerNorm2d
from timm.layers import LayerScale2d as TimmLayerScale2d
from timm.layers import calculate_drop_path_rates
from timm.models.inception_next import InceptionDWConv2d

MINI = ROOT / "tests" / "data" / "constructs" / "metanext-mini.yaml"


@pytest.fixture(scope="module")
def mini():
    torch.manual_seed(0)
    model = archbuilder.build(MINI)
    for module in model.modules():  # away from the identity, so that every layer matters
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
        if isinstance(module, LayerScale):
            module.gamma.data.uniform_(0.5, 1.5)
    return model.eval()


def test_split_block_reads_disjoint_slices_in_branch_order(mini):
    mixer = mini.block1.main.mixer
    x = torch.randn(2, 16, 8, 8)
    rest, square, band = torch.split(x, [12, 2, 2], dim=1)  # 1/8 of 16 channels per conv branch
    conv_a, conv_b = mixer.square.conv.conv, mixer.band.conv.conv
    expected = torch.cat(
        [
            rest,
            F.conv2d(square, conv_a.weight, conv_a.bias, padding=1, groups=2),
            F.conv2d(band, conv_b.weight, conv_b.bias, padding=(0, 2), groups=2),
        ],
        dim=1,
    )
    with torch.no_grad():
        assert torch.equal(mixer(x), expected)


@pytest.mark.parametrize("channels", [8, 12, 96, 100, 385, 768])
def test_ratio_slices_equal_timms_inception_depthwise_split(channels):
    timm_sizes = InceptionDWConv2d(channels).split_indexes  # (rest, gc, gc, gc), gc = int(C / 8)
    ours, problems = channel_slices(["rest", 0.125, "1/8", 0.125], channels)
    assert not problems
    assert tuple(count for _, count in ours) == timm_sizes
    assert [start for start, _ in ours] == [0, *torch.tensor(timm_sizes).cumsum(0)[:-1].tolist()]


def test_inception_next_token_mixer_equals_timms_module():
    spec = archbuilder.load_spec(SPECS / "inception-next-tiny.yaml")
    torch.manual_seed(3)
    block = archbuilder.build(spec).stages_2_blocks_4.main.token_mixer.eval()
    reference = InceptionDWConv2d(384).eval()
    for name in ("dwconv_hw", "dwconv_w", "dwconv_h"):
        ours = getattr(block, name).conv.conv
        getattr(reference, name).load_state_dict(ours.state_dict())
    x = torch.randn(2, 384, 14, 14)
    with torch.no_grad():
        assert torch.equal(block(x), reference(x))


def test_halves_split_like_shufflenet_v2(mini):
    # torchvision's ShuffleNetV2 unit (stride 1) splits x.chunk(2, dim=1) and passes one half through
    halves = mini.halves
    x = torch.randn(2, 16, 8, 8)
    left, right = x.chunk(2, dim=1)
    with torch.no_grad():
        out = halves(x)
        assert torch.equal(out[:, :8], left)
        assert torch.equal(out[:, 8:], halves.right.conv(right))


def test_slices_are_ops_with_shapes_and_no_parameters(mini):
    ir = archbuilder.lower(mini.spec)
    slices = {op.id: (op.attrs["start"], op.attrs["channels"]) for op in ir.ops() if op.kind == "slice"}
    assert slices["block1.main.mixer.identity.slice"] == (0, 12)
    assert slices["block3.main.mixer.band.slice"] == (21, 3)  # 24 channels: 3 per conv branch
    assert slices["halves.left.slice"] == (0, 8) and slices["halves.right.slice"] == (8, 8)
    assert all(ir.op(op_id).params == 0 for op_id in slices)
    x = torch.randn(2, 3, 32, 32)
    observed = observed_shapes(mini, ir, x)
    assert all(observed[op.id] == op.shape for op in ir.ops() if op.kind != "input")


def test_parameters_and_macs_equal_a_hand_count(mini):
    rows = {row.name: row for row in archbuilder.summarize(mini.spec).rows}
    # block1 (16 channels, hidden 32, 8×8): two 2-channel depthwise convs 3×3 and 1×5 with
    # bias, batch norm, fc1 and fc2 with bias, gamma
    params = (2 * 9 + 2) + (2 * 5 + 2) + 2 * 16 + (16 * 32 + 32) + (32 * 16 + 16) + 16
    macs = (2 * 9 + 2 * 5 + 16 * 32 + 32 * 16) * 64
    assert (rows["block1"].params, rows["block1"].macs) == (params, macs) == (1152, 67328)
    assert rows["ln"].params == 2 * 16 and rows["norm"].params == 2 * 32
    assert sum(p.numel() for p in mini.parameters()) == archbuilder.summarize(mini.spec).params == 9365


def test_layer_scale_is_gamma_with_its_init_value_and_equals_timms():
    torch.manual_seed(0)
    model = archbuilder.build(MINI)
    gamma = model.block1.main.gamma.gamma
    assert isinstance(gamma, torch.nn.Parameter) and torch.equal(gamma, torch.full((16,), 0.5))
    assert "block1.main.gamma.gamma" in model.state_dict()
    reference = TimmLayerScale2d(16, init_values=0.5)
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        gamma.uniform_(-2, 2)
        reference.gamma.copy_(gamma)
        assert torch.equal(model.block1.main.gamma(x), reference(x))


def test_layer_norm_over_channels_equals_timms_layernorm2d_and_over_features_torchs():
    torch.manual_seed(0)
    model = archbuilder.build(MINI)
    ours = model.ln
    reference = TimmLayerNorm2d(16, eps=1e-6)
    with torch.no_grad():
        ours.weight.uniform_(0.5, 1.5)
        ours.bias.uniform_(-1, 1)
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(2, 16, 8, 8) * 3 + 1
    torch.testing.assert_close(ours(x), reference(x), rtol=1e-6, atol=1e-6)
    flat = model.norm
    assert isinstance(flat, torch.nn.LayerNorm) and flat.normalized_shape == (32,) and flat.eps == 1e-6


def test_drop_path_rates_ramp_like_timms_drop_path_rate():
    spec = archbuilder.load_spec(SPECS / "inception-next-tiny.yaml", overrides=["drop_path_rate=0.1"])
    ir = archbuilder.lower(spec)
    ours = [op.attrs["rate"] for op in ir.ops() if op.kind == "drop_path"]
    expected = [
        rate for stage in calculate_drop_path_rates(0.1, [3, 3, 9, 3], stagewise=True) for rate in stage
    ]
    assert ours == pytest.approx(expected, abs=1e-7) and len(ours) == 18
    written = archbuilder.load_spec(MINI)
    assert [op.attrs["rate"] for op in archbuilder.lower(written).ops() if op.kind == "drop_path"] == [
        0.0,
        0.15,
        0.3,
    ]


def _dropped_fraction_and_kept_value(module: torch.nn.Module, rows: int = 4000) -> tuple[float, float]:
    out = module.train()(torch.ones(rows, 3, 2, 2))
    per_row = out.reshape(rows, -1)
    dropped = (per_row == 0).all(dim=1)
    assert ((per_row == 0).any(dim=1) == dropped).all(), "a sample is dropped whole or not at all"
    return dropped.float().mean().item(), per_row[~dropped].unique().tolist()


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_drop_path_in_training_drops_samples_as_timms_drop_path(rate):
    torch.manual_seed(0)
    ours_fraction, ours_kept = _dropped_fraction_and_kept_value(DropPath(rate))
    timm_fraction, timm_kept = _dropped_fraction_and_kept_value(TimmDropPath(rate))
    tv_fraction, tv_kept = _dropped_fraction_and_kept_value(torchvision.ops.StochasticDepth(rate, "row"))
    sigma = (rate * (1 - rate) / 4000) ** 0.5
    for fraction in (ours_fraction, timm_fraction, tv_fraction):
        assert abs(fraction - rate) < 5 * sigma
    assert abs(ours_fraction - timm_fraction) < 7 * sigma
    for kept in (ours_kept, timm_kept, tv_kept):  # what is kept is scaled by 1 / keep probability
        assert kept == pytest.approx([1 / (1 - rate)])


def test_drop_path_batch_mode_drops_the_whole_batch_as_torchvisions():
    torch.manual_seed(0)
    ours, reference = (
        DropPath(0.3, mode="batch").train(),
        torchvision.ops.StochasticDepth(0.3, "batch").train(),
    )
    x = torch.ones(4, 2)
    for module in (ours, reference):
        outcomes = [module(x) for _ in range(2000)]
        assert all(out.unique().numel() == 1 for out in outcomes)  # all or nothing
        dropped = sum(bool((out == 0).all()) for out in outcomes) / 2000
        assert abs(dropped - 0.3) < 0.05


def test_drop_path_is_the_identity_in_eval_and_training_still_learns(mini):
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(mini(x), mini(x))
    model = archbuilder.build(MINI).train()
    loss = model.compute_loss(model(x), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert model.block3.main.gamma.gamma.grad is not None
    optimized = optimize_for_inference(mini.eval(), fuse_activations=False)
    assert not any(isinstance(m, DropPath) for m in optimized.modules())


def test_optimize_folds_layer_scale_and_standalone_batch_norms(mini):
    optimized = optimize_for_inference(mini, input_shape=(3, 3, 32, 32))
    kinds = {type(module) for module in optimized.modules()}
    assert LayerScale not in kinds and torch.nn.BatchNorm2d not in kinds
    assert ChannelSlice in kinds and FusedConv in kinds
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(optimized(x), mini(x), rtol=1e-4, atol=1e-5)
    unfolded = optimize_for_inference(mini, fold_bn=False, fuse_activations=False)
    assert LayerScale in {type(module) for module in unfolded.modules()}
    with torch.no_grad():
        torch.testing.assert_close(unfolded(x), mini(x), rtol=1e-5, atol=1e-6)


def test_a_padded_conv_after_a_batch_norm_is_not_folded_into():
    spec = archbuilder.load_spec(
        """
name: pad
input: {channels: 4, height: 6, width: 6}
num_classes: 2
blocks:
  - {kind: batchnorm}
  - {kind: conv, out: 4, kernel: 3, padding: 1, norm: none}
head: [{kind: global_avgpool}, {kind: flatten}, {kind: linear, out: num_classes}]
"""
    )
    model = archbuilder.build(spec).eval()
    model.batchnorm1.running_mean.fill_(2.0)  # the zero padding would not see this shift
    optimized = optimize_for_inference(model)
    assert torch.nn.BatchNorm2d in {type(m) for m in optimized.modules()}
    x = torch.randn(2, 4, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(optimized(x), model(x), rtol=1e-5, atol=1e-6)


def test_the_diagram_draws_slices_and_the_new_layers(mini):
    dot = to_digraph(archbuilder.lower(mini.spec)).source
    for text in ("channels 12:14", "channel slice", "layer scale ×0.5", "drop path 0.15", "LayerNorm"):
        assert text in dot, text


@pytest.mark.parametrize(
    ("branches", "where", "message"),
    [
        (
            "[{channels: 1/4}, {channels: 4}]",
            "blocks.0.split",
            r"take 4 \+ 4 = 8 channels but the input has 16",
        ),
        (
            "[{channels: rest}, {channels: 16}]",
            "blocks.0.branches.0.channels",
            "the other branches take 16 of 16 channels, leaving none",
        ),
        (
            "[{channels: 0.05}, {channels: rest}]",
            "blocks.0.branches.0.channels",
            "0.05 of 16 input channels is no",
        ),
        (
            "[{channels: 5/4}, {channels: rest}]",
            "blocks.0.branches.0.channels",
            "5/4 is not a fraction below 1",
        ),
        (
            "[{channels: rest, layers: [{name: slice, kind: conv, out: 4, kernel: 1}]}, {channels: 8}]",
            "blocks.0.branches.0.layers.0.name",
            "'slice' is the name of the branch's channel slice",
        ),
    ],
)
def test_split_sizes_that_cannot_work_are_located(branches, where, message):
    text = f"""name: sizes
input: {{channels: 16, height: 8, width: 8}}
blocks:
  - {{name: mix, kind: branches, split: true, branches: {branches}}}
"""
    with pytest.raises(archbuilder.SpecError, match=message) as caught:
        archbuilder.load_spec(text)
    (problem,) = caught.value.problems
    assert problem.line == 4 and ".".join(map(str, problem.path)) == where


@pytest.mark.slow  # over 2.5 s: CI runs it; the fast subset stays under 3 minutes
def test_onnx_and_torch_export_compute_the_eval_model(mini, tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from archbuilder.export import export_onnx, export_pt2

    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        expected = mini(x)
    path = export_onnx(mini, tmp_path / "mini.onnx")
    onnx.checker.check_model(onnx.load(str(path)))
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert {"LayerNormalization", "Concat"} <= ops and ("Slice" in ops or "Split" in ops)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (actual,) = session.run(None, {"input": x.numpy()})
    torch.testing.assert_close(torch.from_numpy(actual), expected, rtol=1e-4, atol=1e-5)
    program = torch.export.load(str(export_pt2(mini, tmp_path / "mini.pt2"))).module()
    with torch.no_grad():
        torch.testing.assert_close(program(x), expected, rtol=0, atol=0)


def test_scale_width_scales_slice_counts_and_ratios_follow():
    text = """name: scaled
input: {channels: 3, height: 8, width: 8}
scale: {width: 2.0}
blocks:
  - {kind: conv, out: 16, kernel: 1}
  - kind: branches
    split: true
    branches:
      - {name: counted, channels: 8}
      - {name: ratio, channels: 1/4}
      - {name: rest, channels: rest}
"""
    ir = archbuilder.lower(archbuilder.load_spec(text))
    widths = {op.id.split(".")[1]: op.attrs["channels"] for op in ir.ops() if op.kind == "slice"}
    assert widths == {"counted": 16, "ratio": 8, "rest": 8}  # of 32 channels


def test_an_mlp_head_keeps_its_hidden_layers_when_the_classifier_is_reset():
    torch.manual_seed(0)
    model = archbuilder.build(MINI)
    hidden = model.fc1.weight.clone()
    model.reset_classifier(7)
    assert model.fc2.out_features == 7 and torch.equal(model.fc1.weight, hidden)
    assert model.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 7)
    assert archbuilder.build(SPECS / "inception-next-tiny.yaml", num_classes=10).head_fc2.out_features == 10
