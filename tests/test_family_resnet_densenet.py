"""ResNet-50 and DenseNet-121 against torchvision, and the constructs they use.

The truths: the parameter counts of the issue's table (torchvision's own figures); parameters
and MACs of one block of each template counted by hand from the papers' widths; and
torchvision's modules built with ``weights=None``: their parameter count, state-dict tensors,
the output shape of every top-level stage (forward hooks), their MACs (counted from the
tensors torch produces) and their eval-mode outputs after ``load_weights``, with randomized
batch-norm statistics. Pre-activation convs are checked against hand-written torch
(``BatchNorm2d`` → ``ReLU`` → ``Conv2d``) and torchvision's own ``_DenseBlock``/``_Transition``.
"""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models import densenet as tv_densenet

import archbuilder
from archbuilder.builder.optimize import optimize_for_inference
from archbuilder.core.errors import SpecError
from archbuilder.interop import load_weights

from .conftest import SPECS
from .shape_check import assert_holds_every_tensor, counted_macs
from .test_inception_lineage import our_shapes, reference_shapes
from .test_interop import TOLERANCE, randomized, relative_error

TABLE = {"resnet50": 25_557_032, "densenet121": 7_978_856}  # the table = torchvision's
BUILDERS = {"resnet50": torchvision.models.resnet50, "densenet121": torchvision.models.densenet121}


def rows(spec) -> dict:
    return {row.name: row for row in archbuilder.summarize(spec).rows}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_parameter_counts_are_torchvisions(name):
    ir = archbuilder.lower(archbuilder.load_spec(SPECS / f"{name}.yaml"))
    assert ir.total()[0] == TABLE[name]
    meta = torchvision.models.get_model_weights(name).DEFAULT.meta  # metadata only, no download
    assert meta["num_params"] == TABLE[name]


# -- hand counts per template ------------------------------------------------------------------


def bottleneck(cin: int, width: int, out: int, projected: bool) -> int:
    """Parameters of a torchvision Bottleneck: three convs without bias, each with a BN."""
    params = cin * width + 2 * width + 9 * width * width + 2 * width + width * out + 2 * out
    return params + (cin * out + 2 * out if projected else 0)


def test_resnet50_bottleneck_params_and_macs_by_hand():
    table = rows(SPECS / "resnet50.yaml")
    assert table["layer1_0"].params == bottleneck(64, 64, 256, True) == 75_008
    assert table["layer1_1"].params == bottleneck(256, 64, 256, False)
    assert table["layer3_0"].params == bottleneck(512, 256, 1024, True)
    # layer2_0: the 1×1 at 56×56, the strided 3×3 and the rest at 28×28, the projection /2
    macs = 256 * 128 * 56 * 56 + 9 * 128 * 128 * 28 * 28 + 128 * 512 * 28 * 28 + 256 * 512 * 28 * 28
    assert table["layer2_0"].macs == macs
    assert table["layer4_2"].macs == (2048 * 512 + 9 * 512 * 512 + 512 * 2048) * 7 * 7


def test_resnet50_at_half_width_by_hand():
    """scale.width 0.5 halves every conv width (all multiples of 8); fc keeps its 1000 outputs."""
    spec = archbuilder.load_spec(SPECS / "resnet50.yaml", overrides=["scale.width=0.5"])
    total = 7 * 7 * 3 * 32 + 2 * 32  # stem conv and its BN
    cin = 32
    for width, blocks in ((32, 3), (64, 4), (128, 6), (256, 3)):
        out = 4 * width
        total += bottleneck(cin, width, out, True) + (blocks - 1) * bottleneck(out, width, out, False)
        cin = out
    total += 1024 * 1000 + 1000
    assert archbuilder.summarize(spec).params == total == 6_917_640
    model = archbuilder.build(spec).eval()
    assert sum(p.numel() for p in model.parameters()) == total
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_densenet121_at_half_width_by_hand():
    """Growth 16, bottleneck 64, stem 32, transitions 64/128/256: every width halves."""

    def layer(cin: int) -> int:
        return 2 * cin + cin * 64 + 2 * 64 + 9 * 64 * 16

    total, channels = 7 * 7 * 3 * 32 + 2 * 32, 32
    for layers, transition in ((6, 64), (12, 128), (24, 256), (16, None)):
        total += sum(layer(channels + 16 * i) for i in range(layers))
        channels += 16 * layers
        if transition:
            total += 2 * channels + channels * transition
            channels = transition
    total += 2 * channels + channels * 1000 + 1000  # norm5 and the classifier
    spec = archbuilder.load_spec(SPECS / "densenet121.yaml", overrides=["scale.width=0.5"])
    assert archbuilder.summarize(spec).params == total == 2_274_728


