"""specs/mobilenet-v3-large.yaml and specs/efficientnet-b0.yaml against torchvision's own
builders (weights=None, nothing downloaded), and the constructs they need: the `se` layer,
the `inverted_residual` block, the hard sigmoid, the block_index drop-path ramp, ceil depth
rounding for EfficientNet's compound scaling."""

from __future__ import annotations

import pytest
import torch
from torch import nn

torchvision = pytest.importorskip("torchvision")

import archbuilder  # noqa: E402
from archbuilder.builder.build import build_from_ir  # noqa: E402
from archbuilder.core.errors import SpecError  # noqa: E402
from archbuilder.interop import load_weights  # noqa: E402

from .conftest import SPECS  # noqa: E402
from .shape_check import outputs_of  # noqa: E402

FAMILIES = {  # spec → (torchvision builder, parameters from the table)
    "mobilenet-v3-large": ("mobilenet_v3_large", 5_483_032),
    "efficientnet-b0": ("efficientnet_b0", 5_288_548),
}
EFFICIENTNET_STAGES = (1, 2, 2, 3, 3, 4, 1)  # blocks per stage of B0 (torchvision's table)


def _randomized(model: nn.Module) -> nn.Module:
    """Batch-norm statistics and affine parameters away from 0/1, so loading them is tested."""
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.3, 0.3, generator=generator)
            module.running_var.uniform_(0.5, 2.0, generator=generator)
            module.weight.data.uniform_(0.5, 1.5, generator=generator)
            module.bias.data.uniform_(-0.2, 0.2, generator=generator)
    return model.eval()


def _stages(spec: str) -> dict[str, str]:
    """Each of torchvision's top-level modules (features.N, avgpool, classifier) and the last of
    our entries it corresponds to."""
    if spec == "mobilenet-v3-large":
        pairs = {f"features.{n}": f"features_{n}" for n in range(17)}
        return {**pairs, "avgpool": "avgpool", "classifier": "classifier_3"}
    pairs = {"features.0": "features_0"}
    for stage, blocks in enumerate(EFFICIENTNET_STAGES, start=1):
        pairs[f"features.{stage}"] = f"features_{stage}" if blocks == 1 else f"features_{stage}_{blocks}"
    return {**pairs, "features.8": "features_8", "avgpool": "avgpool", "classifier": "classifier_1"}


@pytest.fixture(scope="module", params=list(FAMILIES))
def pair(request):
    spec = request.param
    torch.manual_seed(0)
    reference = _randomized(getattr(torchvision.models, FAMILIES[spec][0])(weights=None))
    ours = archbuilder.build(SPECS / f"{spec}.yaml").eval()
    load_weights(ours, reference)  # strict; the layout is found from the spec's name
    return spec, ours, reference


@pytest.mark.parametrize("spec", list(FAMILIES))
def test_parameters_equal_the_table_and_torchvisions(spec):
    builder, expected = FAMILIES[spec]
    summary = archbuilder.summarize(archbuilder.load_spec(SPECS / f"{spec}.yaml"))
    assert summary.params == expected
    with torch.device("meta"):
        reference = getattr(torchvision.models, builder)(weights=None)
    assert sum(p.numel() for p in reference.parameters()) == expected


@pytest.mark.parametrize("spec", list(FAMILIES))
def test_macs_round_to_torchvisions_gflops(spec):
    """torchvision's metadata gives GFLOPs (multiply-adds, in fact) to 3 decimals."""
    summary = archbuilder.summarize(archbuilder.load_spec(SPECS / f"{spec}.yaml"))
    meta = torchvision.models.get_model_weights(FAMILIES[spec][0]).DEFAULT.meta
    assert round(summary.macs / 1e9, 3) == meta["_ops"]
    assert meta["num_params"] == FAMILIES[spec][1]


@pytest.mark.slow
def test_every_state_dict_tensor_loads_and_every_stage_output_equals_torchvisions(pair):
    spec, ours, reference = pair
    assert len(ours.state_dict()) == len(reference.state_dict())
    stages = _stages(spec)
    torch.manual_seed(1)
    x = torch.randn(2, 3, 224, 224)
    theirs, their_logits = outputs_of(reference, list(stages), x)
    mine, my_logits = outputs_of(ours, list(stages.values()), x)
    for tv_name, name in stages.items():
        assert mine[name].shape == theirs[tv_name].shape, name
        error = (mine[name] - theirs[tv_name]).abs().max() / theirs[tv_name].abs().max()
        assert error < 1e-5, (name, error.item())
    assert my_logits.shape == (2, 1000)
    assert ((my_logits - their_logits).abs().max() / their_logits.abs().max()).item() < 1e-5


