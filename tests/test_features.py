"""Feature taps: model.features, features_only builds and feature_info, against hooks and the paper."""

from __future__ import annotations

import pytest
import torch

import archbuilder
from archbuilder.builder import FeatureModel

from .conftest import SPECS
from .shape_check import run_with_hooks

# GoogLeNet at 96×96: the same layers and stage structure as at 224×224, cheaper to run.
SMALL_INPUT = ["input.height=96", "input.width=96"]


@pytest.fixture(scope="module")
def spec(googlenet_path):
    return archbuilder.load_spec(googlenet_path, overrides=SMALL_INPUT)


@pytest.fixture(scope="module")
def model(spec):
    torch.manual_seed(0)
    return archbuilder.build(spec).eval()


@pytest.fixture(scope="module")
def x():
    torch.manual_seed(1)
    return torch.randn(2, 3, 96, 96)


def hooked_outputs(model, x, names):
    """Outputs of the named children during one full forward pass, caught by forward hooks."""
    caught = {}
    hooks = [
        (model.get_submodule(name), lambda _m, _i, out, name=name: caught.update({name: out}))
        for name in names
    ]
    run_with_hooks(model, x, hooks)
    return caught


@pytest.mark.slow  # over 2.5 s: CI runs it; the fast subset stays under 3 minutes
def test_features_equal_forward_hook_outputs(model, x):
    at = ["4d", "conv1", "3b", "avgpool", "fc"]
    with torch.no_grad():
        features = model.features(x, at=at)
    expected = hooked_outputs(model, x, at)
    assert list(features) == at  # in the order asked
    for name in at:
        assert torch.equal(features[name], expected[name]), name
    assert torch.equal(features["fc"], model(x))


@pytest.mark.slow  # over 2.5 s: CI runs it; the fast subset stays under 3 minutes
def test_features_equal_running_the_layers_by_hand(model, x):
    body = [name for name, _ in model.named_children() if name not in ("aux1", "aux2")]
    with torch.no_grad():
        features = model.features(x, at=body)
        y = x
        for name in body:
            y = getattr(model, name)(y)
            assert torch.equal(features[name], y), name


def test_features_stop_after_the_last_tap(model, x):
    ran = []
    handles = [
        model.get_submodule(name).register_forward_hook(lambda *_, name=name: ran.append(name))
        for name in ("4a", "4b", "fc", "aux1")
    ]
    try:
        with torch.no_grad():
            model.features(x, at="4a")
    finally:
        for handle in handles:
            handle.remove()
    assert ran == ["4a"]


@pytest.mark.slow  # over 2.5 s: CI runs it; the fast subset stays under 3 minutes
def test_features_in_training_mode_skip_aux_heads_and_carry_gradients(spec, x):
    model = archbuilder.build(spec).train()
    features = model.features(x, at=["4e"])
    assert isinstance(features["4e"], torch.Tensor)
    features["4e"].mean().backward()
    assert model.conv1.conv.weight.grad is not None
    assert model.fc.weight.grad is None and model.aux1.fc2.weight.grad is None


def test_unknown_tap_names_are_clear_errors(model, x):
    with pytest.raises(ValueError, match=r"no top-level entry named 'conv3' \(did you mean 'conv2'\?\)"):
        model.features(x, at=["conv1", "conv3"])
    with pytest.raises(ValueError, match="no top-level entry named 'aux1'"):
        model.features(x, at=["aux1"])  # aux heads are not on the main path
    with pytest.raises(ValueError, match="requested twice: 3a"):
        model.features(x, at=["3a", "3a"])
    with pytest.raises(ValueError, match="no feature maps requested"):
        model.features(x, at=[])


def test_repeated_layer_names_point_to_their_copies():
    spec = archbuilder.load_spec(
        """
name: rep
input: {channels: 1, height: 8, width: 8}
num_classes: 3
blocks: [{name: conv, kind: conv, out: 4, kernel: 3, padding: 1, repeat: 3}]
head: [{kind: global_avgpool}, {kind: flatten}, {kind: linear, out: num_classes}]
"""
    )
    model = archbuilder.build(spec)
    with pytest.raises(
        ValueError, match="'conv' is a repeated layer; name one of its copies: conv_1, conv_2, conv_3"
    ):
        model.features(torch.zeros(1, 1, 8, 8), at=["conv"])
    assert model.features(torch.zeros(1, 1, 8, 8), at=["conv_2"])["conv_2"].shape == (1, 4, 8, 8)


def test_feature_info_of_googlenet_matches_the_paper(googlenet_path):
    # Table 1 of Szegedy et al.: the output of each resolution before the head.
    info = archbuilder.feature_info(googlenet_path)
    assert info.names() == ["conv1", "conv2", "3b", "4e", "5b"]
    assert info.channels() == [64, 192, 480, 832, 1024]
    assert info.reductions() == [2, 4, 8, 16, 32]
    assert [feature.shape for feature in info] == [
        (64, 112, 112),
        (192, 56, 56),
        (480, 28, 28),
        (832, 14, 14),
        (1024, 7, 7),
    ]


