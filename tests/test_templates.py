"""Block templates: expansion, parameters, composition with extends/overrides, and their errors."""

from __future__ import annotations

import pytest

import archbuilder
from archbuilder.core.errors import SpecError
from archbuilder.spec import ArchSpec

SPEC = """\
name: t
input: {channels: 8, height: 16, width: 16}
num_classes: 10
templates:
  mix:
    params: [proj]
    defaults: {red: 4}
    layer:
      kind: branches
      branches:
        - name: one
          layers: [{name: conv, kind: conv, out: 8, kernel: 1}]
        - name: three
          layers:
            - {name: reduce, kind: conv, out: $red, kernel: 1}
            - {name: conv, kind: conv, out: 8, kernel: [1, 3], padding: [0, 1]}
        - name: pool
          layers:
            - {kind: avgpool, kernel: 3, stride: 1, padding: 1}
            - {name: proj, kind: conv, out: $proj, kernel: 1}
blocks:
  - {name: a, kind: template, use: mix, with: {proj: 4}}
  - {name: b, kind: template, use: mix, with: {proj: 16, red: 2}, repeat: 2}
head:
  - {kind: global_avgpool}
  - {kind: flatten}
  - {name: fc, kind: linear, out: num_classes}
"""


def problems(text: str, **options) -> list[str]:
    with pytest.raises(SpecError) as caught:
        archbuilder.load_spec(text, **options)
    return [str(problem) for problem in caught.value.problems]


def shapes(spec: ArchSpec) -> dict[str, tuple[int, ...]]:
    return {row.name: row.out_shape for row in archbuilder.summarize(spec).rows}


def test_uses_expand_with_their_parameters():
    spec = archbuilder.load_spec(SPEC)
    assert shapes(spec)["a"] == (8 + 8 + 4, 16, 16)
    assert shapes(spec)["b_1"] == shapes(spec)["b_2"] == (8 + 8 + 16, 16, 16)
    ir = archbuilder.lower(spec)
    assert ir.op("a.three.reduce").attrs["out_channels"] == 4  # the default
    assert ir.op("b_1.three.reduce").attrs["out_channels"] == 2  # given
    assert ir.op("b_1.three.conv").attrs["kernel"] == (1, 3)
    # a by hand: 1×1 8→8, 1×1 8→4, 1×3 4→8, 1×1 8→4, each with batch norm and no bias
    assert archbuilder.summarize(spec).rows[0].params == (64 + 16) + (32 + 8) + (96 + 16) + (32 + 8)


def test_a_loaded_spec_holds_the_expansion_and_round_trips():
    spec = archbuilder.load_spec(SPEC)
    assert [layer.kind for layer in spec.blocks] == ["branches", "branches"]
    assert spec.blocks[1].name == "b" and spec.blocks[1].repeat == 2
    assert set(spec.templates) == {"mix"} and spec.templates["mix"].params == ["proj"]
    again = archbuilder.load_spec(spec.to_yaml())
    assert again == spec
    model = archbuilder.build(spec)
    assert "b_2.pool.proj.conv.weight" in model.state_dict()


def test_model_validate_expands_too():
    import yaml

    data = yaml.safe_load(SPEC)
    assert ArchSpec.model_validate(data) == archbuilder.load_spec(SPEC)
    data["blocks"][0]["with"] = {}
    with pytest.raises(ValueError, match=r"template 'mix' needs parameter proj under with"):
        ArchSpec.model_validate(data)


def test_overrides_reach_uses_and_templates():
    spec = archbuilder.load_spec(SPEC, overrides=["blocks.a.with.proj=12"])
    assert shapes(spec)["a"] == (8 + 8 + 12, 16, 16)
    spec = archbuilder.load_spec(SPEC, overrides=["templates.mix.layer.branches.one.layers.conv.out=2"])
    assert shapes(spec)["a"][0] == 2 + 8 + 4 and shapes(spec)["b_2"][0] == 2 + 8 + 16


def test_extends_can_patch_a_base_template(tmp_path):
    (tmp_path / "base.yaml").write_text(SPEC)
    (tmp_path / "child.yaml").write_text("extends: base.yaml\ntemplates: {mix: {defaults: {red: 6}}}\n")
    spec = archbuilder.load_spec(tmp_path / "child.yaml")
    assert archbuilder.lower(spec).op("a.three.reduce").attrs["out_channels"] == 6


def test_nested_uses_and_parameters_passed_through():
    text = SPEC.replace(
        "blocks:\n",
        "  pair:\n"
        "    params: [p]\n"
        "    layer:\n"
        "      kind: branches\n"
        "      branches:\n"
        "        - layers: [{kind: template, use: mix, with: {proj: $p}}]\n"
        "        - layers: [{kind: conv, out: $p, kernel: 1}]\n"
        "blocks:\n",
    ).replace(
        "  - {name: a, kind: template, use: mix, with: {proj: 4}}",
        "  - {name: a, kind: template, use: pair, with: {p: 5}}",
    )
    spec = archbuilder.load_spec(text)
    assert shapes(spec)["a"] == ((8 + 8 + 5) + 5, 16, 16)


