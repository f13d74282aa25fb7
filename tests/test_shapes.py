"""Shape inference equals the shapes torch produces, at every node, for shipped and random specs."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import archbuilder
from archbuilder.builder import build_from_ir
from tests.shape_check import assert_ir_matches_torch

from .conftest import shipped_spec_params


@pytest.mark.parametrize("path", shipped_spec_params())
def test_shipped_specs_match_torch_at_every_node(path):
    ir = archbuilder.lower(archbuilder.load_spec(path))
    assert_ir_matches_torch(build_from_ir(ir), ir)


# -- random specs -------------------------------------------------------------------

widths = st.integers(1, 6)
small_kernels = st.sampled_from([1, 2, 3])


@st.composite
def convs(draw, *, same_size: bool = False, out=None):
    kernel = draw(st.sampled_from([1, 3, 5])) if same_size else draw(small_kernels)
    layer = {"kind": "conv", "out": out or draw(widths), "kernel": kernel}
    if same_size:
        layer["padding"] = draw(st.sampled_from([kernel // 2, "same"]))
    else:
        layer["stride"] = draw(st.integers(1, 2))
        layer["padding"] = draw(st.integers(0, kernel // 2))
        if draw(st.booleans()):
            layer["kernel"] = [kernel, draw(small_kernels)]
            layer["padding"] = 0
    if draw(st.booleans()):
        layer["norm"] = draw(st.sampled_from(["batch", "none"]))
    if draw(st.booleans()):
        layer["bias"] = draw(st.booleans())
    if draw(st.booleans()):
        layer["activation"] = draw(st.sampled_from(["relu", "gelu", "tanh", "none"]))
    if draw(st.booleans()):
        layer["order"] = draw(st.sampled_from(["post", "pre"]))  # pre: norm and activation first
    return layer


@st.composite
def pools(draw):
    kernel = draw(st.integers(1, 3))
    return {
        "kind": draw(st.sampled_from(["maxpool", "avgpool"])),
        "kernel": kernel,
        "stride": draw(st.integers(1, 2)),
        "padding": draw(st.integers(0, kernel // 2)),
        "ceil_mode": draw(st.booleans()),
    }


@st.composite
def inceptions(draw):
    block = {"kind": "inception", "ch1x1": draw(widths), "ch3x3": draw(widths), "ch5x5": draw(widths)}
    for key in ("ch3x3red", "ch5x5red", "pool_proj"):
        if draw(st.booleans()):
            block[key] = draw(widths)
    block["kernel_5x5"] = draw(st.sampled_from([3, 5]))
    block["pool"] = {"kind": draw(st.sampled_from(["max", "avg"]))}
    return block


@st.composite
def split_blocks(draw):
    """Branches on channel slices: counts, ratios and the rest, in any order."""
    sizes = draw(st.lists(st.sampled_from([1, 2, 0.25, 0.5, "1/3", "1/2"]), min_size=1, max_size=3))
    sizes.insert(draw(st.integers(0, len(sizes))), "rest")
    branches = [
        {"channels": size, "layers": draw(st.lists(convs(same_size=True), max_size=1))} for size in sizes
    ]
    return {"kind": "branches", "split": True, "branches": branches}


@st.composite
def branch_blocks(draw):
    if draw(st.booleans()):
        return draw(split_blocks())
    if draw(st.booleans()):  # concat: any same-size branches, possibly nested
        count = draw(st.integers(1, 3))
        branches = [
            {"layers": draw(st.lists(convs(same_size=True), min_size=0, max_size=2))} for _ in range(count)
        ]
        if draw(st.booleans()):
            branches.append({"layers": [draw(inceptions())]})
        return {"kind": "branches", "merge": "concat", "branches": branches}
    out = draw(widths)  # add: every branch ends with the same width
    branches = [
        {"layers": [*draw(st.lists(convs(same_size=True), max_size=1)), draw(convs(same_size=True, out=out))]}
        for _ in range(draw(st.integers(1, 3)))
    ]
    return {"kind": "branches", "merge": "add", "branches": branches}


misc_layers = st.sampled_from(
    [
        {"kind": "batchnorm"},
        {"kind": "lrn", "size": 3},
        {"kind": "activation", "function": "silu"},
        {"kind": "dropout", "p": 0.2},
        {"kind": "layernorm", "eps": 1e-6},
        {"kind": "layer_scale", "init": 0.1},
        {"kind": "drop_path", "rate": 0.2},
        {"kind": "drop_path", "mode": "batch"},
    ]
)


@st.composite
def specs(draw):
    size = draw(st.integers(12, 28))
    layers = st.one_of(inceptions(), branch_blocks(), pools(), misc_layers, convs())
    blocks = [
        {**block, "name": f"b{i}"} for i, block in enumerate(draw(st.lists(layers, min_size=1, max_size=4)))
    ]
    head = [
        draw(st.sampled_from([{"kind": "global_avgpool"}, {"kind": "adaptive_avgpool", "output": [2, 1]}])),
        {"kind": "flatten"},
        {"kind": "linear", "out": "num_classes"},
    ]
    spec = {
        "name": "random",
        "input": {"channels": draw(st.integers(1, 4)), "height": size, "width": draw(st.integers(12, 28))},
        "num_classes": draw(st.integers(1, 5)),
        "stem": draw(st.lists(convs(), max_size=2)),
        "blocks": blocks,
        "head": head,
    }
    if draw(st.booleans()):
        tap = draw(st.sampled_from([block["name"] for block in blocks]))
        layers = [{"kind": "global_avgpool"}, {"kind": "flatten"}, {"kind": "linear", "out": 3}]
        spec["aux_heads"] = [{"name": "aux", "tap": tap, "loss_weight": 0.5, "layers": layers}]
    return spec


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_random_specs_match_torch_at_every_node(data):
    import yaml

    try:
        spec = archbuilder.load_spec(yaml.safe_dump(data, sort_keys=False))
    except archbuilder.SpecError as exc:
        # Only shape problems are expected from this generator (e.g. a map shrunk to nothing,
        # or channel slices wider than a narrow input).
        expected = ("collapses", "no channel at all", "leaving none", "but the input has")
        assert all(any(text in p.message for text in expected) for p in exc.problems), exc
        assume(False)
    ir = archbuilder.lower(spec)
    assert_ir_matches_torch(build_from_ir(ir), ir)


def _torch_pool_size(size, kernel, stride, padding, ceil):
    import torch

    try:
        pool = torch.nn.MaxPool2d(kernel, stride, padding, ceil_mode=ceil)
        return pool(torch.zeros(1, 1, size, size)).shape[-1]
    except RuntimeError:
        return None


def test_pool_size_rule_equals_torch_exhaustively():
    from archbuilder.ir.ops import ShapeError, _spatial

    for size in range(1, 8):
        for kernel in range(1, 4):
            for stride in range(1, 4):
                for padding in range(kernel // 2 + 1):
                    for ceil in (False, True):
                        try:
                            ours = _spatial(size, kernel, stride, padding, 1, ceil, "height")
                        except ShapeError:
                            ours = None
                        expected = _torch_pool_size(size, kernel, stride, padding, ceil)
                        assert ours == expected, (size, kernel, stride, padding, ceil)
