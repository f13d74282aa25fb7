"""ONNX import of squeeze-and-excitation gates, channel shuffles and conv + layer norm units:
hand-written graphs (``onnx.helper``), outputs against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

import archbuilder
from archbuilder.importers import ImportFailure, import_model

from .test_import_onnx import _compare, _conv, _init, _model

onnx = pytest.importorskip("onnx")
from onnx import helper, numpy_helper  # noqa: E402


def _gate_nodes(pool: str, inner: str, gate: str, gate_first: bool) -> list:
    """a = relu(conv(x)); a · gate(fc2(inner(fc1(pool(a))))), as torch.onnx writes an SE."""
    nodes = [_conv("c", "x", "w", "b", kernel_shape=[3, 3], pads=[1] * 4)]
    nodes.append(helper.make_node("Relu", ["c"], ["a"], name="relu"))
    if pool == "GlobalAveragePool":
        nodes.append(helper.make_node("GlobalAveragePool", ["a"], ["p"], name="se.pool"))
    else:
        nodes.append(helper.make_node("ReduceMean", ["a"], ["p"], name="se.pool", axes=[2, 3], keepdims=1))
    nodes.append(_conv("f1", "p", "se.fc1.weight", "se.fc1.bias", kernel_shape=[1, 1]))
    if inner == "silu":
        nodes.append(helper.make_node("Sigmoid", ["f1"], ["s1"], name="se.sig"))
        nodes.append(helper.make_node("Mul", ["f1", "s1"], ["i"], name="se.silu"))
    else:
        nodes.append(helper.make_node("Relu", ["f1"], ["i"], name="se.relu"))
    nodes.append(_conv("f2", "i", "se.fc2.weight", "se.fc2.bias", kernel_shape=[1, 1]))
    if gate == "hardsigmoid":
        nodes.append(helper.make_node("HardSigmoid", ["f2"], ["g"], name="se.gate", alpha=1 / 6, beta=0.5))
    else:
        nodes.append(helper.make_node("Sigmoid", ["f2"], ["g"], name="se.gate"))
    nodes.append(helper.make_node("Mul", ["g", "a"] if gate_first else ["a", "g"], ["y"], name="se.mul"))
    return nodes


def _gate_inits() -> list:
    inits = [_init("w", 6, 3, 3, 3), _init("b", 6)]
    inits += [_init("se.fc1.weight", 3, 6, 1, 1), _init("se.fc1.bias", 3)]
    return [*inits, _init("se.fc2.weight", 6, 3, 1, 1), _init("se.fc2.bias", 6)]


@pytest.mark.parametrize(
    "pool, inner, gate, gate_first",
    [
        ("GlobalAveragePool", "relu", "hardsigmoid", False),  # MobileNetV3
        ("ReduceMean", "silu", "sigmoid", True),  # EfficientNet, the product's inputs swapped
    ],
)
def test_a_squeeze_and_excitation_gate_is_one_se_layer(tmp_path, pool, inner, gate, gate_first):
    spec = _compare(_model(tmp_path, _gate_nodes(pool, inner, gate, gate_first), _gate_inits()))
    conv, se = spec.blocks
    ir = archbuilder.lower(spec)
    assert (conv.kind, ir.op(conv.name).attrs["activation"]) == ("conv", "relu")
    assert (se.kind, se.squeeze_channels, se.activation, se.gate) == ("se", 3, inner, gate)
    # hand count: conv 6·3·3·3 + 6; SE 2·C·s + s + C with C 6, s 3
    assert ir.total()[0] == 6 * 27 + 6 + (2 * 6 * 3 + 3 + 6)


def test_a_product_that_is_no_gate_is_reported(tmp_path):
    """A spatial gate (no pool) is not an SE: the product is reported, with its name."""
    nodes = [
        _conv("c", "x", "w", "b", kernel_shape=[3, 3], pads=[1] * 4),
        _conv("att", "c", "wa", "ba", kernel_shape=[1, 1]),
        helper.make_node("Sigmoid", ["att"], ["g"], name="gate"),
        helper.make_node("Mul", ["c", "g"], ["y"], name="attend"),
    ]
    inits = [_init("w", 6, 3, 3, 3), _init("b", 6), _init("wa", 6, 6, 1, 1), _init("ba", 6)]
    with pytest.raises(ImportFailure, match=r"attend \(Mul\): multiplies two tensors that are neither"):
        import_model(_model(tmp_path, nodes, inits))


def test_a_gate_whose_pooled_vector_is_read_elsewhere_is_reported(tmp_path):
    nodes = _gate_nodes("GlobalAveragePool", "relu", "sigmoid", False)
    nodes.append(helper.make_node("Add", ["y", "p"], ["z"], name="also_pooled"))
    with pytest.raises(ImportFailure, match=r"se\.mul \(Mul\): multiplies two tensors"):
        import_model(_model(tmp_path, nodes, _gate_inits()))


def test_hard_sigmoid_with_other_constants_is_reported(tmp_path):
    nodes = _gate_nodes("GlobalAveragePool", "relu", "hardsigmoid", False)
    nodes[-2] = helper.make_node("HardSigmoid", ["f2"], ["g"], name="se.gate")  # ONNX's default α 0.2
    with pytest.raises(ImportFailure, match=r"se\.gate \(HardSigmoid\): alpha 0\.2"):
        import_model(_model(tmp_path, nodes, _gate_inits()))


def _const(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def _shuffle_nodes(x: str, groups: int, channels: int, *, clone: bool, perm=(0, 2, 1, 3, 4)) -> list:
    """torchvision's channel_shuffle as torch.onnx writes it (``clone``: the Identity of
    ``.contiguous()`` before the Reshape back)."""
    nodes = [
        helper.make_node("Reshape", [x, "split_shape"], ["v"], name="view"),
        helper.make_node("Transpose", ["v"], ["t"], name="transpose", perm=list(perm)),
    ]
    if clone:
        nodes.append(helper.make_node("Identity", ["t"], ["t2"], name="clone"))
    nodes.append(helper.make_node("Reshape", ["t2" if clone else "t", "back_shape"], ["y"], name="back"))
    return nodes


def _shuffle_inits(groups: int, channels: int) -> list:
    return [
        _const("split_shape", [-1, groups, channels // groups, 8, 8]),
        _const("back_shape", [-1, channels, 8, 8]),
    ]


@pytest.mark.parametrize("groups, clone", [(2, True), (4, False)])
def test_a_channel_shuffle_after_a_layer_is_a_channel_shuffle_layer(tmp_path, groups, clone):
    nodes = [_conv("c", "x", "w", "b", kernel_shape=[3, 3], pads=[1] * 4)]
    nodes += _shuffle_nodes("c", groups, 8, clone=clone)
    inits = [_init("w", 8, 3, 3, 3), _init("b", 8), *_shuffle_inits(groups, 8)]
    spec = _compare(_model(tmp_path, nodes, inits))
    assert [(layer.kind, getattr(layer, "groups", None)) for layer in spec.blocks] == [
        ("conv", 1),
        ("channel_shuffle", groups),
    ]


def test_a_channel_shuffle_of_a_concat_is_the_blocks_shuffle(tmp_path):
    """ShuffleNetV2's stride-2 unit: two branches, concatenated, shuffled in 2 groups."""
    nodes = [
        _conv("a", "x", "wa", kernel_shape=[3, 3], pads=[1] * 4),
        _conv("b", "x", "wb", kernel_shape=[1, 1]),
        helper.make_node("Concat", ["a", "b"], ["cat"], name="cat", axis=1),
        *_shuffle_nodes("cat", 2, 8, clone=True),
    ]
    inits = [_init("wa", 4, 3, 3, 3), _init("wb", 4, 3, 1, 1), *_shuffle_inits(2, 8)]
    spec = _compare(_model(tmp_path, nodes, inits))
    [block] = spec.blocks
    assert (block.kind, block.merge, block.shuffle, len(block.branches)) == ("branches", "concat", 2, 2)