def test_batch_norm_settings_are_torchvisions(pair):
    _, ours, reference = pair
    mine = [(m.eps, m.momentum) for m in ours.modules() if isinstance(m, nn.BatchNorm2d)]
    theirs = [(m.eps, m.momentum) for m in reference.modules() if isinstance(m, nn.BatchNorm2d)]
    assert mine == theirs


@pytest.mark.slow
def test_optimized_models_give_torchvisions_logits(pair):
    """BN folding and fusion around the SE gates: the optimized model still equals torchvision."""
    _, ours, reference = pair
    optimized = archbuilder.optimize_for_inference(ours, input_shape=(1, 3, 224, 224))
    x = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        expected = reference(x)
        assert ((optimized(x) - expected).abs().max() / expected.abs().max()).item() < 1e-5


def test_one_bneck_block_by_hand():
    """MobileNetV3's features_4: 24 → 72 (1×1) → 5×5 /2 depthwise → SE 72→24→72 → 40, 56² → 28²."""
    rows = {
        r.name: r
        for r in archbuilder.summarize(archbuilder.load_spec(SPECS / "mobilenet-v3-large.yaml")).rows
    }
    expand, depthwise, project = 24 * 72 + 2 * 72, 5 * 5 * 72 + 2 * 72, 72 * 40 + 2 * 40
    se = (72 * 24 + 24) + (24 * 72 + 72)  # two 1×1 convs with bias
    assert rows["features_4"].params == expand + depthwise + se + project == 10_328
    macs = 24 * 72 * 56 * 56 + 5 * 5 * 72 * 28 * 28 + 2 * 72 * 24 + 72 * 40 * 28 * 28
    assert rows["features_4"].macs == macs
    with torch.device("meta"):
        block = torchvision.models.mobilenet_v3_large().features[4]
    assert sum(p.numel() for p in block.parameters()) == 10_328


def test_one_mbconv_block_by_hand():
    """EfficientNet's features_2_1: 16 → 96 → 3×3 /2 depthwise → SE 96→4→96 (a quarter of the
    block's input, 16) → 24, 112² → 56²; no shortcut (the stride and the width change)."""
    rows = {
        r.name: r for r in archbuilder.summarize(archbuilder.load_spec(SPECS / "efficientnet-b0.yaml")).rows
    }
    params = (16 * 96 + 192) + (9 * 96 + 192) + (96 * 4 + 4 + 4 * 96 + 96) + (96 * 24 + 48)
    assert rows["features_2_1"].params == params
    assert rows["features_2_1"].macs == 16 * 96 * 112**2 + 9 * 96 * 56**2 + 2 * 96 * 4 + 96 * 24 * 56**2
    with torch.device("meta"):
        block = torchvision.models.efficientnet_b0().features[2][0]
    assert sum(p.numel() for p in block.parameters()) == params


@pytest.mark.parametrize(
    ("builder", "width", "depth"),
    [("efficientnet_b1", 1.0, 1.1), ("efficientnet_b2", 1.1, 1.2), ("efficientnet_b3", 1.2, 1.4)],
)
def test_compound_scaling_is_one_line(builder, width, depth):
    line = f"scale.width={width}", f"scale.depth={depth}", "scale.depth_rounding=ceil"
    spec = archbuilder.load_spec(SPECS / "efficientnet-b0.yaml", overrides=list(line))
    with torch.device("meta"):
        reference = getattr(torchvision.models, builder)(weights=None)
    assert archbuilder.summarize(spec).params == sum(p.numel() for p in reference.parameters())


def test_b1_depth_adds_a_block_to_the_one_block_stages():
    """ceil(1 · 1.1) = 2: even a one-block stage grows, as torchvision's adjust_depth does."""
    overrides = ["scale.depth=1.1", "scale.depth_rounding=ceil"]
    ir = archbuilder.lower(archbuilder.load_spec(SPECS / "efficientnet-b0.yaml", overrides=overrides))
    names = [entry.name for entry in ir.top_level]
    assert {"features_1_1", "features_1_2", "features_7_2", "features_6_5"} <= set(names)
    assert "features_6_6" not in names  # ceil(4 · 1.1) = 5
    rounded = archbuilder.lower(
        archbuilder.load_spec(SPECS / "efficientnet-b0.yaml", overrides=["scale.depth=1.1"])
    )
    assert "features_1_2" not in [entry.name for entry in rounded.top_level]  # round(1.1) = 1


