"""specs/convnext-tiny.yaml and specs/shufflenet-v2-x1-0.yaml against torchvision's builders
(random weights, nothing downloaded): parameters, every stage's output, strict weight loading,
eval logits, hand counts of one CNBlock and one shuffle unit, width and depth scaling against
torchvision's general classes, and stochastic depth against torchvision's StochasticDepth."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

torchvision = pytest.importorskip("torchvision")

from torchvision.models.convnext import CNBlockConfig, ConvNeXt  # noqa: E402
from torchvision.models.shufflenetv2 import ShuffleNetV2  # noqa: E402
from torchvision.ops import StochasticDepth  # noqa: E402

import archbuilder  # noqa: E402
from archbuilder.builder.build import build_from_ir  # noqa: E402
from archbuilder.builder.layers import DropPath, LayerScale  # noqa: E402
from archbuilder.interop import InteropError, load_weights  # noqa: E402

from .conftest import SPECS  # noqa: E402
from .shape_check import outputs_of  # noqa: E402

CONVNEXT, SHUFFLENET = SPECS / "convnext-tiny.yaml", SPECS / "shufflenet-v2-x1-0.yaml"
# torchvision's top-level stages and the last of our top-level entries each corresponds to
CONVNEXT_STAGES = {
    "features.0": "stem",
    "features.1": "stage1_3",
    "features.2": "down2",
    "features.3": "stage2_3",
    "features.4": "down3",
    "features.5": "stage3_9",
    "features.6": "down4",
    "features.7": "stage4_3",
}
SHUFFLENET_STAGES = {
    "conv1": "conv1",
    "maxpool": "maxpool",
    "stage2": "stage2_3",
    "stage3": "stage3_7",
    "stage4": "stage4_3",
    "conv5": "conv5",
}


def _randomize(model: nn.Module) -> None:
    """Non-trivial batch-norm statistics, norm affines and layer scales near 1 (at
    torchvision's 1e-6 every residual branch would vanish from the logits)."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
            if isinstance(module, (nn.BatchNorm2d, nn.LayerNorm)):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.3, 0.3)
            if hasattr(module, "layer_scale"):
                module.layer_scale.uniform_(0.5, 1.5)


def _pair(reference: nn.Module, spec) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    _randomize(reference.eval())
    ours = archbuilder.build(spec).eval()
    load_weights(ours, reference)  # the module: its convs' and norms' settings are checked too
    return ours, reference


def _relative(mine: torch.Tensor, theirs: torch.Tensor) -> float:
    return ((mine - theirs).abs().max() / theirs.abs().max()).item()


def _check_equal(ours, reference, stages: dict[str, str], size: int) -> None:
    torch.manual_seed(1)
    x = torch.randn(2, 3, size, size)
    theirs, their_logits = outputs_of(reference, list(stages), x)
    mine, my_logits = outputs_of(ours, list(stages.values()), x)
    for tv_name, name in stages.items():
        assert mine[name].shape == theirs[tv_name].shape, name
        assert _relative(mine[name], theirs[tv_name]) < 1e-5, name
    assert my_logits.shape == their_logits.shape
    assert _relative(my_logits, their_logits) < 1e-5


@pytest.mark.parametrize(
    ("spec", "builder", "params"),
    [(CONVNEXT, "convnext_tiny", 28_589_128), (SHUFFLENET, "shufflenet_v2_x1_0", 2_278_604)],
    ids=["convnext-tiny", "shufflenet-v2-x1-0"],
)
def test_parameters_equal_torchvisions(spec, builder, params):
    summary = archbuilder.summarize(archbuilder.load_spec(spec))
    assert summary.params == summary.inference_params == params
    with torch.device("meta"):
        reference = getattr(torchvision.models, builder)()
    assert sum(p.numel() for p in reference.parameters()) == params


@pytest.mark.slow
@pytest.mark.parametrize(
    ("spec", "stages", "builder"),
    [(CONVNEXT, CONVNEXT_STAGES, "convnext_tiny"), (SHUFFLENET, SHUFFLENET_STAGES, "shufflenet_v2_x1_0")],
    ids=["convnext-tiny", "shufflenet-v2-x1-0"],
)
def test_every_stage_shape_at_224_equals_torchvisions(spec, stages, builder):
    ours = build_from_ir(archbuilder.lower(archbuilder.load_spec(spec)))
    reference = getattr(torchvision.models, builder)().eval()
    x = torch.zeros(1, 3, 224, 224)
    theirs, _ = outputs_of(reference, list(stages), x)
    mine, _ = outputs_of(ours.eval(), list(stages.values()), x)
    assert [tuple(mine[n].shape) for n in stages.values()] == [tuple(theirs[n].shape) for n in stages]