def test_a_transpose_of_other_axes_is_reported(tmp_path):
    nodes = [_conv("c", "x", "w", "b", kernel_shape=[3, 3], pads=[1] * 4)]
    nodes += _shuffle_nodes("c", 2, 8, clone=False, perm=(0, 1, 2, 4, 3))
    inits = [_init("w", 8, 3, 3, 3), _init("b", 8), *_shuffle_inits(2, 8)]
    with pytest.raises(ImportFailure, match=r"view \(Reshape\): only a reshape to N×features"):
        import_model(_model(tmp_path, nodes, inits))


def _conv_layer_norm(weight: str, norm: str, epsilon: float) -> tuple[list, list]:
    """A 3×3 conv, then torch's LayerNorm2d: Transpose → LayerNormalization → Transpose, GELU."""
    nodes = [
        _conv("c", "x", weight, "b", kernel_shape=[3, 3], pads=[1] * 4),
        helper.make_node("Transpose", ["c"], ["nhwc"], name="to_last", perm=[0, 2, 3, 1]),
        helper.make_node(
            "LayerNormalization", ["nhwc", f"{norm}.weight", f"{norm}.bias"], ["ln"], axis=-1, epsilon=epsilon
        ),
        helper.make_node("Transpose", ["ln"], ["n"], name="to_first", perm=[0, 3, 1, 2]),
        helper.make_node("Gelu", ["n"], ["y"], name="act", domain=""),
    ]
    inits = [_init(weight, 6, 3, 3, 3), _init("b", 6), _init(f"{norm}.weight", 6), _init(f"{norm}.bias", 6)]
    return nodes, inits