def test_the_wider_and_deeper_relatives_are_one_override_away():
    """docs/families.md's recipes give torchvision's wide_resnet50_2 and densenet169 (metadata)."""
    wide = {}
    for stage, width in zip((1, 2, 3, 4), (128, 256, 512, 1024)):
        wide |= {f"blocks.layer{stage}_0.with.width": width, f"blocks.layer{stage}.with.width": width}
    deeper = {"blocks.denseblock3.repeat": 32, "blocks.denseblock4.repeat": 32, "blocks.transition3.out": 640}
    for spec, overrides, builder in (
        ("resnet50", wide, "wide_resnet50_2"),
        ("densenet121", deeper, "densenet169"),
    ):
        summary = archbuilder.summarize(archbuilder.load_spec(SPECS / f"{spec}.yaml", overrides=overrides))
        assert summary.params == torchvision.models.get_model_weights(builder).DEFAULT.meta["num_params"]


def test_densenet121_dense_layer_and_transition_by_hand():
    table = rows(SPECS / "densenet121.yaml")

    # pre-activation: BN over the input channels, then the conv; the second BN over 128
    def layer(cin: int) -> int:
        return 2 * cin + cin * 128 + 2 * 128 + 9 * 128 * 32

    assert table["denseblock1_1"].params == layer(64) == 45_440
    assert table["denseblock3_24"].params == layer(256 + 23 * 32)
    assert table["denseblock1_6"].out_shape == (64 + 6 * 32, 56, 56)
    assert table["denseblock3_24"].out_shape == (1024, 14, 14)
    assert table["denseblock2_1"].macs == (128 * 128 + 9 * 128 * 32) * 28 * 28
    assert table["transition1"].params == 2 * 256 + 256 * 128
    assert table["transition2"].macs == 512 * 256 * 28 * 28
    assert table["norm5"].params == 2 * 1024


# -- against torchvision's modules --------------------------------------------------------------

RESNET_TOP = {
    "conv1": ("relu", "output"),
    "maxpool": ("maxpool", "output"),
    **{
        f"layer{s}_{b}": (f"layer{s}.{b}", "output")
        for s, n in zip((1, 2, 3, 4), (3, 4, 6, 3))
        for b in range(n)
    },
    "avgpool": ("avgpool", "output"),
    "fc": ("fc", "output"),
}
# torchvision's top-level stages are the children of `features`; a dense block is one of them
# (its layers return only their new channels: the block concatenates), so it pairs with the
# last copy of the spec's repeated dense layer.
DENSENET_TOP = {
    "conv0": ("features.relu0", "output"),
    "pool0": ("features.pool0", "output"),
    **{
        f"denseblock{d}_{n}": (f"features.denseblock{d}", "output")
        for d, n in zip((1, 2, 3, 4), (6, 12, 24, 16))
    },
    **{f"transition{t}_pool": (f"features.transition{t}", "output") for t in (1, 2, 3)},
    "norm5": ("features.norm5", "output"),
    "classifier": ("classifier", "output"),
}
TOP = {"resnet50": RESNET_TOP, "densenet121": DENSENET_TOP}


@pytest.fixture(scope="module", params=["resnet50", pytest.param("densenet121", marks=pytest.mark.slow)])
def pair(request):
    """(spec name, torchvision's model with randomized batch norms, ours loaded from it, input)."""
    torch.manual_seed(0)
    reference = randomized(BUILDERS[request.param](weights=None), 64)
    ours = load_weights(archbuilder.build(SPECS / f"{request.param}.yaml"), reference).eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))  # small: a fast check
    return request.param, reference, ours, x


def test_parameters_and_state_dict_tensors_equal_torchvisions(pair):
    name, reference, ours, _ = pair
    assert sum(p.numel() for p in reference.parameters()) == TABLE[name]
    assert sum(p.numel() for p in ours.parameters()) == TABLE[name]
    assert_holds_every_tensor(reference.state_dict(), ours.state_dict())  # loaded by value


def test_eval_outputs_equal_torchvisions_after_load_weights(pair):
    _, reference, ours, x = pair
    with torch.no_grad():
        theirs, mine = reference(x), ours(x)
        optimized = optimize_for_inference(ours, input_shape=x.shape)(x)
    assert (theirs[0] - theirs[1]).abs().max() > 0.01 * theirs.abs().max()  # depends on the input
    assert relative_error(mine, theirs) <= TOLERANCE
    assert relative_error(optimized, theirs) <= TOLERANCE


def test_every_stage_has_torchvisions_shape_on_a_small_input(pair):
    name, reference, ours, x = pair
    theirs = reference_shapes(reference, x, TOP[name])
    mine = our_shapes(ours, x)
    assert {key: mine[key] for key in TOP[name]} == theirs
    if name == "densenet121":  # and every dense layer's running concat, as the next layer reads it
        running = dense_running_shapes(reference, x)
        assert len(running) == 6 + 12 + 24 + 16 - 4
        assert {key: mine[key] for key in running} == running