@pytest.mark.slow
def test_shufflenet_loads_strictly_and_every_stage_equals_torchvisions():
    ours, reference = _pair(torchvision.models.shufflenet_v2_x1_0(), SHUFFLENET)
    _check_equal(ours, reference, SHUFFLENET_STAGES, 224)


@pytest.mark.slow
def test_convnext_loads_strictly_and_every_stage_equals_torchvisions():
    ours, reference = _pair(torchvision.models.convnext_tiny(), CONVNEXT)
    _check_equal(ours, reference, CONVNEXT_STAGES, 224)


def test_the_shuffle_is_what_makes_the_units_equal():
    """Without its channel shuffle a unit no longer computes torchvision's: the test above
    would catch a shuffle that did nothing."""
    ours, reference = _pair(torchvision.models.shufflenet_v2_x1_0(), SHUFFLENET)
    block = ours.stage2_1
    x = torch.randn(2, 116, 28, 28)
    with torch.no_grad():
        expected = reference.stage2[1](x)
        assert _relative(block(x), expected) < 1e-6
        block.shuffle = None
        assert _relative(block(x), expected) > 0.1


def test_one_cnblock_by_hand():
    """stage1_1 at 96 channels on 56×56: a 7×7 depthwise conv (bias), LayerNorm, 96→384→96
    1×1 convs (bias), a 96-channel layer scale."""
    rows = {row.name: row for row in archbuilder.summarize(archbuilder.load_spec(CONVNEXT)).rows}
    dim, pixels = 96, 56 * 56
    params = (7 * 7 * dim + dim) + 2 * dim + (dim * 4 * dim + 4 * dim) + (4 * dim * dim + dim) + dim
    assert rows["stage1_1"].params == params == 79_296
    assert rows["stage1_1"].macs == (7 * 7 * dim + 2 * dim * 4 * dim) * pixels == 245_962_752
    with torch.device("meta"):
        block = torchvision.models.convnext_tiny().features[1][0]
    assert sum(p.numel() for p in block.parameters()) == params


def test_one_shuffle_unit_of_each_kind_by_hand():
    rows = {row.name: row for row in archbuilder.summarize(archbuilder.load_spec(SHUFFLENET)).rows}
    # stride 1 at 116 channels, 28×28: 58→58 1×1, 3×3 depthwise, 58→58 1×1, each with BN
    half = 58
    unit = (half * half + 2 * half) + (9 * half + 2 * half) + (half * half + 2 * half)
    assert rows["stage2_1"].params == unit == 7_598
    assert rows["stage2_1"].macs == (2 * half * half + 9 * half) * 28 * 28 == 5_684_000
    # stride 2 from 24 channels at 56×56: branch1 3×3 dw /2 + 24→58; branch2 24→58 (at 56×56),
    # 3×3 dw /2, 58→58
    branch1 = (9 * 24 + 2 * 24) + (24 * half + 2 * half)
    branch2 = (24 * half + 2 * half) + (9 * half + 2 * half) + (half * half + 2 * half)
    assert rows["stage2_down"].params == branch1 + branch2 == 7_398
    macs = (9 * 24 + 24 * half) * 784 + 24 * half * 3136 + (9 * half + half * half) * 784
    assert rows["stage2_down"].macs == macs == 8_672_608
    with torch.device("meta"):
        reference = torchvision.models.shufflenet_v2_x1_0()
    assert sum(p.numel() for p in reference.stage2[1].parameters()) == unit
    assert sum(p.numel() for p in reference.stage2[0].parameters()) == branch1 + branch2


HALF_WIDTHS = [16, 64, 112, 240, 512]


def test_shufflenet_at_half_width_is_torchvisions_class_at_those_widths():
    """scale.width 0.5 rounds each width to a multiple of 8: 24 → 16, the halves 58, 116, 232
    → 32, 56, 120, and 1024 → 512. torchvision's ShuffleNetV2 at those stage widths (its x0.5
    uses 48/96/192 and keeps 24 and 1024, not a uniform multiplier) has the same parameters,
    loads strictly and computes the same logits."""
    spec = archbuilder.load_spec(SHUFFLENET, overrides=["scale.width=0.5"])
    with torch.device("meta"):
        reference = ShuffleNetV2([4, 8, 4], HALF_WIDTHS)
    assert archbuilder.summarize(spec).params == sum(p.numel() for p in reference.parameters())
    rows = archbuilder.summarize(spec).rows
    widths = [row.out_shape[0] for row in rows if row.name in SHUFFLENET_STAGES.values()]
    assert widths == [16, 16, 64, 112, 240, 512]


@pytest.mark.slow
def test_shufflenet_at_half_width_loads_torchvisions_class_and_computes_its_logits():
    spec = archbuilder.load_spec(SHUFFLENET, overrides=["scale.width=0.5"])
    ours, reference = _pair(ShuffleNetV2([4, 8, 4], HALF_WIDTHS), spec)
    _check_equal(ours, reference, SHUFFLENET_STAGES, 96)