def test_drop_path_rates_ramp_as_torchvisions_stochastic_depth():
    spec = archbuilder.load_spec(SPECS / "efficientnet-b0.yaml", overrides=["drop_path_rate=0.5"])
    ours = build_from_ir(archbuilder.lower(spec))
    reference = torchvision.models.efficientnet_b0(stochastic_depth_prob=0.5)
    compared = 0
    for tv_name, name in _block_pairs().items():
        expected = reference.get_submodule(tv_name)
        if not expected.use_res_connect:  # torchvision skips stochastic depth there
            assert not hasattr(ours.get_submodule(name).block, "drop_path")
            continue
        assert ours.get_submodule(name).block.drop_path.rate == pytest.approx(expected.stochastic_depth.p)
        compared += 1
    assert compared == 9


def _block_pairs() -> dict[str, str]:
    pairs = {}
    for stage, blocks in enumerate(EFFICIENTNET_STAGES, start=1):
        for block in range(blocks):
            pairs[f"features.{stage}.{block}"] = (
                f"features_{stage}" if blocks == 1 else f"features_{stage}_{block + 1}"
            )
    return pairs


def test_stochastic_depth_in_training_drops_rows_as_torchvision_does():
    """Block 14 of 16 (rate 0.5 · 14/16, the last with a shortcut) in training: each sample's residual is dropped or kept
    ×1/(1-p); the drop frequency agrees with p, and with torchvision's, within 4 σ."""
    spec = archbuilder.load_spec(SPECS / "efficientnet-b0.yaml", overrides=["drop_path_rate=0.5"])
    block = archbuilder.build(spec).features_6_4.train()
    reference = torchvision.models.efficientnet_b0(stochastic_depth_prob=0.5).features[6][3].train()
    block.load_state_dict(
        {mine: theirs for mine, theirs in zip(block.state_dict(), reference.state_dict().values())}
    )
    p, samples = 0.5 * 14 / 16, 2000
    torch.manual_seed(2)
    x = torch.randn(samples, 192, 2, 2)
    with torch.no_grad():
        residual = block.block[:-1](x)  # the branch without its drop path (batch statistics)
        dropped = {}
        for name, module in (("ours", block), ("torchvision", reference)):
            delta = module(x) - x
            zero = delta.flatten(1).abs().amax(1) == 0
            kept = ~zero
            assert torch.allclose(delta[kept], residual[kept] / (1 - p), rtol=1e-4, atol=1e-5), name
            dropped[name] = zero.float().mean().item()
    sigma = (p * (1 - p) / samples) ** 0.5
    assert abs(dropped["ours"] - p) < 4 * sigma
    assert abs(dropped["torchvision"] - p) < 4 * sigma
    assert abs(dropped["ours"] - dropped["torchvision"]) < 4 * 2**0.5 * sigma


SMALL = """
name: se-test
input: {channels: 16, height: 6, width: 6}
blocks:
  - {name: gate, kind: se, %s}
"""


@pytest.mark.parametrize(
    ("fields", "squeeze", "activation", "gate"),
    [
        ("reduction: 4", 4, nn.ReLU, nn.Sigmoid),
        ("squeeze_channels: 5, activation: silu", 5, nn.SiLU, nn.Sigmoid),
        ("reduction: 4, divisor: 8, gate: hardsigmoid", 8, nn.ReLU, nn.Hardsigmoid),
    ],
)
def test_the_se_layer_is_torchvisions_squeeze_excitation(fields, squeeze, activation, gate):
    from torchvision.ops import SqueezeExcitation

    model = archbuilder.build(SMALL % fields).eval()
    reference = SqueezeExcitation(16, squeeze, activation, gate).eval()
    model.gate.load_state_dict(reference.state_dict())  # fc1 and fc2, same names
    x = torch.randn(3, 16, 6, 6)
    with torch.no_grad():
        assert torch.allclose(model(x), reference(x), atol=1e-6)
    row = archbuilder.summarize(archbuilder.load_spec(SMALL % fields)).rows[0]
    assert row.params == 2 * 16 * squeeze + squeeze + 16 and row.macs == 2 * 16 * squeeze