@pytest.mark.slow  # over 2.5 s: CI runs it; the fast subset stays under 3 minutes
def test_features_only_model_returns_the_maps_feature_info_describes(spec, model, x):
    torch.manual_seed(2)
    backbone = archbuilder.build(spec, features_only=True).eval()
    assert isinstance(backbone, FeatureModel)
    assert backbone.feature_info.names() == ["conv1", "conv2", "3b", "4e", "5b"]
    backbone.load_state_dict({k: v for k, v in model.state_dict().items() if k in backbone.state_dict()})
    with torch.no_grad():
        maps = backbone(x)
    expected = hooked_outputs(model, x, backbone.feature_info.names())
    assert len(maps) == 5
    for feature, tensor in zip(backbone.feature_info, maps):
        assert tensor.shape == (2, *feature.shape)
        assert 96 / tensor.shape[-1] == feature.reduction
        assert torch.equal(tensor, expected[feature.name])


def test_features_only_weights_equal_the_full_models_under_one_seed(spec):
    # Both are initialized in module order, and a backbone's modules begin the full model's.
    torch.manual_seed(4)
    full = archbuilder.build(spec).state_dict()
    torch.manual_seed(4)
    backbone = archbuilder.build(spec, features_only=True, out_names=["4e"]).state_dict()
    assert all(torch.equal(tensor, full[key]) for key, tensor in backbone.items())


def test_features_only_parameters_are_a_subset_with_the_same_names(spec, model):
    backbone = archbuilder.build(spec, features_only=True, out_names=["4a", "3a"])
    full = model.state_dict()
    keys = backbone.state_dict().keys()
    assert set(keys) < set(full)
    assert {key.split(".")[0] for key in keys} == {"conv1", "conv2_reduce", "conv2", "3a", "3b", "4a"}
    assert all(backbone.state_dict()[k].shape == full[k].shape for k in keys)
    assert [name for name, _ in backbone.named_children()][-1] == "4a"  # nothing after the last map
    assert backbone.feature_info.names() == ["4a", "3a"]  # in the order asked
    summary = {row.name: row.params for row in archbuilder.summarize(spec).rows}
    kept = ("conv1", "conv2_reduce", "conv2", "3a", "3b", "4a")
    assert sum(p.numel() for p in backbone.parameters()) == sum(summary[name] for name in kept)


def test_out_indices_pick_stages(spec):
    assert archbuilder.feature_info(spec, out_indices=[1, -1]).names() == ["conv2", "5b"]
    backbone = archbuilder.build(spec, features_only=True, out_indices=(2, 3))
    assert backbone.feature_info.channels() == [480, 832]
    assert [t.shape[1] for t in backbone.eval()(torch.zeros(1, 3, 96, 96))] == [480, 832]


def test_features_only_errors(spec):
    with pytest.raises(ValueError, match="out_names or out_indices, not both"):
        archbuilder.build(spec, features_only=True, out_names=["3a"], out_indices=[0])
    with pytest.raises(ValueError, match="not an index of the 5 stages"):
        archbuilder.feature_info(spec, out_indices=[5])
    with pytest.raises(ValueError, match="'fc' is in the head"):
        archbuilder.feature_info(spec, out_names=["fc"])
    with pytest.raises(ValueError, match="did you mean '4a'"):
        archbuilder.feature_info(spec, out_names=["4a_"])
    with pytest.raises(ValueError, match="features_only=True"):
        archbuilder.build(spec, out_names=["3a"])


def test_features_only_size_limit_counts_the_kept_layers_only(googlenet_path):
    limit = 100_000  # bytes: conv1 (9,600 float32 parameters) fits, GoogLeNet does not
    backbone = archbuilder.build(
        googlenet_path, features_only=True, out_names=["conv1"], max_param_bytes=limit
    )
    assert sum(p.numel() for p in backbone.parameters()) == 9_600
    with pytest.raises(archbuilder.SpecError, match="over the limit"):
        archbuilder.build(googlenet_path, max_param_bytes=limit)


@pytest.mark.slow  # over 2.5 s: CI runs it; the fast subset stays under 3 minutes
def test_backbones_trace_and_export(spec, model, x):
    backbone = archbuilder.build(spec, features_only=True).eval()
    traced = torch.fx.symbolic_trace(backbone)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(traced(x), backbone(x)))
    small = archbuilder.build(SPECS / "inception-digits.yaml", features_only=True).eval()
    images = torch.randn(2, 1, 8, 8)
    program = torch.export.export(small, (images,))
    with torch.no_grad():
        assert all(torch.allclose(a, b) for a, b in zip(program.module()(images), small(images)))


@pytest.mark.slow  # over 2.5 s: CI runs it; the fast subset stays under 3 minutes
@pytest.mark.filterwarnings("ignore:NOTE. The nodes obtained by tracing")
def test_torchvision_feature_extraction_uses_the_same_names(model, x):
    from torchvision.models.feature_extraction import create_feature_extractor

    extractor = create_feature_extractor(model, return_nodes=["4a", "4d"])
    with torch.no_grad():
        extracted, tapped = extractor(x), model.features(x, at=["4a", "4d"])
    assert all(torch.equal(extracted[name], tapped[name]) for name in ("4a", "4d"))


