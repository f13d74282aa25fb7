"""Weight layouts as data: the rename-rule engine, layout files and their errors, finding a
layout from the model's spec, a user's own layout file, and timm's legacy_xception."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import archbuilder
from archbuilder.core.errors import SpecError
from archbuilder.interop import InteropError, load_layout, load_weights, shipped_layouts
from archbuilder.interop.layout import Layout
from archbuilder.interop.rules import Renamer, Rule, RuleError

from .conftest import SPECS
from .test_interop import TOLERANCE, randomized, relative_error


def renamer(*passes: list[tuple[str, str]], **fields: str) -> Renamer:
    return Renamer([[Rule.compile(a, b, fields) for a, b in rules] for rules in passes])


def test_a_rule_renames_the_module_and_keeps_what_is_below():
    rules = renamer([("inception{block}.branch1", "{block}.branch1x1.conv")], block=r"\d[a-z]")
    assert rules.to_model("inception3a.branch1.bn.weight") == "3a.branch1x1.conv.bn.weight"
    assert rules.to_source("3a.branch1x1.conv.bn.weight") == "inception3a.branch1.bn.weight"
    assert rules.to_model("inception3a.branch10.bn.weight") is None  # a whole module name, not a prefix
    assert rules.to_model("fc.weight") is None


def test_offsets_shift_numbers_both_ways():
    rules = renamer([("repeat.{n}", "block35_{n+1}"), ("block{m}", "middle_{m-3}")], n=r"\d+", m="[4-9]")
    assert rules.to_model("repeat.0.conv2d.weight") == "block35_1.conv2d.weight"
    assert rules.to_model("repeat.9.conv2d.bias") == "block35_10.conv2d.bias"
    assert rules.to_source("block35_10.conv2d.bias") == "repeat.9.conv2d.bias"
    assert rules.to_model("block4.rep.1.weight") == "middle_1.rep.1.weight"
    assert rules.to_model("block3.rep.1.weight") is None  # the field's pattern limits the range


def test_passes_run_in_order_and_backwards_is_checked_forwards():
    rules = renamer(
        [("features.6", "Mixed_5b")],
        [("{block}.branch{i}.conv", "{block}.branch{i}.0.conv")],
        block=r"Mixed_\d[a-z]",
        i=r"\d",
    )
    assert rules.to_model("features.6.branch0.conv.weight") == "Mixed_5b.branch0.0.conv.weight"
    assert (
        rules.to_model("features.6.branch1.0.conv.weight") == "Mixed_5b.branch1.0.conv.weight"
    )  # pass 2 skips it
    # Both reference names map there; backwards finds one that does.
    source = rules.to_source("Mixed_5b.branch1.0.conv.weight")
    assert rules.to_model(source) == "Mixed_5b.branch1.0.conv.weight"
    assert rules.to_source("Mixed_9z.branch0.0.conv.weight") == "Mixed_9z.branch0.conv.weight"  # pass 2 alone
    assert rules.to_source("fc.weight") is None


def test_malformed_rules_are_refused():
    with pytest.raises(RuleError, match=r"unknown field \{block\}"):
        Rule.compile("inception{block}", "{block}", {})
    with pytest.raises(RuleError, match="same fields"):
        Rule.compile("a{x}", "b", {"x": "1"})


def test_a_bad_layout_file_gets_located_problems(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "reference: my net\nlibrary: mine\nspec: s\nfields: {x: '(a)'}\npasses:\n"
        "  - rules:\n      - [a, b]\n      - ['c{y}', 'd{y}']\n"
        "colour: red\n"
    )
    with pytest.raises(SpecError) as caught:
        load_layout(path)
    message = str(caught.value)
    assert f"{path}:4:" in message and "capturing groups" in message
    assert f"{path}:9:1: colour:" in message
    path.write_text(
        "reference: my net\nlibrary: mine\nspec: s\npasses:\n  - rules:\n      - [a, b]\n      - ['c{y}', 'd{y}']\n"
    )
    with pytest.raises(SpecError, match=rf"{path}:7:\d+: passes.0.rules.1: .*unknown field \{{y\}}"):
        load_layout(path)
    with pytest.raises(
        ValueError, match=r"no shipped weight layout 'timm-inception-v5'; shipped: .*timm-inception-v4"
    ):
        load_layout("timm-inception-v5")


def test_every_shipped_layout_loads_and_names_a_shipped_spec():
    names = shipped_layouts()
    assert {"torchvision-googlenet", "torchvision-inception-v3", "timm-legacy-xception"} <= set(names)
    assert {"pretrainedmodels-bninception", "timm-inception-v4", "timm-inception-resnet-v2"} <= set(names)
    for name in names:
        layout = load_layout(name)
        assert layout.name == name
        assert archbuilder.load_spec(SPECS.parent / layout.shipped_spec).name == layout.spec


class Tiny(nn.Module):
    """A reference written here, with its own names: conv → bn → relu → pool → classifier."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(8)
        self.classifier = nn.Linear(8, 5)

    def forward(self, x):
        x = torch.relu(self.stem_bn(self.stem(x)))
        return self.classifier(x.mean((2, 3)))