def test_hardsigmoid_is_an_activation():
    text = "name: h\ninput: {channels: 2, height: 3, width: 3}\nblocks: [{kind: activation, function: hardsigmoid}]\n"
    x = torch.linspace(-4, 4, 18).reshape(1, 2, 3, 3)
    assert torch.equal(archbuilder.build(text)(x), nn.functional.hardsigmoid(x))


def test_se_and_sibling_fusion_optimize_to_the_sameoutputs_of():
    """Two sibling 1×1 convs fused into one, an SE gate after one of them, BN folded."""
    text = """
name: fusion
input: {channels: 8, height: 10, width: 10}
blocks:
  - kind: branches
    branches:
      - layers: [{kind: conv, out: 16, kernel: 1}, {kind: se, reduction: 4, gate: hardsigmoid}]
      - layers: [{kind: conv, out: 8, kernel: 1}]
  - {kind: inverted_residual, expanded: 48, out: 24, kernel: 3, se: {reduction: 4, divisor: 8}}
"""
    from .test_optimize import trained_looking

    model = trained_looking(archbuilder.build(text))
    optimized = archbuilder.optimize_for_inference(model, input_shape=(2, 8, 10, 10))
    fused = [m for m in optimized.modules() if type(m).__name__ == "InferenceParallel" and m.heads]
    assert fused and fused[0].heads[0].weight.shape[0] == 24  # 16 + 8 output channels in one conv
    assert not any(isinstance(m, nn.BatchNorm2d) for m in optimized.modules())
    x = torch.randn(2, 8, 10, 10)
    with torch.inference_mode():
        expected = model(x)
        assert ((optimized(x) - expected).abs().max() / expected.abs().max()).item() < 1e-5


@pytest.mark.parametrize(
    ("layer", "where", "says"),
    [
        ("{kind: se, reduction: 4, squeeze_channels: 2}", "blocks.0", "exactly one of squeeze_channels"),
        ("{kind: se, squeeze_channels: 2, divisor: 8}", "blocks.0", "divisor rounds"),
        ("{kind: se, reduction: 4, gate: tanh}", "blocks.0.gate", "hardsigmoid"),
        ("{kind: inverted_residual, out: 8, kernel: 3}", "blocks.0", "exactly one of expanded"),
        ("{kind: inverted_residual, out: 8, expansion: 4, kernel: 4}", "blocks.0", "even"),
        ("{kind: inverted_residual, out: 8, expansion: 4, se: {of: output}}", "blocks.0.se.of", "'expanded'"),
        (
            "{kind: inverted_residual, out: 8, expanded: 32, se: {squeeze_channels: 8, reduction: 2}}",
            "blocks.0.se",
            "not both",
        ),
    ],
)
def test_bad_fields_are_located_errors(layer, where, says):
    text = f"name: bad\ninput: {{channels: 8, height: 8, width: 8}}\nblocks:\n  - {layer}\n"
    with pytest.raises(SpecError) as caught:
        archbuilder.load_spec(text)
    problem = caught.value.problems[0]
    assert problem.line == 4 and ".".join(map(str, problem.path)) == where and says in problem.message, (
        problem
    )


def test_an_se_on_flat_features_is_a_located_shape_error():
    text = "name: bad\ninput: {channels: 8, height: 8, width: 8}\nblocks:\n  - {kind: flatten}\n  - {kind: se, reduction: 2}\n"
    with pytest.raises(SpecError) as caught:
        archbuilder.lower(archbuilder.load_spec(text))
    problem = caught.value.problems[0]
    assert problem.line == 5 and "feature map" in problem.message


def test_a_stage_strides_only_in_its_first_block():
    text = """
name: stage
input: {channels: 16, height: 32, width: 32}
blocks:
  - {name: s, kind: inverted_residual, out: 24, expansion: 6, kernel: 3, stride: 2, repeat: 3}
"""
    ir = archbuilder.lower(archbuilder.load_spec(text))
    shapes = {entry.name: ir.op(entry.output).shape for entry in ir.top_level}
    assert shapes == {"s_1": (24, 16, 16), "s_2": (24, 16, 16), "s_3": (24, 16, 16)}
    merges = [ir.op(entry.output).kind for entry in ir.top_level]
    assert merges == ["concat", "add", "add"]  # the first changes the shape: no shortcut