@pytest.mark.parametrize("weight, norm", [("u.conv.weight", "u.norm"), ("w", "ln")])
def test_a_layer_norm_over_a_convs_channels_is_its_norm_layer(tmp_path, weight, norm):
    """ConvNeXt's conv unit: one conv with ``norm: layer`` (eps 1e-6) and its activation."""
    nodes, inits = _conv_layer_norm(weight, norm, 1e-6)
    spec = _compare(_model(tmp_path, nodes, inits, opset=20))
    [conv] = spec.blocks
    op = archbuilder.lower(spec).op(conv.name)
    assert (op.kind, op.attrs["norm"], op.attrs["activation"]) == ("conv", "layer", "gelu")
    assert op.params == 6 * 27 + 6 + 2 * 6  # hand count: weight, bias, the norm's weight and bias


@pytest.mark.parametrize(
    "weight, norm, epsilon",
    [("u.conv.weight", "u_norm", 1e-6), ("w", "ln", 1e-5)],  # named apart; another epsilon
)
def test_a_layer_norm_that_is_not_the_units_stays_a_layer(tmp_path, weight, norm, epsilon):
    nodes, inits = _conv_layer_norm(weight, norm, epsilon)
    spec = _compare(_model(tmp_path, nodes, inits, opset=20))
    assert [layer.kind for layer in spec.blocks] == ["conv", "layernorm", "activation"]


@pytest.mark.parametrize("reverse", [False, True])
def test_a_regather_of_every_element_in_place_is_no_op(tmp_path, reverse):
    """torch.onnx's as_strided of a pooled map: Reshape to one axis, then a Gather of positions
    computed from the batch size. In place it is nothing; reversed it is reported."""
    positions = ["zero", "limit", "one"] if not reverse else ["last", "minus_one", "minus_one"]
    nodes = [
        _conv("c", "x", "w", "b", kernel_shape=[3, 3], pads=[1] * 4),
        helper.make_node("GlobalAveragePool", ["c"], ["p"], name="pool"),
        helper.make_node("Shape", ["x"], ["xs"], name="shape"),
        helper.make_node("Gather", ["xs", "zero"], ["n"], name="batch", axis=0),
        helper.make_node("Mul", ["n", "channels"], ["limit"], name="count"),
        helper.make_node("Sub", ["limit", "one"], ["last"], name="last"),
        helper.make_node("Range", positions, ["r"], name="range"),
        helper.make_node("Unsqueeze", ["n", "axis0"], ["n1"], name="n1"),
        helper.make_node("Concat", ["n1", "tail"], ["shape4"], name="shape4", axis=0),
        helper.make_node("Reshape", ["r", "shape4"], ["at"], name="at"),
        helper.make_node("Reshape", ["p", "flat"], ["pf"], name="flatten_all"),
        helper.make_node("Gather", ["pf", "at"], ["y"], name="as_strided", axis=0),
    ]
    scalars = {"zero": 0, "one": 1, "minus_one": -1, "channels": 6}
    inits = [_init("w", 6, 3, 3, 3), _init("b", 6)]
    inits += [numpy_helper.from_array(np.array(v, np.int64), k) for k, v in scalars.items()]
    inits += [_const("axis0", [0]), _const("tail", [6, 1, 1]), _const("flat", [-1])]
    path = _model(tmp_path, nodes, inits)
    if reverse:
        with pytest.raises(ImportFailure, match=r"flatten_all \(Reshape\): only a reshape"):
            import_model(path)
        return
    spec = _compare(path)
    assert [layer.kind for layer in spec.blocks + spec.head] == ["conv", "global_avgpool"]


