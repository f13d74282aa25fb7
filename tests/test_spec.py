"""The spec language: loading, round trips, immutability, defaults and naming."""

from __future__ import annotations

import pydantic
import pytest

import archbuilder
from archbuilder.spec import ArchSpec

from .conftest import SPECS

SMALL = """
name: small
input: {channels: 3, height: 16, width: 16}
num_classes: 4
defaults:
  conv: {norm: none, activation: relu}
stem:
  - {kind: conv, out: 8, kernel: 3, padding: 1}
  - {kind: conv, out: 8, kernel: 3, padding: 1, norm: batch}
  - {kind: maxpool, kernel: 2}
blocks:
  - name: mix
    kind: branches
    conv: {activation: none}
    branches:
      - {name: left, layers: [{kind: conv, out: 4, kernel: 1}]}
      - layers: [{kind: conv, out: 4, kernel: 1, activation: silu, bias: false}]
head:
  - {kind: global_avgpool}
  - {kind: flatten}
  - {kind: linear, out: num_classes}
"""


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.yaml")), ids=lambda p: p.name)
def test_round_trip_is_stable(path):
    spec = archbuilder.load_spec(path)
    text = spec.to_yaml()
    again = archbuilder.load_spec(text)
    assert again == spec
    assert again.to_yaml() == text


def test_round_trip_keeps_every_written_value():
    spec = archbuilder.load_spec(SMALL)
    assert archbuilder.load_spec(spec.to_yaml()).to_dict() == spec.to_dict()
    assert spec.to_dict()["blocks"][0]["branches"][1]["layers"][0]["activation"] == "silu"


def test_spec_is_frozen():
    spec = archbuilder.load_spec(SMALL)
    with pytest.raises(pydantic.ValidationError):
        spec.num_classes = 3
    with pytest.raises(pydantic.ValidationError):
        spec.stem[0].out = 3


def test_load_accepts_path_str_and_text(googlenet_path):
    assert archbuilder.load_spec(googlenet_path) == archbuilder.load_spec(str(googlenet_path))
    assert archbuilder.load_spec(googlenet_path.read_text()) == archbuilder.load_spec(googlenet_path)
    assert archbuilder.load_spec(googlenet_path).source.file == str(googlenet_path)


def test_conv_settings_inherit_layer_then_block_then_defaults():
    ir = archbuilder.lower(archbuilder.load_spec(SMALL))
    stem1, stem2 = ir.op("conv1").attrs, ir.op("conv2").attrs
    assert (stem1["norm"], stem1["activation"], stem1["bias"]) == ("none", "relu", True)
    assert (stem2["norm"], stem2["bias"]) == ("batch", False)  # bias follows norm unless set
    left, right = ir.op("mix.left.conv1").attrs, ir.op("mix.branch2.conv1").attrs
    assert (left["activation"], left["bias"]) == ("none", True)  # block's conv settings
    assert (right["activation"], right["bias"]) == ("silu", False)  # the layer's own


def test_built_in_conv_defaults():
    text = SMALL.replace("defaults:\n  conv: {norm: none, activation: relu}\n", "")
    attrs = archbuilder.lower(archbuilder.load_spec(text)).op("conv1").attrs
    assert (attrs["norm"], attrs["activation"], attrs["bias"], attrs["bn_eps"]) == (
        "batch",
        "relu",
        False,
        1e-5,
    )


def test_unnamed_layers_get_kind_numbered_names():
    ir = archbuilder.lower(archbuilder.load_spec(SMALL))
    assert [entry.name for entry in ir.top_level] == [
        "conv1",
        "conv2",
        "maxpool1",
        "mix",
        "global_avgpool1",
        "flatten1",
        "linear1",
    ]


def test_auto_names_never_take_an_explicit_name():
    text = SMALL.replace("- {kind: maxpool, kernel: 2}", "- {kind: maxpool, kernel: 2, name: conv1}")
    names = [entry.name for entry in archbuilder.lower(archbuilder.load_spec(text)).top_level]
    assert names[:3] == ["conv2", "conv3", "conv1"]


def test_num_classes_reference_resolves():
    ir = archbuilder.lower(archbuilder.load_spec(SMALL))
    assert ir.op("linear1").shape == (4,)


def test_ir_records_blocks_and_branches():
    ir = archbuilder.lower(archbuilder.load_spec(SMALL))
    block = ir.body.items[3]
    assert block.kind == "branches" and [name for name, _ in block.branches] == ["left", "branch2"]
    assert ir.op(block.merge).attrs["inputs"] == ("mix.left.conv1", "mix.branch2.conv1")
    assert sorted(ir.graph.predecessors("mix.concat")) == ["mix.branch2.conv1", "mix.left.conv1"]
    assert all(ir.op(op_id).item == "mix" for op_id in ir.top_level[3].ops)


def test_spec_can_be_written_in_python():
    spec = ArchSpec.model_validate(
        {
            "name": "py",
            "input": {"channels": 1, "height": 8, "width": 8},
            "blocks": [{"kind": "inception", "ch1x1": 2, "ch3x3": 3, "ch5x5": 4}],
        }
    )
    # Naive module: convs read the block input, the pool branch passes its 1 channel through.
    assert archbuilder.lower(spec).op("inception1.concat").shape == (2 + 3 + 4 + 1, 8, 8)