@pytest.mark.parametrize(
    ("spec", "timm_name"),
    [("mobilenet-v3-large", "mobilenetv3_large_100"), ("efficientnet-b0", "efficientnet_b0")],
)
def test_default_stages_are_timms_feature_maps(spec, timm_name):
    """The last entry at each stride of stem and blocks: timm's feature_info (EfficientNet's
    last 1×1 conv sits in the head, as timm's conv_head is no feature map; MobileNetV3's is)."""
    timm = pytest.importorskip("timm")
    with torch.device("meta"):
        reference = timm.create_model(timm_name, pretrained=False, features_only=True)
    info = archbuilder.feature_info(SPECS / f"{spec}.yaml")
    assert info.channels() == reference.feature_info.channels()
    assert info.reductions() == reference.feature_info.reduction() == [2, 4, 8, 16, 32]


def test_mobilenet_width_scaling_rounds_as_torchvisions_width_mult():
    from torchvision.models.mobilenetv3 import MobileNetV3, _mobilenet_v3_conf  # its width_mult

    overrides = ["scale.width=0.75", "head.classifier_0.out=960"]  # torchvision scales that Linear too
    spec = archbuilder.load_spec(SPECS / "mobilenet-v3-large.yaml", overrides=overrides)
    with torch.device("meta"):
        reference = MobileNetV3(*_mobilenet_v3_conf("mobilenet_v3_large", width_mult=0.75))
    assert archbuilder.summarize(spec).params == sum(p.numel() for p in reference.parameters()) == 3_377_576


GATED = """
name: gated
input: {channels: 16, height: 6, width: 6}
defaults:
  conv: {norm: none}
blocks:
  - name: se
    kind: branches
    merge: mul
    branches:
      - name: identity
      - name: gate
        layers:
          - {kind: global_avgpool}
          - {name: fc1, kind: conv, out: 4, kernel: 1}
          - {name: fc2, kind: conv, out: 16, kernel: 1, activation: hardsigmoid}
"""


def test_a_mul_merge_is_a_gate_as_torchvisions_squeeze_excitation():
    """An SE written as branches: the gate's 16×1×1 output broadcasts over the 16×6×6 input."""
    from torchvision.ops import SqueezeExcitation

    ir = archbuilder.lower(archbuilder.load_spec(GATED))
    assert ir.op("se.mul").shape == (16, 6, 6)
    model = archbuilder.build(GATED).eval()
    reference = SqueezeExcitation(16, 4, scale_activation=nn.Hardsigmoid).eval()
    gate = model.se.gate
    for ours, theirs in ((gate.fc1.conv, reference.fc1), (gate.fc2.conv, reference.fc2)):
        ours.load_state_dict(theirs.state_dict())
    x = torch.randn(3, 16, 6, 6)
    with torch.no_grad():
        assert torch.allclose(model(x), reference(x), atol=1e-6)
    optimized = archbuilder.optimize_for_inference(model, input_shape=(3, 16, 6, 6))
    with torch.inference_mode():
        assert torch.allclose(optimized(x), reference(x), atol=1e-5)


def test_a_mul_merge_that_cannot_broadcast_is_a_located_error():
    text = GATED.replace("out: 16, kernel: 1, activation", "out: 8, kernel: 1, activation")
    with pytest.raises(SpecError) as caught:
        archbuilder.lower(archbuilder.load_spec(text))
    problem = caught.value.problems[0]
    assert problem.line == 7 and "mul-merge needs equal channels" in problem.message
    assert "identity 16×6×6, gate 8×1×1" in problem.message


@pytest.mark.slow
@pytest.mark.parametrize("spec", list(FAMILIES))
def test_torch_export_gives_the_models_logits(spec):
    """The SE gates and single-branch blocks export: the exported program agrees with the
    eval-mode model (a smaller input keeps it quick; every op is size-agnostic). ONNX, checked
    in onnxruntime, is every shipped spec's round trip in tests/test_import_onnx.py."""
    small = archbuilder.load_spec(SPECS / f"{spec}.yaml", overrides=["input.height=96", "input.width=96"])
    model = archbuilder.build(small).eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        expected = model(x)
    program = archbuilder.export.export_program(model)
    exported = program.module()(x)
    assert ((exported - expected).abs().max() / expected.abs().max()).item() < 1e-5


def test_an_expansion_past_the_width_limit_is_a_located_error():
    text = "name: bad\ninput: {channels: 65536, height: 4, width: 4}\nblocks:\n  - {kind: inverted_residual, out: 8, expansion: 64}\n"
    with pytest.raises(SpecError) as caught:
        archbuilder.lower(archbuilder.load_spec(text))
    problem = caught.value.problems[0]
    assert problem.line == 4 and problem.path[-1] == "expansion" and "over 1,048,576" in problem.message