def test_a_written_out_layer_norm_after_a_conv_is_its_norm_layer(tmp_path):
    """Opset 13 has no LayerNormalization: (x − mean) / sqrt(mean((x − mean)²) + ε) · w + b."""
    nodes = [
        _conv("c", "x", "u.conv.weight", "b", kernel_shape=[3, 3], pads=[1] * 4),
        helper.make_node("Transpose", ["c"], ["t"], name="to_last", perm=[0, 2, 3, 1]),
        helper.make_node("ReduceMean", ["t"], ["m"], name="mean", axes=[-1]),
        helper.make_node("Sub", ["t", "m"], ["d"], name="sub"),
        helper.make_node("Pow", ["d", "two"], ["d2"], name="pow"),
        helper.make_node("ReduceMean", ["d2"], ["v"], name="var", axes=[-1]),
        helper.make_node("Add", ["v", "eps"], ["ve"], name="add_eps"),
        helper.make_node("Sqrt", ["ve"], ["s"], name="sqrt"),
        helper.make_node("Div", ["d", "s"], ["n"], name="div"),
        helper.make_node("Mul", ["n", "u.norm.weight"], ["nw"], name="scale"),
        helper.make_node("Add", ["nw", "u.norm.bias"], ["nb"], name="shift"),
        helper.make_node("Transpose", ["nb"], ["y"], name="to_first", perm=[0, 3, 1, 2]),
    ]
    inits = [
        _init("u.conv.weight", 6, 3, 3, 3),
        _init("b", 6),
        _init("u.norm.weight", 6),
        _init("u.norm.bias", 6),
    ]
    inits += [numpy_helper.from_array(np.array(v, np.float32), k) for k, v in (("two", 2.0), ("eps", 1e-6))]
    spec = _compare(_model(tmp_path, nodes, inits, opset=13))
    [conv] = spec.blocks
    assert archbuilder.lower(spec).op(conv.name).attrs["norm"] == "layer"


@pytest.mark.slow
@pytest.mark.parametrize(
    "factory, params, gates, shuffles",
    [  # torchvision's published parameter counts; SE gates and shuffles by hand from its code
        ("mobilenet_v3_large", 5_483_032, 8, 0),
        ("efficientnet_b0", 5_288_548, 16, 0),
        ("shufflenet_v2_x1_0", 2_278_604, 0, 16),
    ],
)
def test_torchvision_models_with_gates_and_shuffles(tmp_path, factory, params, gates, shuffles):
    """torchvision's own models (not archbuilder's), written by torch.onnx.export without the
    optimizer: their parameter counts, gates and shuffles, and outputs within 1e-5."""
    import torch
    import torchvision

    from .test_import_onnx import _randomized

    model = _randomized(getattr(torchvision.models, factory)(weights=None))
    x = torch.randn(1, 3, 224, 224)
    path = tmp_path / f"{factory}.onnx"
    torch.onnx.export(model, (x,), path, dynamo=True, optimize=False, verbose=False)
    result = import_model(path)
    ir = archbuilder.lower(result.spec)
    assert ir.total()[0] == sum(p.numel() for p in model.parameters()) == params
    assert len([op for op in ir.ops() if op.kind == "se"]) == gates
    assert len([op for op in ir.ops() if op.attrs.get("shuffle")]) == shuffles
    rebuilt = archbuilder.build(result.spec).eval()
    rebuilt.load_state_dict(result.state_dict())
    with torch.no_grad():
        expected, got = model(x), rebuilt(x)
    assert ((got - expected).abs().max() / expected.abs().max()).item() <= 1e-5
