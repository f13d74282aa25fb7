"""ONNX import: hand-written graphs per op (outputs against onnxruntime), torch.onnx exports."""

from __future__ import annotations

import re

import numpy as np
import pytest

import archbuilder
from archbuilder.importers import ImportFailure, import_model

from .conftest import SPECS

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

RNG = np.random.default_rng(0)


def _init(name, *shape, positive=False):
    value = RNG.uniform(0.5, 1.5, shape) if positive else RNG.normal(0, 0.3, shape)
    return numpy_helper.from_array(value.astype(np.float32), name)


def _model(tmp_path, nodes, inits, shape=(3, 8, 8), out_shape=None, opset=17):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *shape])],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, out_shape)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    return path


def _compare(path, shape=(3, 8, 8)):
    """Import with weights, build, and compare with onnxruntime on a random batch."""
    result = import_model(path)
    model = archbuilder.build(result.spec, aux=False).eval()
    model.load_state_dict(result.state_dict())
    x = RNG.normal(0, 1, (2, *shape)).astype(np.float32)
    expected = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    with torch.no_grad():
        got = model(torch.from_numpy(x)).numpy()
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max())
    return result.spec


def _conv(name, x, w, b=None, **attrs):
    return helper.make_node("Conv", [x, w, *([b] if b else [])], [name], name=name, **attrs)


def _bn(name, x, c):
    names = [f"{name}.{k}" for k in ("scale", "bias", "mean", "var")]
    inits = [
        _init(names[0], c, positive=True),
        _init(names[1], c),
        _init(names[2], c),
        _init(names[3], c, positive=True),
    ]
    return helper.make_node("BatchNormalization", [x, *names], [name], name=name, epsilon=1e-3), inits


def test_conv_batchnorm_relu_fold_into_one_conv_layer(tmp_path):
    bn, inits = _bn("bn", "c", 4)
    nodes = [
        _conv("c", "x", "w", kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
        bn,
        helper.make_node("Relu", ["bn"], ["r"], name="r"),
    ]
    spec = _compare(_model(tmp_path, nodes, [_init("w", 4, 3, 3, 3), *inits]))
    ir = archbuilder.lower(spec)
    [conv] = [op for op in ir.ops() if op.kind == "conv"]
    assert (conv.attrs["norm"], conv.attrs["activation"], conv.attrs["bn_eps"], conv.attrs["bias"]) == (
        "batch",
        "relu",
        0.001,
        False,
    )
    assert len([op for op in ir.ops() if op.kind != "input"]) == 1


@pytest.mark.parametrize(
    "op, attrs",
    [
        ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
        ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
        ("AveragePool", dict(kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1], count_include_pad=0)),
        (
            "AveragePool",
            dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1, ceil_mode=1),
        ),
        ("GlobalAveragePool", {}),
        ("LRN", dict(size=5, alpha=2e-4, beta=0.7, bias=1.5)),
        ("Sigmoid", {}),
        ("Tanh", {}),
        ("LeakyRelu", dict(alpha=0.01)),
        ("HardSwish", {}),
    ],
)
def test_single_ops_match_onnxruntime(tmp_path, op, attrs):
    nodes = [
        _conv("c", "x", "w", "b", kernel_shape=[1, 1]),
        helper.make_node(op, ["c"], ["y"], name="y", **attrs),
    ]
    _compare(
        _model(tmp_path, nodes, [_init("w", 6, 3, 1, 1), _init("b", 6)], shape=(3, 9, 9)), shape=(3, 9, 9)
    )