TINY_SPEC = """
name: tiny
input: {channels: 3, height: 8, width: 8}
num_classes: 5
blocks: [{name: conv, kind: conv, out: 8, kernel: 3, padding: 1, bias: false}]
head: [{name: pool, kind: global_avgpool}, {name: flatten, kind: flatten}, {name: fc, kind: linear, out: num_classes}]
"""
TINY_LAYOUT = """
reference: hand-written Tiny
library: the test
spec: tiny
classifier: [classifier]
passes:
  - rules:
      - [stem_bn, conv.bn]
      - [stem, conv.conv]
      - [classifier, fc]
"""


def test_a_users_layout_file_loads_a_users_reference(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_LAYOUT)
    torch.manual_seed(0)
    reference = randomized(Tiny(), 8)
    model = load_weights(archbuilder.build(TINY_SPEC), reference, path).eval()
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        assert relative_error(model(x), reference(x)) <= TOLERANCE
    with pytest.raises(InteropError, match=r"build it with num_classes=5") as caught:
        load_weights(archbuilder.build(TINY_SPEC, num_classes=3), reference, path)
    assert caught.value.layout.reference == "hand-written Tiny"
    assert "the hand-written Tiny does not fit the model" in str(caught.value)


def test_the_layout_is_found_from_the_models_spec():
    with pytest.raises(ValueError, match=r"no shipped weight layout fits spec 'tiny'; pass layout="):
        load_weights(archbuilder.build(TINY_SPEC), Tiny())
    with pytest.raises(ValueError, match=r"not built by archbuilder.build"):
        load_weights(nn.Linear(2, 2), Tiny())
    layout = load_layout("timm-inception-v4")
    assert isinstance(layout, Layout) and layout.spec == "inception-v4"


@pytest.mark.slow
def test_timm_legacy_xception_loads_into_specs_xception():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    reference = randomized(timm.create_model("legacy_xception"), 299)
    keras_eps = archbuilder.build(SPECS / "xception.yaml")  # Keras' batch-norm eps 0.001, timm's 1e-5
    with pytest.raises(InteropError, match=r"build from the spec with defaults.conv.bn_eps: 1e-05") as caught:
        load_weights(keras_eps, reference)
    assert len(caught.value.mismatched) == 40 and not caught.value.missing and not caught.value.unexpected
    spec = archbuilder.load_spec(SPECS / "xception.yaml", overrides={"defaults.conv.bn_eps": 1e-5})
    model = load_weights(archbuilder.build(spec), reference).eval()
    assert (
        sum(p.numel() for p in model.parameters())
        == sum(p.numel() for p in reference.parameters())
        == 22_855_952
    )
    x = torch.randn(2, 3, 299, 299, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        theirs = reference(x)
        assert relative_error(model(x), theirs) <= TOLERANCE
    assert (theirs[0] - theirs[1]).abs().max() > 0.01 * theirs.abs().max()


def test_the_documented_layout_example_loads_and_maps(tmp_path):
    doc = (SPECS.parent / "docs" / "python-api.md").read_text(encoding="utf-8")
    section = doc[doc.index("### Weight layouts") :]
    example = section[
        section.index("```yaml\n") + len("```yaml\n") : section.index("```\n", section.index("```yaml"))
    ]
    path = tmp_path / "example.yaml"
    path.write_text(example)
    rules = load_layout(path).renamer()
    assert rules.to_model("repeat.0.conv2d.weight") == "block35_1.residual.conv2d.conv.weight"
    assert rules.to_model("repeat.3.branch1.0.bn.bias") == "block35_4.residual.mixed.branch1.0.bn.bias"


def test_the_old_rule_constants_read_the_layout_files():
    from archbuilder import interop

    assert ("conv2", "conv2_reduce") in interop.GOOGLENET_RULES  # torchvision's conv2 is the 1×1 reduction
    assert ("fc", "fc") in interop.INCEPTION_V3_RULES
    with pytest.raises(AttributeError):
        interop.NO_SUCH_RULES  # noqa: B018