def test_the_spec_with_templates_renders_and_scales():
    spec = archbuilder.load_spec(SPEC, overrides=["scale.width=2", "scale.divisor=4"])
    assert shapes(spec)["a"] == (16 + 16 + 8, 16, 16)
    dot = archbuilder.diagram(spec, unroll=True).source
    assert "cluster_b_2" in dot and "cluster_b_2.three" not in dot
    # drawn by default as one block standing for its two equal copies
    rolled = archbuilder.diagram(spec).source
    assert "b ×2 · Inception" in rolled and "b_1 … b_2" in rolled and "cluster_b_2" not in rolled


def test_use_errors_are_located_and_listed_together():
    text = SPEC.replace("use: mix, with: {proj: 4}", "use: mixx").replace(
        "with: {proj: 16, red: 2}", "with: {reed: 2}"
    )
    found = problems(text)
    assert found == [
        "<spec>:22:31: blocks.0.use: unknown template 'mixx' (did you mean 'mix'?); templates: mix",
        "<spec>:23:5: blocks.1: template 'mix' needs parameter proj under with:",
        "<spec>:23:48: blocks.1.with.reed: unknown parameter 'reed' (did you mean 'red'?); template 'mix' has: proj, red",
    ]


def test_missing_parameters_are_named_at_once():
    text = SPEC.replace("params: [proj]", "params: [proj, width, kernel]").replace(
        "out: 8, kernel: 1}]", "out: $width, kernel: $kernel}]"
    )
    assert "template 'mix' needs parameters width, kernel under with:" in problems(text)[0]


def test_template_definition_errors():
    text = SPEC.replace("out: $proj", "out: $prj").replace("params: [proj]", "params: [proj, spare]")
    assert problems(text) == [
        "<spec>:6:14: templates.mix.params.0: parameter 'proj' is never used: write $proj in the template's layer",
        "<spec>:6:20: templates.mix.params.1: parameter 'spare' is never used: write $spare in the template's layer",
        "<spec>:20:40: templates.mix.layer.branches.2.layers.1.out: unknown parameter '$prj' (did you mean "
        "'proj'?); template 'mix' has: proj, spare, red",
    ]


def test_a_mistake_inside_a_template_is_reported_once_at_the_template():
    found = problems(SPEC.replace("kind: avgpool, kernel: 3", "kind: avgpool, kernal: 3"))
    assert [line for line in found if "kernal" in line] == [
        "<spec>:19:31: templates.mix.layer.branches.2.layers.0.kernal: unknown key 'kernal' (did you mean "
        "'kernel'?); allowed keys: name, repeat, kernel, stride, padding, ceil_mode, count_include_pad "
        "(in the uses at blocks.0, blocks.1)"
    ]


def test_a_bad_value_given_by_a_use_points_at_the_use():
    found = problems(SPEC.replace("with: {proj: 4}", "with: {proj: 0}"))
    assert len(found) == 1 and found[0].startswith(
        "<spec>:22:48: templates.mix.layer.branches.2.layers.1.out: "
    )
    assert found[0].endswith("(in the use at blocks.0)")


def test_shape_errors_name_each_use():
    found = problems(
        SPEC.replace("kernel: [1, 3], padding: [0, 1]", "kernel: [1, 3], padding: [0, 1], groups: 3")
    )
    assert len(found) == 3  # a, b_1, b_2: each use has its own input
    assert all("templates.mix.layer.branches.1.layers.1:" in line for line in found)
    assert "b_2.three.conv: groups=3 must divide" in found[2]


def test_a_use_takes_only_its_own_keys():
    found = problems(SPEC.replace("with: {proj: 4}}", "with: {proj: 4}, kernel: 3}"))
    assert found == [
        "<spec>:22:58: blocks.0.kernel: unknown key 'kernel'; allowed keys: name, repeat, use, with",
    ]


def test_a_cycle_is_an_error():
    text = (
        "name: t\ninput: {channels: 3, height: 8, width: 8}\n"
        "templates:\n  a: {layer: {kind: template, use: b}}\n  b: {layer: {kind: template, use: a}}\n"
        "blocks:\n  - {kind: template, use: a}\n"
    )
    # located where the cycle closes: template b's use of a
    assert problems(text) == ["<spec>:5:31: blocks.0.use: template 'a' uses itself: a → b → a"]


def test_expansion_is_bounded():
    wide = ", ".join(["{kind: template, use: t1}"] * 40)
    text = (
        "name: t\ninput: {channels: 3, height: 8, width: 8}\ntemplates:\n"
        "  t0: {layer: {kind: conv, out: 3, kernel: 1}}\n"
        + "".join(
            f"  t{level}: {{layer: {{kind: branches, branches: [{{layers: [{wide.replace('t1', f't{level - 1}')}]}}]}}}}\n"
            for level in range(1, 5)
        )
        + "blocks:\n  - {kind: template, use: t4}\n"
    )
    assert any("templates expand to more than 200,000 values" in line for line in problems(text))