def test_clip_is_relu6_and_gemm_matmul_flatten_reshape_dropout(tmp_path):
    zero, six = numpy_helper.from_array(np.float32(0), "zero"), numpy_helper.from_array(np.float32(6), "six")
    shape = numpy_helper.from_array(np.array([0, -1], dtype=np.int64), "shape")
    nodes = [
        _conv("c", "x", "w", "b", kernel_shape=[3, 3]),
        helper.make_node("Clip", ["c", "zero", "six"], ["r6"], name="r6"),
        helper.make_node("Reshape", ["r6", "shape"], ["flat"], name="flat"),
        helper.make_node("Gemm", ["flat", "fw", "fb"], ["fc1"], name="fc1", transB=1),
        helper.make_node("Dropout", ["fc1"], ["drop"], name="drop"),
        helper.make_node("MatMul", ["drop", "mw"], ["mm"], name="mm"),
        helper.make_node("Add", ["mm", "mb"], ["fc2"], name="fc2"),
    ]
    inits = [
        _init("w", 4, 3, 3, 3),
        _init("b", 4),
        zero,
        six,
        shape,
        _init("fw", 10, 144),
        _init("fb", 10),
        _init("mw", 10, 5),
        _init("mb", 5),
    ]
    spec = _compare(_model(tmp_path, nodes, inits))
    kinds = [layer.kind for layer in [*spec.stem, *spec.blocks, *spec.head]]
    assert kinds == ["conv", "flatten", "linear", "dropout", "linear"]
    assert spec.num_classes == 5
    assert archbuilder.lower(spec).op(spec.blocks[0].name).attrs["activation"] == "relu6"