def dense_running_shapes(model: nn.Module, x: torch.Tensor) -> dict[str, tuple]:
    """torchvision's layer l + 1 reads the list of every earlier output: its concat is our copy l."""
    seen: dict[str, tuple] = {}

    def hook(_module, inputs, name):
        seen[name] = tuple(torch.cat(inputs[0], 1).shape[1:])

    handles = []
    for block in (1, 2, 3, 4):
        for layer_name, layer in model.features.get_submodule(f"denseblock{block}").named_children():
            number = int(layer_name.removeprefix("denselayer"))
            if number > 1:
                name = f"denseblock{block}_{number - 1}"
                handles.append(layer.register_forward_pre_hook(lambda m, i, name=name: hook(m, i, name)))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TABLE))
def test_every_stage_and_the_macs_at_224_equal_torchvisions(name):
    """At the spec's own input size: the shapes the IR infers, and MACs torch counts."""
    reference = BUILDERS[name](weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    theirs = reference_shapes(reference, x, TOP[name])
    inferred = {row.name: row.out_shape for row in archbuilder.summarize(SPECS / f"{name}.yaml").rows}
    assert {key: inferred[key] for key in TOP[name]} == theirs
    summary = archbuilder.summarize(SPECS / f"{name}.yaml")
    assert summary.macs == counted_macs(reference, x)
    gflops = torchvision.models.get_model_weights(name).DEFAULT.meta["_ops"]  # torchvision's figure
    assert round(summary.macs / 1e9, 3) == gflops  # torchvision's "GFLOPS" are MACs


# -- pre-activation convs (order: pre) ----------------------------------------------------------

PRE = """
name: pre
input: {channels: 6, height: 9, width: 9}
defaults:
  conv: {bias: false}
blocks:
  - {name: a, kind: conv, out: 8, kernel: 3, padding: 1, order: pre}
  - {name: b, kind: conv, out: 4, kernel: 1, order: pre, activation: none}
  - {name: c, kind: conv, out: 5, kernel: 3, order: pre, norm: none, activation: relu}
"""


def _randomize_norms(model: nn.Module) -> nn.Module:
    for norm in model.modules():
        if isinstance(norm, nn.BatchNorm2d):
            norm.running_mean.uniform_(-0.5, 0.5)
            norm.running_var.uniform_(0.5, 2.0)
            norm.weight.data.uniform_(0.5, 1.5)
            norm.bias.data.uniform_(-0.3, 0.3)
    return model.eval()


def test_pre_activation_conv_is_bn_relu_conv_in_torch():
    torch.manual_seed(0)
    model = _randomize_norms(archbuilder.build(archbuilder.load_spec(PRE)))
    a, b, c = model.a, model.b, model.c
    by_hand = nn.Sequential(
        nn.BatchNorm2d(6), nn.ReLU(), nn.Conv2d(6, 8, 3, padding=1, bias=False),  # a
        nn.BatchNorm2d(8), nn.Conv2d(8, 4, 1, bias=False),                         # b: no activation
        nn.ReLU(), nn.Conv2d(4, 5, 3, bias=False),                                 # c: no norm
    )  # fmt: skip
    pairs = ((a.bn, 0), (a.conv, 2), (b.bn, 3), (b.conv, 4), (c.conv, 6))
    for mine, index in pairs:
        by_hand[index].load_state_dict(mine.state_dict())
    by_hand.eval()
    x = torch.randn(2, 6, 9, 9)
    with torch.no_grad():
        assert torch.allclose(model(x), by_hand(x), atol=1e-6)
    # parameters: k·k·C_in·out + 2·C_in for the BN over the input (not 2·out)
    table = rows(archbuilder.load_spec(PRE))
    assert (table["a"].params, table["b"].params, table["c"].params) == (
        9 * 6 * 8 + 12,
        8 * 4 + 16,
        9 * 4 * 5,
    )
    assert list(model.a._modules) == ["bn", "act", "conv"]
    assert not model.c.act.inplace  # it reads the unit's input, which others may read too


@pytest.mark.parametrize("fold_bn", [True, False])
def test_optimize_for_inference_keeps_pre_activation_outputs(fold_bn):
    torch.manual_seed(1)
    model = _randomize_norms(archbuilder.build(archbuilder.load_spec(PRE)))
    x = torch.randn(3, 6, 9, 9)
    optimized = optimize_for_inference(model, fold_bn=fold_bn, fuse_activations=False, channels_last=False)
    with torch.no_grad():
        assert relative_error(optimized(x), model(x)) <= TOLERANCE
    norms = sum(isinstance(m, nn.BatchNorm2d) for m in optimized.modules())
    # a's BN is behind a ReLU, so it stays; b's (no activation, 1×1 unpadded conv) folds forward
    assert norms == (1 if fold_bn else 2)


def test_dense_block_equals_torchvisions_dense_block_and_transition():
    """A repeated concat block with an identity branch is DenseNet's dense block."""
    text = """
name: dense
input: {channels: 8, height: 12, width: 12}
defaults: {conv: {bias: false, order: pre}}
templates:
  dense_layer:
    layer:
      kind: branches
      branches:
        - name: shortcut
        - name: new
          layers:
            - {name: conv1, kind: conv, out: 16, kernel: 1}
            - {name: conv2, kind: conv, out: 4, kernel: 3, padding: 1}
blocks:
  - {name: block, kind: template, use: dense_layer, repeat: 3}
  - {name: transition, kind: conv, out: 10, kernel: 1}
  - {name: pool, kind: avgpool, kernel: 2}
"""
    torch.manual_seed(2)
    model = _randomize_norms(archbuilder.build(archbuilder.load_spec(text)))
    block = tv_densenet._DenseBlock(3, num_input_features=8, bn_size=4, growth_rate=4, drop_rate=0)
    transition = tv_densenet._Transition(20, 10)
    reference = nn.Sequential(block, transition).eval()
    ours = list(model.state_dict().values())
    theirs = reference.state_dict()
    assert len(ours) == len(theirs) > 0
    # same module order on both sides: norm1, conv1, norm2, conv2 per layer, then norm, conv
    reference.load_state_dict(dict(zip(theirs, ours)))
    x = torch.randn(2, 8, 12, 12)
    with torch.no_grad():
        assert relative_error(model(x), reference(x)) <= TOLERANCE
    assert rows(archbuilder.load_spec(text))["block_3"].out_shape == (8 + 3 * 4, 12, 12)
    optimized = optimize_for_inference(model, input_shape=x.shape)  # identity branches pass through
    with torch.no_grad():
        assert relative_error(optimized(x), reference(x)) <= TOLERANCE


def test_pre_activation_errors_are_located():
    bad_value = PRE.replace("order: pre, activation: none", "order: sideways, activation: none")
    with pytest.raises(SpecError) as raised:
        archbuilder.load_spec(bad_value)
    (problem,) = raised.value.problems
    assert problem.line == 8 and problem.path == ("blocks", 1, "order") and "'post'" in problem.message
    separable = """
name: s
input: {channels: 4, height: 8, width: 8}
defaults: {conv: {order: pre}}
blocks:
  - {name: sep, kind: separable, out: 8, kernel: 3, padding: 1}
"""
    with pytest.raises(SpecError) as raised:
        archbuilder.load_spec(separable)
    (problem,) = raised.value.problems
    assert problem.line == 6 and "order: pre" in problem.message and "conv: {order: post}" in problem.message


def test_pre_activation_is_drawn_norm_first():
    from archbuilder.render import diagram

    source = diagram(archbuilder.load_spec(PRE), detail="layers").source
    assert 'a -> "a/act"' in source and '"a/act" -> "a/conv"' in source and 'b -> "b/conv"' in source
    assert "BN · ReLU · conv 3×3 → 8" in diagram(archbuilder.load_spec(PRE)).source


def test_pre_activation_exports_to_onnx_and_torch_export(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from archbuilder.export import export_onnx, export_program

    torch.manual_seed(3)
    model = _randomize_norms(archbuilder.build(archbuilder.load_spec(PRE)))
    x = torch.randn(2, 6, 9, 9)
    with torch.no_grad():
        expected = model(x)
    session = ort.InferenceSession(
        str(export_onnx(model, tmp_path / "m.onnx")), providers=["CPUExecutionProvider"]
    )
    (actual,) = session.run(None, {"input": x.numpy()})
    assert relative_error(torch.from_numpy(actual), expected) <= TOLERANCE
    program = export_program(model)
    assert relative_error(program.module()(x), expected) <= TOLERANCE


def test_search_spaces_decide_widths_growth_and_the_conv_order():
    """A space around each spec: every candidate checked without torch, counts by hand."""
    from archbuilder.space import load_space

    resnet = load_space("extends: resnet50\nname: r\nscale: {width: {choice: [0.5, 1.0]}}\n")
    assert sorted(c.params for c in resnet.enumerate()) == [6_917_640, TABLE["resnet50"]]
    densenet = load_space(
        "extends: densenet121\nname: d\nconstraints: {max_params: 7978856}\n"
        "blocks:\n  transition1: {order: {choice: [pre, post]}}\n"
    )
    # post: transition1's batch norm follows its conv, over 128 channels instead of 256
    assert sorted(c.params for c in densenet.enumerate()) == [
        TABLE["densenet121"] - 2 * 128,
        TABLE["densenet121"],
    ]
