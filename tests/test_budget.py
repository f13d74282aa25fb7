"""The op budget: work is bounded by what a spec expands to, counted before expanding it.

The independent truth for the count is the lowering itself: for every shipped spec,
``count_ops`` (which never expands a repeat) must equal the number of ops in the IR.
"""

from __future__ import annotations

import time

import pytest

import archbuilder
from archbuilder.cli.main import main
from archbuilder.core.errors import SpecError
from archbuilder.spec.budget import DEFAULT_MAX_OPS, count_ops
from archbuilder.spec.source import parse_yaml

from .conftest import ROOT, SPECS

HEAD = "name: x\ninput: {channels: 3, height: 8, width: 8}\n"
SHIPPED = sorted((ROOT / "specs").glob("*.yaml"))


def nested(levels: int, repeat: int) -> str:
    """``levels`` branches blocks, each ``repeat`` times, around a conv repeated ``repeat`` times."""
    layer = f"{{kind: conv, out: 3, kernel: 1, repeat: {repeat}}}"
    for _ in range(levels):
        layer = f"{{kind: branches, merge: add, repeat: {repeat}, branches: [{{layers: [{layer}]}}]}}"
    return HEAD + f"blocks: [{layer}]\n"


def refused(text: str, **kwargs) -> SpecError:
    start = time.perf_counter()
    with pytest.raises(SpecError) as caught:
        archbuilder.load_spec(text, **kwargs)
    assert time.perf_counter() - start < 5, "refused, but only after doing the work"
    return caught.value


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_the_count_is_the_number_of_ir_ops(path):
    spec = archbuilder.load_spec(path)
    expanded = archbuilder.lower(spec)
    data, _ = parse_yaml(path.read_text())
    if "extends" in data:
        pytest.skip("counted after the extends chain is merged")
    # An inverted residual block is counted before its input width is known, so with its
    # expand conv and drop path (an upper bound): MobileNetV3's features_1 has no expand conv;
    # EfficientNet's features_1 neither, and its 7 blocks without a shortcut have no drop path.
    unknown = {"mobilenet-v3-large": 1, "efficientnet-b0": 1 + 7}.get(path.stem, 0)
    assert count_ops(spec.to_dict()).total == len(list(expanded.ops())) + unknown


def test_a_hand_counted_nested_repeat():
    # 3 × (merge + 4 × conv) = 15 ops, plus the input.
    data, _ = parse_yaml(nested(1, 3).replace("repeat: 3}", "repeat: 4}"))
    assert count_ops(data).total == 1 + 3 * (1 + 4)
    spec = archbuilder.load_spec(nested(1, 3).replace("repeat: 3}", "repeat: 4}"))
    assert len(list(archbuilder.lower(spec).ops())) == 16


def test_three_nested_repeats_of_1000_are_refused_at_the_outermost_repeat():
    error = refused(nested(2, 1000))
    (problem,) = error.problems
    assert "1,001,001,001" in problem.message and f"budget of {DEFAULT_MAX_OPS:,}" in problem.message
    assert problem.path == ("blocks", 0, "repeat") and (problem.line, problem.column) == (3, 39)  # the key


def test_repeat_with_scale_depth_is_counted_and_never_a_raw_validation_error():
    text = HEAD + "scale: {depth: 16}\nblocks: [{kind: conv, out: 3, kernel: 1, repeat: 1000}]\n"
    (problem,) = refused(text).problems  # 16,000 ops fit the budget; the scaled repeat does not
    assert problem.path == ("blocks", 0, "repeat") and "16000" in problem.message
    big = (
        HEAD
        + "scale: {depth: 16}\nblocks:\n"
        + "".join(f"  - {{kind: conv, out: 3, kernel: 1, repeat: 1000, name: c{i}}}\n" for i in range(8))
    )
    (problem,) = refused(big).problems
    assert "128,001 ops" in problem.message and "scale.depth 16" in problem.message


def test_templates_and_repeats_multiply():
    template = "templates: {t: {layer: {kind: branches, merge: add, repeat: 1000, branches: [{layers: [{kind: conv, out: 3, kernel: 1, repeat: 1000}]}]}}}\n"
    # The use's repeat replaces the template layer's own: 1000 × (merge + 1000 convs) + input.
    (problem,) = refused(HEAD + template + "blocks: [{kind: template, use: t, repeat: 1000}]\n").problems
    assert "1,001,001 ops" in problem.message and problem.path == ("blocks", 0, "repeat")


def test_set_values_are_counted():
    (problem,) = refused(
        nested(1, 10), overrides=["blocks.0.repeat=1000", "blocks.0.branches.0.layers.0.repeat=1000"]
    ).problems
    assert "1,001,001 ops" in problem.message


def test_the_budget_can_be_raised_and_lowered():
    text = nested(1, 20)  # 1 + 20 × 21 = 421 ops
    assert archbuilder.load_spec(text).name == "x"
    assert "421 ops" in refused(text, max_ops=400).problems[0].message
    assert archbuilder.load_spec(nested(1, 400), max_ops=200_000).name == "x"  # 160,401 ops


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "10", None])
def test_a_bad_budget_is_a_value_error(value):
    with pytest.raises(ValueError, match="max_ops"):
        archbuilder.load_spec(nested(1, 2), max_ops=value)


def test_the_cli_takes_max_ops(tmp_path, capsys):
    path = tmp_path / "net.yaml"
    path.write_text(nested(1, 20))
    assert main(["validate", str(path), "--max-ops", "400"]) == 1
    assert "421 ops, over the budget of 400" in capsys.readouterr().err
    with pytest.raises(SystemExit) as caught:
        main(["validate", str(path), "--max-ops", "0"])
    assert caught.value.code == 2


def test_the_documented_largest_shipped_count_is_the_real_one():
    counts = {
        path.stem: len(list(archbuilder.lower(archbuilder.load_spec(path)).ops()))
        for path in sorted(SPECS.glob("*.yaml"))
    }
    name = max(counts, key=counts.get)
    assert (
        f"the largest shipped spec, `{name}`, has {counts[name]:,}"
        in (ROOT / "docs" / "reliability.md").read_text()
    )