def test_concat_of_paths_is_an_inception_block(tmp_path):
    def conv(name, x, out, k):
        return _conv(name, x, f"{name}.weight", f"{name}.bias", kernel_shape=[k, k], pads=[k // 2] * 4), [
            _init(f"{name}.weight", out, 4 if x == "x" else 3, k, k),
            _init(f"{name}.bias", out),
        ]

    parts = [conv("m.b1", "x", 2, 1), conv("m.b2r", "x", 3, 1), conv("m.b3r", "x", 3, 1)]
    parts += [conv("m.b2", "m.b2r", 5, 3), conv("m.b3", "m.b3r", 2, 5)]
    pool = helper.make_node(
        "MaxPool", ["x"], ["m.pool"], name="m.pool", kernel_shape=[3, 3], pads=[1, 1, 1, 1]
    )
    proj = _conv("m.proj", "m.pool", "m.proj.weight", "m.proj.bias", kernel_shape=[1, 1])
    nodes = [n for n, _ in parts] + [
        pool,
        proj,
        helper.make_node("Concat", ["m.b1", "m.b2", "m.b3", "m.proj"], ["cat"], name="cat", axis=1),
    ]
    inits = [i for _, group in parts for i in group] + [
        _init("m.proj.weight", 3, 4, 1, 1),
        _init("m.proj.bias", 3),
    ]
    spec = _compare(_model(tmp_path, nodes, inits, shape=(4, 8, 8)), shape=(4, 8, 8))
    [block] = spec.blocks
    assert (block.kind, block.name) == ("inception", "m")
    assert (block.ch1x1, block.ch3x3red, block.ch3x3, block.ch5x5red, block.ch5x5, block.pool_proj) == (
        2,
        3,
        5,
        3,
        2,
        3,
    )


def test_residual_add_with_a_scaled_branch(tmp_path):
    scale = numpy_helper.from_array(np.float32(0.25), "s")
    nodes = [
        _conv("c", "x", "w", "b", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Mul", ["c", "s"], ["cs"], name="cs"),
        helper.make_node("Add", ["x", "cs"], ["sum"], name="sum"),
        helper.make_node("Relu", ["sum"], ["y"], name="y"),
    ]
    spec = _compare(_model(tmp_path, nodes, [_init("w", 3, 3, 3, 3), _init("b", 3), scale]))
    [block] = spec.blocks
    assert (block.merge, block.activation, [b.scale for b in block.branches]) == ("add", "relu", [1.0, 0.25])


def test_unsupported_nodes_are_listed_with_names_and_partial_stops(tmp_path):
    nodes = [
        _conv("c", "x", "w", kernel_shape=[3, 3], pads=[0, 0, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="r"),
        helper.make_node("Erf", ["r"], ["e"], name="e"),
        helper.make_node("MaxPool", ["e"], ["y"], name="y", kernel_shape=[2, 2], auto_pad="SAME_UPPER"),
    ]
    path = _model(tmp_path, nodes, [_init("w", 3, 3, 3, 3)])
    with pytest.raises(ImportFailure) as failure:
        import_model(path)
    problems = [(p.node, p.op) for p in failure.value.problems]
    assert problems == [("c", "Conv"), ("e", "Erf"), ("y", "MaxPool")]
    assert "asymmetric pads" in str(failure.value) and "auto_pad" in str(failure.value)
    nodes[0] = _conv("c", "x", "w", kernel_shape=[3, 3])
    result = import_model(_model(tmp_path, nodes, [_init("w", 3, 3, 3, 3)]), partial=True)
    assert result.stopped.startswith("e (Erf)")
    assert [layer.kind for layer in result.spec.blocks] == ["conv"]


def _randomized(model):
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn_like(param) * (0.1 if param.dim() > 1 else 0.5))
        for name, buffer in model.named_buffers():
            if name.endswith("running_var"):
                buffer.uniform_(0.5, 1.5)
            elif name.endswith("running_mean"):
                buffer.normal_(0, 0.2)
    return model.eval()


def _folded_params(ir) -> int:
    """torch.onnx folds each batch norm into its conv: 2·C norm parameters become C of bias."""
    aux = {head.name for head in ir.aux_heads}
    total = 0
    for op in ir.ops():
        if op.item in aux:
            continue
        total += op.params
        if op.kind in ("conv", "separable") and op.attrs["norm"] == "batch":
            total -= 2 * op.attrs["out_channels"] - (0 if op.attrs["bias"] else op.attrs["out_channels"])
    return total


def _collapsed(ir):
    """Op kinds and shapes, with an activation right after a conv counted as that conv's. A
    concat of one tensor (the merge of a one-branch block: an inverted residual without its
    shortcut) computes nothing and is left out: a graph has no trace of it."""
    ops = [
        op
        for op in ir.ops()
        if op.kind not in ("input", "dropout", "drop_path")
        and op.item not in {h.name for h in ir.aux_heads}
        and not (op.kind == "concat" and len(op.attrs["inputs"]) == 1 and not op.attrs.get("shuffle"))
    ]
    kept = []
    for op in ops:
        if (
            op.kind == "activation"
            and kept
            and kept[-1][0] in ("conv", "separable")
            and kept[-1][1] == op.shape
        ):
            continue
        kept.append((op.kind, op.shape))
    return kept


SMALL = """
name: small
input: {channels: 3, height: 16, width: 16}
num_classes: 7
stem: [{name: conv1, kind: conv, out: 8, kernel: 3, padding: 1, bn_eps: 0.001}]
blocks:
- {name: 3a, kind: inception, ch1x1: 4, ch3x3red: 4, ch3x3: 6, ch5x5red: 2, ch5x5: 4, pool_proj: 4, pool: {ceil_mode: true}}
- name: res
  kind: branches
  merge: add
  activation: relu
  branches:
  - {layers: []}
  - {layers: [{name: conv, kind: conv, out: 18, kernel: 3, padding: 1, activation: none}], scale: 0.5}
- {name: pool, kind: avgpool, kernel: 2, count_include_pad: false}
head:
- {name: avgpool, kind: global_avgpool}
- {name: flatten, kind: flatten}
- {name: fc, kind: linear, out: num_classes}
"""


def _round_trip(spec, tmp_path, *, optimize=False):
    """Export with random weights, import, rebuild: the same ops, shapes, parameters, MACs and
    outputs, and onnxruntime computes the exported file's outputs too. ``optimize`` (the deploy
    default) folds each batch norm into its conv."""
    model = _randomized(archbuilder.build(spec, aux=False))
    path = archbuilder.export_onnx(model, tmp_path / "m.onnx", optimize=optimize)
    x = torch.randn(2, spec.input.channels, spec.input.height, spec.input.width)
    with torch.no_grad():
        expected = model(x)
    (onnxruntime,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"input": x.numpy()}
    )
    assert np.abs(onnxruntime - expected.numpy()).max() <= 1e-5 * np.abs(expected.numpy()).max()
    result = import_model(path)
    original, imported = archbuilder.lower(spec), archbuilder.lower(result.spec)
    assert _collapsed(imported) == _collapsed(original)
    params, macs = original.total(aux=False)
    assert imported.total() == ((_folded_params(original) if optimize else params), macs)
    rebuilt = archbuilder.build(result.spec).eval()
    rebuilt.load_state_dict(result.state_dict())
    with torch.no_grad():
        got = rebuilt(x)
    assert ((got - expected).abs().max() / expected.abs().max()).item() <= 1e-5
    return result


def test_round_trip_of_a_small_spec_through_archbuild_export(tmp_path):
    spec = archbuilder.load_spec(SMALL)
    result = _round_trip(spec, tmp_path)
    assert [layer.name for layer in result.spec.blocks] == ["3a", "res", "pool"]
    assert result.spec.blocks[0] == spec.blocks[0]  # the Inception module comes back as written
    assert result.spec.stem == spec.stem  # its batch norm too, eps included


def test_the_optimized_deploy_export_folds_batch_norms_into_conv_biases(tmp_path):
    result = _round_trip(archbuilder.load_spec(SMALL), tmp_path, optimize=True)
    conv = archbuilder.lower(result.spec).op(result.spec.stem[0].name)
    assert (conv.attrs["norm"], conv.attrs["bias"]) == ("none", True)


# Specs whose constructs the ONNX importer does not read back yet: a strict xfail, so the test
# says so when it starts to pass.
NOT_YET: dict[str, str] = {
    # "spec name": "the construct the importer does not read back yet",
}
SHIPPED = [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=NOT_YET[name]))
    if name in NOT_YET
    else name
    for name in sorted(path.stem for path in SPECS.glob("*.yaml"))  # every shipped spec
]