@pytest.mark.slow
def test_convnext_at_half_width_and_double_depth_is_torchvisions_class():
    spec = archbuilder.load_spec(CONVNEXT, overrides=["scale.width=0.5", "scale.depth=2"])
    settings = [CNBlockConfig(48, 96, 6), CNBlockConfig(96, 192, 6), CNBlockConfig(192, 384, 18)]
    reference = ConvNeXt([*settings, CNBlockConfig(384, None, 6)], stochastic_depth_prob=0.1)
    assert archbuilder.summarize(spec).params == sum(p.numel() for p in reference.parameters())
    ours, reference = _pair(reference, spec)
    stages = {"features.1": "stage1_6", "features.5": "stage3_18", "features.7": "stage4_6"}
    _check_equal(ours, reference, stages, 64)
    rates = [m.p for m in reference.modules() if isinstance(m, StochasticDepth)]
    assert [m.rate for m in ours.modules() if isinstance(m, DropPath)] == pytest.approx(rates, abs=1e-7)


def test_each_cnblock_gets_torchvisions_stochastic_depth_rate():
    """torchvision: 0.1 · block index / (18 − 1) over the network's 18 blocks."""
    ours = build_from_ir(archbuilder.lower(archbuilder.load_spec(CONVNEXT)))
    with torch.device("meta"):
        reference = torchvision.models.convnext_tiny()
    theirs = [m.p for m in reference.modules() if isinstance(m, StochasticDepth)]
    mine = [m.rate for m in ours.modules() if isinstance(m, DropPath)]
    assert len(mine) == len(theirs) == 18
    assert mine == pytest.approx(theirs, abs=1e-7)
    assert mine[-1] == pytest.approx(0.1) and mine[0] == 0.0
    assert all(m.mode == "row" for m in ours.modules() if isinstance(m, DropPath))


def test_row_drop_path_in_training_is_distributed_as_torchvisions_stochastic_depth():
    """Over 40,000 samples both zero a fraction of rows within 4.5 standard errors of the rate
    (and of each other), and scale every kept row by exactly 1 / (1 − rate)."""
    rate, rows = 0.3, 40_000
    x = torch.rand(rows, 4, 2, 2) + 1.0  # never zero, so a zero row was dropped
    standard_error = math.sqrt(rate * (1 - rate) / rows)
    fractions = []
    for module in (DropPath(rate, "row").train(), StochasticDepth(rate, "row").train()):
        torch.manual_seed(3 if isinstance(module, DropPath) else 4)
        out = module(x)
        dropped = (out == 0).flatten(1).all(dim=1)
        assert ((out == 0).flatten(1).any(dim=1) == dropped).all()  # a row goes whole or not at all
        kept = ~dropped
        assert torch.allclose(out[kept], x[kept] / (1 - rate), rtol=1e-6)
        fractions.append(dropped.double().mean().item())
        assert abs(fractions[-1] - rate) < 4.5 * standard_error
    assert abs(fractions[0] - fractions[1]) < 4.5 * math.sqrt(2) * standard_error


def test_a_cnblock_in_training_drops_its_branch_per_sample_at_its_rate():
    """The last block (rate 0.1; at 1/8 width, 96 channels, to keep it cheap): a sample's
    output is its input where the branch was dropped, else input + branch / 0.9, with the
    branch from eval mode."""
    spec = archbuilder.load_spec(CONVNEXT, overrides=["scale.width=0.125"])
    block = build_from_ir(archbuilder.lower(spec)).stage4_3
    with torch.no_grad():
        block.block.gamma.gamma.fill_(1.0)
        x = torch.randn(4_000, 96, 1, 1)
        branch = block.eval()(x) - x
        torch.manual_seed(5)
        out = block.train()(x)
    dropped = torch.isclose(out, x, atol=1e-6).flatten(1).all(dim=1)
    kept = ~dropped
    assert torch.allclose(out[kept], x[kept] + branch[kept] / 0.9, atol=1e-4)
    assert abs(dropped.double().mean().item() - 0.1) < 4.5 * math.sqrt(0.1 * 0.9 / 4_000)


@pytest.mark.slow
@pytest.mark.parametrize("spec", [CONVNEXT, SHUFFLENET], ids=["convnext-tiny", "shufflenet-v2-x1-0"])
def test_optimize_for_inference_folds_around_shuffles_and_layer_norms(spec):
    """BN folds into every ShuffleNet conv and layer scale into every ConvNeXt pwconv2; the
    shuffle and the layer norms pass through; the logits stay those of torchvision."""
    builder = "convnext_tiny" if spec == CONVNEXT else "shufflenet_v2_x1_0"
    ours, reference = _pair(getattr(torchvision.models, builder)(), spec)
    fast = archbuilder.optimize_for_inference(ours, input_shape=(2, 3, 64, 64))
    kinds = {type(module) for module in fast.modules()}
    assert nn.BatchNorm2d not in kinds and LayerScale not in kinds
    torch.manual_seed(2)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert _relative(fast(x), reference(x)) < 1e-4  # oneDNN's fused kernels round differently