@pytest.mark.parametrize(
    ("spec_name", "timm_name"),
    [
        ("inception-v3.yaml", "inception_v3"),
        ("xception.yaml", "legacy_xception"),
        ("inception-next-tiny.yaml", "inception_next_tiny"),
        ("inception-v4.yaml", "inception_v4"),
        ("inception-resnet-v2.yaml", "inception_resnet_v2"),
    ],
)
def test_default_stages_have_timms_channels_and_reductions(spec_name, timm_name):
    timm = pytest.importorskip("timm")
    with torch.device("meta"):  # only feature_info is read: no memory, no initialization
        reference = timm.create_model(timm_name, pretrained=False, features_only=True)
    info = archbuilder.feature_info(SPECS / spec_name)
    assert info.channels() == reference.feature_info.channels()
    assert info.reductions() == reference.feature_info.reduction()
    assert all(isinstance(reduction, int) for reduction in info.reductions())


def test_inception_v3_stages_are_timms_modules_at_nominal_strides():
    # Its unpadded convs shrink maps by a pixel or two (299 → 149 → 147 …): the reduction is
    # the product of the strides, not the size ratio (2.007, 2.034, …).
    info = archbuilder.feature_info(SPECS / "inception-v3.yaml")
    assert info.names() == ["Conv2d_2b_3x3", "Conv2d_4a_3x3", "Mixed_5d", "Mixed_6e", "Mixed_7c"]
    assert [feature.shape[1] for feature in info] == [147, 71, 35, 17, 8]
    assert info.reductions() == [2, 4, 8, 16, 32]


def test_a_norm_before_a_downsampling_conv_opens_the_next_stage():
    spec = archbuilder.load_spec(
        """
name: convnext-like
input: {channels: 3, height: 32, width: 32}
stem: [{name: stem, kind: conv, out: 8, kernel: 4, stride: 4}]
blocks:
  - {name: block1, kind: conv, out: 8, kernel: 3, padding: 1}
  - {name: down_norm, kind: layernorm}
  - {name: down, kind: conv, out: 16, kernel: 2, stride: 2}
  - {name: block2, kind: conv, out: 16, kernel: 3, padding: 1}
"""
    )
    info = archbuilder.feature_info(spec)
    assert info.names() == ["block1", "block2"] and info.reductions() == [4, 8]
    assert archbuilder.feature_info(spec, out_names=["down_norm"]).reductions() == [4]


def test_the_stage_table_in_the_docs_is_what_feature_info_gives():
    import re

    page = (SPECS.parent / "docs" / "experiments.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| ((?:\d+ @ \d+(?:, )?)+) \|$", page, re.MULTILINE)
    assert len(rows) == 4
    for name, maps in rows:
        info = archbuilder.feature_info(SPECS / f"{name}.yaml")
        assert maps == ", ".join(f"{c} @ {r}" for c, r in zip(info.channels(), info.reductions())), name


FEATURE_MAPS_SPEC = """name: declared
input: {channels: 3, height: 32, width: 32}
num_classes: 3
stem: [{name: stem, kind: conv, out: 8, kernel: 3, stride: 2, padding: 1}]
blocks:
  - {name: a, kind: conv, out: 8, kernel: 3, stride: 2, padding: 1}
  - {name: b, kind: conv, out: 16, kernel: 3, padding: 1, repeat: 2}
head: [{name: pool, kind: global_avgpool}, {name: flat, kind: flatten}, {name: fc, kind: linear, out: num_classes}]
"""


def test_declared_feature_maps_are_the_stages():
    # timm lists each model's stage modules by hand (inception_v4's r4 map is its first block
    # at that stride, Mixed_3a, not the last); a spec can say so too.
    spec = archbuilder.load_spec(FEATURE_MAPS_SPEC + "feature_maps: [stem, a]\n")
    assert archbuilder.feature_info(spec).names() == ["stem", "a"]
    assert archbuilder.feature_info(FEATURE_MAPS_SPEC).names() == ["stem", "b_2"]  # the default rule
    repeated = archbuilder.load_spec(FEATURE_MAPS_SPEC + "feature_maps: [a, b]\n")  # b: its last copy
    backbone = archbuilder.build(repeated, features_only=True, out_indices=[-1]).eval()
    assert backbone.feature_info.names() == ["b_2"] and backbone.feature_info.reductions() == [4]
    assert [m.shape for m in backbone(torch.zeros(1, 3, 32, 32))] == [(1, 16, 8, 8)]


def test_bad_feature_maps_are_located():
    with pytest.raises(archbuilder.SpecError) as caught:
        archbuilder.load_spec(FEATURE_MAPS_SPEC + "feature_maps: [stem, aa, b, b_2, fc]\n")
    problems = [(p.line, ".".join(map(str, p.path)), p.message) for p in caught.value.problems]
    assert problems == [
        (9, "feature_maps.1", "'aa' names no stem layer or block (did you mean 'a'?)"),
        (9, "feature_maps.3", "'b_2' is listed twice"),
        (9, "feature_maps.4", "'fc' names no stem layer or block"),
    ]