MAX_REPEAT = 2
WIDTH = "scale.width=0.25"


def _shallow(path):
    """The spec at a quarter of its widths, each ``repeat: n`` over two cut to two: every
    construct, its repeated naming and its stage strides kept, at a fraction of the cost (the
    export traces each op and copies each weight, and a third copy of a block, or a wider
    one, adds nothing new to read back)."""
    text = re.sub(
        r"\brepeat: (\d+)",
        lambda m: f"repeat: {min(int(m[1]), MAX_REPEAT)}",
        path.read_text(encoding="utf-8"),
    )
    return archbuilder.load_spec(text, overrides=[WIDTH])


def test_shallow_specs_keep_every_kind_of_block():
    for path in SPECS.glob("*.yaml"):
        full, shallow = archbuilder.lower(archbuilder.load_spec(path)), archbuilder.lower(_shallow(path))
        assert {op.kind for op in shallow.ops()} == {op.kind for op in full.ops()}, path.name
        assert [op.shape[1:] for op in shallow.ops()][:2] == [op.shape[1:] for op in full.ops()][:2]
        assert shallow.op(shallow.output).shape == full.op(full.output).shape, path.name
        assert shallow.total()[1] < full.total()[1] / 4, path.name  # MACs


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_round_trip_of_every_shipped_spec(tmp_path, name):
    _round_trip(_shallow(SPECS / f"{name}.yaml"), tmp_path)


@pytest.mark.parametrize("optimize", [True, False])
def test_torch_onnx_s_decomposed_local_response_norm_is_one_lrn(tmp_path, optimize):
    spec = archbuilder.load_spec(
        "name: n\ninput: {channels: 6, height: 5, width: 5}\n"
        "blocks: [{name: norm, kind: lrn, size: 3, alpha: 0.001, beta: 0.6, k: 2.0}, {name: c, kind: conv, out: 2, kernel: 1, activation: none}]\n"
    )
    result = _round_trip(spec, tmp_path, optimize=optimize)
    assert result.spec.blocks[0] == spec.blocks[0]