def _halves(*halves: int) -> list[str]:
    stages = zip(("stage2", "stage3", "stage4"), halves)
    return [f"blocks.{name}{part}.with.half={half}" for name, half in stages for part in ("_down", "")]


X0_5, X2_0 = _halves(24, 48, 96), [*_halves(122, 244, 488), "blocks.conv5.out=2048"]


@pytest.mark.parametrize(
    ("spec", "overrides", "builder"),
    [
        (SHUFFLENET, X0_5, "shufflenet_v2_x0_5"),
        (SHUFFLENET, X2_0, "shufflenet_v2_x2_0"),
        (CONVNEXT, ["blocks.stage3.repeat=27"], "convnext_small"),
        (CONVNEXT, ["blocks.stage3.repeat=27", "scale.width=1.3333"], "convnext_base"),
    ],
    ids=["shufflenet_v2_x0_5", "shufflenet_v2_x2_0", "convnext_small", "convnext_base"],
)
def test_the_family_pages_other_sizes_have_torchvisions_parameters(spec, overrides, builder):
    """The overrides tools/templates/families/*.md gives for torchvision's other sizes."""
    with torch.device("meta"):
        reference = getattr(torchvision.models, builder)()
    expected = sum(p.numel() for p in reference.parameters())
    assert archbuilder.summarize(archbuilder.load_spec(spec, overrides=overrides)).params == expected


@pytest.mark.slow
def test_shufflenet_x0_5_by_its_halves_loads_torchvisions_and_computes_its_logits():
    spec = archbuilder.load_spec(SHUFFLENET, overrides=X0_5)
    ours, reference = _pair(torchvision.models.shufflenet_v2_x0_5(), spec)
    _check_equal(ours, reference, SHUFFLENET_STAGES, 96)


@pytest.mark.slow
@pytest.mark.parametrize("spec", [CONVNEXT, SHUFFLENET], ids=["convnext-tiny", "shufflenet-v2-x1-0"])
def test_torch_export_computes_the_shipped_models(spec):
    """The exported program gives torchvision's logits. ONNX, checked in onnxruntime, is every
    shipped spec's round trip in tests/test_import_onnx.py."""
    from archbuilder.export import export_program

    builder = "convnext_tiny" if spec == CONVNEXT else "shufflenet_v2_x1_0"
    ours, reference = _pair(getattr(torchvision.models, builder)(), spec)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = reference(x)
        assert _relative(export_program(ours).module()(x), expected) < 1e-5


def test_convnext_feature_maps_are_timms():
    timm = pytest.importorskip("timm")
    info = archbuilder.feature_info(CONVNEXT)
    with torch.device("meta"):
        reference = timm.create_model("convnext_tiny", pretrained=False, features_only=True)
    assert info.channels() == reference.feature_info.channels() == [96, 192, 384, 768]
    assert info.reductions() == reference.feature_info.reduction() == [4, 8, 16, 32]
    assert info.names() == ["stage1_3", "stage2_3", "stage3_9", "stage4_3"]


@pytest.mark.parametrize(
    ("spec", "builder"),
    [(CONVNEXT, "convnext_tiny"), (SHUFFLENET, "shufflenet_v2_x1_0")],
    ids=["convnext-tiny", "shufflenet-v2-x1-0"],
)
def test_macs_and_parameters_match_torchvisions_published_metadata(spec, builder):
    """torchvision's weights metadata (no download): GFLOPs per image, counted as multiply-adds."""
    meta = torchvision.models.get_model_weights(builder).DEFAULT.meta
    summary = archbuilder.summarize(archbuilder.load_spec(spec))
    assert summary.inference_params == meta["num_params"]
    assert round(summary.inference_macs / 1e9, 3) == meta["_ops"]


def test_a_missing_layer_scale_is_named_on_both_sides():
    """The whole-tensor rule runs backwards too: the error names torchvision's bare tensor."""
    with torch.device("meta"):
        reference = torchvision.models.convnext_tiny()
    state = {k: v for k, v in reference.state_dict().items() if k != "features.3.1.layer_scale"}
    ours = build_from_ir(archbuilder.lower(archbuilder.load_spec(CONVNEXT)))
    ours.spec = archbuilder.load_spec(CONVNEXT)
    with pytest.raises(InteropError) as caught:
        load_weights(ours, state)
    assert caught.value.missing == ("stage2_2.block.gamma.gamma",)
    assert "stage2_2.block.gamma.gamma ← features.3.1.layer_scale" in str(caught.value)