@pytest.mark.slow
@pytest.mark.parametrize("factory, size", [("googlenet", 224), ("inception_v3", 299)])
def test_torchvision_models_exported_by_torch_onnx(tmp_path, factory, size):
    torchvision = pytest.importorskip("torchvision")
    kwargs = dict(weights=None, aux_logits=False, init_weights=False)
    model = _randomized(getattr(torchvision.models, factory)(**kwargs))
    x = torch.randn(1, 3, size, size)
    path = tmp_path / f"{factory}.onnx"
    torch.onnx.export(model, (x,), path, dynamo=True, verbose=False)
    result = import_model(path)
    kinds = {layer.kind for layer in result.spec.blocks}
    assert ("inception" in kinds) == (factory == "googlenet")
    rebuilt = archbuilder.build(result.spec).eval()
    rebuilt.load_state_dict(result.state_dict())
    with torch.no_grad():
        expected, got = model(x), rebuilt(x)
    assert ((got - expected).abs().max() / expected.abs().max()).item() <= 1e-5


def test_extra_graph_outputs_become_aux_heads(tmp_path):
    shape = numpy_helper.from_array(np.array([0, -1], dtype=np.int64), "shape")
    nodes = [
        _conv("c1", "x", "w1", "b1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="r1"),
        _conv("c2", "r1", "w2", "b2", kernel_shape=[3, 3], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["c2"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flat"),
        helper.make_node("Gemm", ["flat", "fw", "fb"], ["logits"], name="fc", transB=1),
        helper.make_node("AveragePool", ["r1"], ["ap"], name="aux.pool", kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Reshape", ["ap", "shape"], ["aflat"], name="aux.flat"),
        helper.make_node("Gemm", ["aflat", "aw", "ab"], ["aux_logits"], name="aux.fc", transB=1),
    ]
    inits = [
        _init("w1", 4, 3, 3, 3),
        _init("b1", 4),
        _init("w2", 6, 4, 3, 3),
        _init("b2", 6),
        _init("fw", 5, 6),
    ]
    inits += [_init("fb", 5), shape, _init("aw", 5, 16), _init("ab", 5)]
    graph = helper.make_graph(
        nodes,
        "two_outputs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [
            helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", 5])
            for name in ("logits", "aux_logits")
        ],
        inits,
    )
    path = tmp_path / "two.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    spec = import_model(path).spec
    [head] = spec.aux_heads
    assert (head.name, head.tap, head.loss_weight) == ("aux", spec.blocks[0].name, 0.3)
    assert [layer.kind for layer in head.layers] == ["avgpool", "flatten", "linear"]
    assert spec.name == "two_outputs"


def _const(name, value, dtype=np.int64):
    return numpy_helper.from_array(np.array(value, dtype=dtype), name)


@pytest.mark.parametrize("how", ["Split", "Slice"])
def test_channel_slices_that_meet_at_a_concat_are_a_split_block(tmp_path, how):
    if how == "Split":  # opset 18: the sizes as an input
        cut = [helper.make_node("Split", ["x", "sizes"], ["a", "b", "c"], name="split", axis=1)]
        inits = [_const("sizes", [4, 2, 2])]
    else:
        cut = [
            helper.make_node("Slice", ["x", f"s{i}", f"e{i}", "axes"], [name], name=name)
            for i, name in enumerate("abc")
        ]
        inits = [_const("axes", [1]), _const("s0", [0]), _const("e0", [4]), _const("s1", [4])]
        inits += [_const("e1", [6]), _const("s2", [-2]), _const("e2", [2**62])]  # from the end, to the end
    nodes = [
        *cut,
        _conv(
            "m.b.conv", "b", "m.b.conv.weight", "m.b.conv.bias", kernel_shape=[3, 3], pads=[1] * 4, group=2
        ),
        _conv("m.c.conv", "c", "m.c.conv.weight", kernel_shape=[1, 5], pads=[0, 2, 0, 2], group=2),
        helper.make_node("Concat", ["a", "m.b.conv", "m.c.conv"], ["cat"], name="cat", axis=1),
    ]
    inits += [_init("m.b.conv.weight", 2, 1, 3, 3), _init("m.b.conv.bias", 2)]
    inits.append(_init("m.c.conv.weight", 2, 1, 1, 5))
    spec = _compare(_model(tmp_path, nodes, inits, shape=(8, 6, 6), opset=18), shape=(8, 6, 6))
    [block] = spec.blocks
    assert (block.kind, block.split) == ("branches", True)
    assert [b.channels for b in block.branches] == [4, 2, 2]
    assert [len(b.layers) for b in block.branches] == [0, 1, 1]
    assert archbuilder.lower(spec).total()[0] == 2 * 9 + 2 + 2 * 5  # hand count


def test_channel_slices_out_of_order_are_reported(tmp_path):
    nodes = [
        helper.make_node("Split", ["x", "sizes"], ["a", "b"], name="split", axis=1),
        helper.make_node("Relu", ["a"], ["ra"], name="ra"),
        helper.make_node("Concat", ["b", "ra"], ["cat"], name="cat", axis=1),
    ]
    path = _model(tmp_path, nodes, [_const("sizes", [2, 2])], shape=(4, 4, 4), opset=18)
    with pytest.raises(ImportFailure, match=r"cat \(Concat\): its branches read channel slices out of order"):
        import_model(path)


@pytest.mark.parametrize("gamma_shape", [(6, 1, 1), (1, 6, 1, 1), "reshaped"])
def test_a_per_channel_multiplier_is_a_layer_scale(tmp_path, gamma_shape):
    nodes = [_conv("c", "x", "w", "b", kernel_shape=[3, 3], pads=[1] * 4)]
    inits = [_init("w", 6, 3, 3, 3), _init("b", 6)]
    if gamma_shape == "reshaped":  # torch.onnx: gamma.reshape(-1, 1, 1), the shape computed
        nodes.append(helper.make_node("Reshape", ["g.gamma", "gshape"], ["gamma"], name="view"))
        inits += [_init("g.gamma", 6), _const("gshape", [-1, 1, 1])]
    else:
        inits.append(_init("gamma", *gamma_shape))
    nodes.append(helper.make_node("Mul", ["c", "gamma"], ["y"], name="g"))
    spec = _compare(_model(tmp_path, nodes, inits))
    assert [layer.kind for layer in spec.blocks] == ["conv", "layer_scale"]
    assert archbuilder.lower(spec).total()[0] == 6 * 27 + 6 + 6  # hand count


def test_layer_norm_over_features_and_over_channels(tmp_path):
    """The conv is a layer ``c`` and the norm one apart (``n1``): a ``layernorm`` layer, not the
    conv's ``norm: layer`` (see test_import_onnx_gates.py)."""
    nodes = [
        _conv("c", "x", "c.conv.weight", "b", kernel_shape=[1, 1]),
        helper.make_node("Transpose", ["c"], ["nhwc"], name="to_last", perm=[0, 2, 3, 1]),
        helper.make_node(
            "LayerNormalization", ["nhwc", "n1.weight", "n1.bias"], ["ln"], name="n1", axis=-1, epsilon=1e-6
        ),
        helper.make_node("Transpose", ["ln"], ["n1"], name="to_first", perm=[0, 3, 1, 2]),
        helper.make_node("GlobalAveragePool", ["n1"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flat"),
        helper.make_node("LayerNormalization", ["flat", "n2.weight", "n2.bias"], ["y"], name="n2"),
    ]
    inits = [_init("c.conv.weight", 5, 3, 1, 1), _init("b", 5), _init("n1.weight", 5), _init("n1.bias", 5)]
    inits += [_init("n2.weight", 5), _init("n2.bias", 5)]
    spec = _compare(_model(tmp_path, nodes, inits))
    kinds = [(layer.kind, getattr(layer, "eps", None)) for layer in [*spec.blocks, *spec.head]]
    assert kinds == [
        ("conv", None),
        ("layernorm", 1e-6),
        ("global_avgpool", None),
        ("flatten", None),
        ("layernorm", 1e-5),
    ]


def test_values_computed_from_constants_are_folded(tmp_path):
    """A bias computed as zeros (torch.onnx's conv without bias) is no bias; one computed
    from an initializer is the conv's bias."""
    nodes = [
        helper.make_node("Shape", ["w1"], ["w1_shape"], name="shape"),
        helper.make_node("Slice", ["w1_shape", "zero", "one"], ["out_ch"], name="out_ch"),
        helper.make_node("CastLike", ["zero_f", "x"], ["zero_x"], name="castlike"),
        helper.make_node("Expand", ["zero_x", "out_ch"], ["no_bias"], name="expand"),
        _conv("c1", "x", "w1", "no_bias", kernel_shape=[3, 3]),
        helper.make_node("Mul", ["half", "two"], ["b2"], name="twice"),
        _conv("c2", "c1", "w2", "b2", kernel_shape=[1, 1]),
    ]
    inits = [_init("w1", 4, 3, 3, 3), _init("w2", 2, 4, 1, 1), _init("half", 2)]
    inits += [_const("two", 2.0, np.float32), _const("zero", [0]), _const("one", [1])]
    inits.append(_const("zero_f", 0.0, np.float32))
    spec = _compare(_model(tmp_path, nodes, inits))
    ir = archbuilder.lower(spec)
    assert [ir.op(layer.name).attrs["bias"] for layer in spec.blocks] == [False, True]


def test_folding_is_bounded_in_size(tmp_path):
    """An Expand to 2**40 elements is not evaluated: the conv reading it is reported."""
    nodes = [
        helper.make_node("Expand", ["zero_f", "huge"], ["bias"], name="expand"),
        _conv("c", "x", "w", "bias", kernel_shape=[3, 3]),
    ]
    inits = [_init("w", 4, 3, 3, 3), _const("zero_f", 0.0, np.float32), _const("huge", [2**40])]
    with pytest.raises(ImportFailure, match=r"c \(Conv\): its bias \(bias\) is computed, not a constant"):
        import_model(_model(tmp_path, nodes, inits))


def _split_blocks(items):
    found = 0
    for item in items:
        if item.kind == "branches":
            found += bool(item.split) + _split_blocks([layer for b in item.branches for layer in b.layers])
    return found


@pytest.mark.slow
def test_timm_inception_next_exported_by_torch_onnx(tmp_path):
    """timm's InceptionNeXt-T (not archbuilder's), written by torch.onnx.export without the
    optimizer (torch.split as SplitToSequence): 28,055,680 parameters as timm counts them."""
    timm = pytest.importorskip("timm")
    model = _randomized(timm.create_model("inception_next_tiny", pretrained=False))
    x = torch.randn(1, 3, 224, 224)
    path = tmp_path / "inception_next_tiny.onnx"
    torch.onnx.export(model, (x,), path, dynamo=True, optimize=False, verbose=False)
    result = import_model(path)
    assert (
        archbuilder.lower(result.spec).total()[0] == sum(p.numel() for p in model.parameters()) == 28_055_680
    )
    assert _split_blocks(result.spec.blocks) == 18  # one token mixer per MetaNeXt block: 3 + 3 + 9 + 3
    rebuilt = archbuilder.build(result.spec).eval()
    rebuilt.load_state_dict(result.state_dict())
    with torch.no_grad():
        expected, got = model(x), rebuilt(x)
    assert ((got - expected).abs().max() / expected.abs().max()).item() <= 1e-5


def test_split_to_sequence_is_a_channel_split(tmp_path):
    nodes = [
        helper.make_node("SplitToSequence", ["x", "sizes"], ["seq"], name="split", axis=1),
        *[helper.make_node("SequenceAt", ["seq", f"i{i}"], [f"part{i}"], name=f"at{i}") for i in range(2)],
        _conv("m.c.conv", "part1", "m.c.conv.weight", "m.c.conv.bias", kernel_shape=[1, 1]),
        helper.make_node("Concat", ["part0", "m.c.conv"], ["cat"], name="cat", axis=1),
    ]
    inits = [_const("sizes", [3, 1]), _const("i0", 0), _const("i1", 1)]
    inits += [_init("m.c.conv.weight", 2, 1, 1, 1), _init("m.c.conv.bias", 2)]
    spec = _compare(_model(tmp_path, nodes, inits, shape=(4, 5, 5)), shape=(4, 5, 5))
    assert [b.channels for b in spec.blocks[0].branches] == [3, 1]


def test_folding_stops_at_the_import_s_total(tmp_path, monkeypatch):
    """Each value within the per-node bound, but the import's total spent: not evaluated."""
    from archbuilder.importers import onnx_graph

    nodes = [
        helper.make_node("Mul", ["half", "two"], ["b"], name="twice"),
        _conv("c", "x", "w", "b", kernel_shape=[3, 3]),
    ]
    inits = [_init("w", 4, 3, 3, 3), _init("half", 4), _const("two", 2.0, np.float32)]
    path = _model(tmp_path, nodes, inits)
    monkeypatch.setattr(onnx_graph, "MAX_FOLDED_TOTAL", 3)
    with pytest.raises(ImportFailure, match=r"c \(Conv\): its bias \(b\) is computed, not a constant"):
        import_model(path)
    monkeypatch.setattr(onnx_graph, "MAX_FOLDED_TOTAL", 4)
    _compare(path)


def test_dense_concats_of_the_input_and_new_features(tmp_path):
    """DenseNet's pattern: each layer's output is concatenated to its input (an identity branch)."""
    nodes = [
        _conv("d1.conv", "x", "d1.conv.weight", kernel_shape=[3, 3], pads=[1] * 4),
        helper.make_node("Concat", ["x", "d1.conv"], ["d1"], name="d1.cat", axis=1),
        _conv("d2.conv", "d1", "d2.conv.weight", kernel_shape=[3, 3], pads=[1] * 4),
        helper.make_node("Concat", ["d1", "d2.conv"], ["d2"], name="d2.cat", axis=1),
    ]
    inits = [_init("d1.conv.weight", 2, 3, 3, 3), _init("d2.conv.weight", 2, 5, 3, 3)]
    spec = _compare(_model(tmp_path, nodes, inits))
    assert [(b.kind, [len(branch.layers) for branch in b.branches]) for b in spec.blocks] == [
        ("branches", [0, 1]),
        ("branches", [0, 1]),
    ]
    assert archbuilder.lower(spec).total()[0] == 2 * 27 + 2 * 45  # hand count


def test_a_squeeze_excitation_gate_is_reported_by_name(tmp_path):
    """x · sigmoid(fc(pool(x))) has no archbuilder layer here: reported, not a traceback."""
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["se.pool"], name="se.pool"),
        _conv("se.fc", "se.pool", "se.fc.weight", "se.fc.bias", kernel_shape=[1, 1]),
        helper.make_node("Sigmoid", ["se.fc"], ["se.gate"], name="se.gate"),
        helper.make_node("Mul", ["x", "se.gate"], ["y"], name="se.scale"),
    ]
    path = _model(tmp_path, nodes, [_init("se.fc.weight", 3, 3, 1, 1), _init("se.fc.bias", 3)])
    with pytest.raises(ImportFailure, match=r"se\.scale \(Mul\): multiplies two tensors"):
        import_model(path)


@pytest.mark.skipif(
    "order" not in archbuilder.spec.layers.Conv.model_fields, reason="the spec language has no order: pre"
)
def test_a_batch_norm_and_relu_named_as_a_conv_s_parts_are_a_pre_activation_conv(tmp_path):
    """DenseNet's BN → ReLU → conv, named P.bn / P.conv as archbuilder writes one layer."""
    bn, inits = _bn("p.bn", "x", 3)
    bn.input[1:] = [f"p.bn.{k}" for k in ("weight", "bias", "running_mean", "running_var")]
    for init, key in zip(inits, ("weight", "bias", "running_mean", "running_var")):
        init.name = f"p.bn.{key}"
    nodes = [
        bn,
        helper.make_node("Relu", ["p.bn"], ["r"], name="r"),
        _conv("p.conv", "r", "p.conv.weight", kernel_shape=[3, 3], pads=[1] * 4),
    ]
    spec = _compare(_model(tmp_path, nodes, [*inits, _init("p.conv.weight", 4, 3, 3, 3)]))
    [conv] = spec.blocks
    assert (conv.kind, conv.order) == ("conv", "pre")
    assert archbuilder.lower(spec).total()[0] == 4 * 27 + 2 * 3  # hand count: the norm is over the 3 inputs
