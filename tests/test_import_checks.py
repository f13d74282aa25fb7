"""The importers' own checks: an Inception block is recognised by expanding a candidate and
comparing, the shape engine refuses an op it has no rule for, and the spec an import produces
is lowered and its shapes compared with the source's."""

from __future__ import annotations

import pytest

from archbuilder.importers import ImportFailure, import_model
from archbuilder.importers import convert as convert_module
from archbuilder.importers.graph import Graph, Node, ShapeError, infer_shapes
from archbuilder.importers.inception import as_inception
from archbuilder.importers.pipeline import finish

RELU = {"norm": "none", "activation": "relu", "bias": True, "bn_eps": 1e-5, "bn_momentum": 0.1}


def _conv(out: int, kernel: int, **changed) -> dict:
    pad = kernel // 2
    layer = {"kind": "conv", "out": out, "kernel": (kernel, kernel), "stride": (1, 1)}
    layer.update(padding=(pad, pad), dilation=(1, 1), groups=1, **RELU)
    return {**layer, **changed}


def _pool(**changed) -> dict:
    layer = {"kind": "maxpool", "kernel": (3, 3), "stride": (1, 1), "padding": (1, 1), "ceil_mode": False}
    return {**layer, **changed}


def _inception_3a(**changed) -> list[list[dict]]:
    """GoogLeNet's inception (3a) as the importer's layers (the paper's table 1: 64, 96, 128,
    16, 32, 32); ``changed`` replaces one layer by its role (``branch5x5.conv``)."""
    layers = {
        "branch1x1.conv": _conv(64, 1),
        "branch3x3.reduce": _conv(96, 1),
        "branch3x3.conv": _conv(128, 3),
        "branch5x5.reduce": _conv(16, 1),
        "branch5x5.conv": _conv(32, 5),
        "branch_pool.pool": _pool(),
        "branch_pool.proj": _conv(32, 1),
    }
    layers.update({role.replace("__", "."): layer for role, layer in changed.items()})
    branches: dict[str, list[dict]] = {}
    for role, layer in layers.items():
        branches.setdefault(role.split(".")[0], []).append(layer)
    return list(branches.values())


def test_googlenet_3a_is_an_inception_block_with_its_widths_by_role():
    fields, roles = as_inception(_inception_3a())
    assert fields == {
        "kind": "inception",
        "ch1x1": 64,
        "ch3x3red": 96,
        "ch3x3": 128,
        "ch5x5red": 16,
        "ch5x5": 32,
        "pool_proj": 32,
        "conv": RELU,
    }
    assert roles == [["conv"], ["reduce", "conv"], ["reduce", "conv"], ["pool", "proj"]]


def test_torchvisions_pool_and_3x3_and_a_factorized_branch_write_only_what_differs():
    torchvision = _inception_3a(branch5x5__conv=_conv(32, 3), branch_pool__pool=_pool(ceil_mode=True))
    fields, _ = as_inception(torchvision)
    assert fields["kernel_5x5"] == 3 and fields["pool"] == {"ceil_mode": True}
    factorized = _inception_3a()
    factorized[2] = [_conv(16, 1), _conv(32, 3), _conv(32, 3)]
    fields, roles = as_inception(factorized)
    assert fields["factorize_5x5"] is True and "kernel_5x5" not in fields and "pool" not in fields
    assert roles[2] == ["reduce", "conv", "conv2"]
    naive = [
        [_conv(64, 1)],
        [_conv(128, 3)],
        [_conv(32, 5)],
        [_pool(kind="avgpool", kernel=(5, 5), padding=(1, 1))],
    ]
    fields, roles = as_inception(naive)
    assert fields["pool"] == {"kind": "avg", "kernel": 5, "padding": [1, 1]}
    assert (
        "ch3x3red" not in fields
        and "pool_proj" not in fields
        and roles == [["conv"], ["conv"], ["conv"], ["pool"]]
    )


@pytest.mark.parametrize(
    "changed",
    [
        {"branch5x5__conv": _conv(32, 5, padding=(1, 1))},  # a 5x5 branch with padding 1
        {"branch_pool__pool": _pool(stride=(2, 2))},  # a max pool with stride 2
        {"branch_pool__pool": _pool(kind="avgpool", count_include_pad=False)},
        {"branch3x3__conv": _conv(128, 3, stride=(2, 2))},
        {"branch3x3__conv": _conv(128, 3, dilation=(2, 2), padding=(2, 2))},
        {"branch1x1__conv": _conv(64, 1, groups=2)},
        {"branch3x3__reduce": _conv(96, 3)},  # a 3x3 where the reduction's 1x1 goes
        {"branch_pool__proj": _conv(32, 3)},
        {"branch5x5__conv": _conv(32, 5, activation="sigmoid")},  # one conv's settings differ
    ],
    ids=lambda changed: next(iter(changed)),
)
def test_branches_that_differ_from_the_expansion_in_one_attribute_are_not_an_inception(changed):
    assert as_inception(_inception_3a()) is not None
    assert as_inception(_inception_3a(**changed)) is None


def test_a_factorized_branch_of_two_widths_is_not_an_inception():
    branches = _inception_3a()
    branches[2] = [_conv(16, 1), _conv(32, 3), _conv(24, 3)]
    assert as_inception(branches) is None


def test_an_op_the_shape_engine_has_no_rule_for_is_a_located_problem():
    mystery = Node("warp1", "warp", ["x"], "y", source_op="GridSample")
    graph = Graph("x", (3, 8, 8), [mystery], "y")
    with pytest.raises(ShapeError) as raised:
        infer_shapes(graph)
    assert (raised.value.problem.node, raised.value.problem.op) == ("warp1", "GridSample")
    assert "no shape rule" in raised.value.problem.reason
    with pytest.raises(ImportFailure) as failed:
        finish(graph, source="net.onnx", sha256="0", format="onnx", name="n", partial=False)
    assert [(p.node, p.op) for p in failed.value.problems] == [("warp1", "GridSample")]


SMALL = """name: "small"
input: "data"
input_shape { dim: 1 dim: 3 dim: 16 dim: 16 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 8 kernel_size: 3 pad: 1 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool1" top: "fc" inner_product_param { num_output: 10 } }
"""


def _with_conv_stride_2(monkeypatch) -> None:
    """A converter fault: every conv written with stride 2 (the source's are 1)."""
    written = convert_module._Emitter.layer

    def wrong(self, node):
        layer = written(self, node)
        return {**layer, "stride": 2} if layer["kind"] == "conv" else layer

    monkeypatch.setattr(convert_module._Emitter, "layer", wrong)


def test_a_spec_whose_lowered_shapes_differ_from_the_source_is_reported(tmp_path, monkeypatch):
    path = tmp_path / "small.prototxt"
    path.write_text(SMALL)
    assert [layer.name for layer in import_model(path).spec.blocks] == ["conv1", "pool1"]
    _with_conv_stride_2(monkeypatch)
    with pytest.raises(ImportFailure) as failed:
        import_model(path)
    (problem,) = failed.value.problems
    assert (problem.node, problem.op) == ("conv1", "Convolution")
    assert "computes 8×8×8 per sample where the source computes 8×16×16" in problem.reason


def test_onnx_shape_inference_is_the_truth_the_spec_is_checked_against(tmp_path, monkeypatch):
    """A wrong stride read from the file moves the importer's own shapes with it; ONNX's
    shape inference, from the file, still says what the network computes."""
    onnx = pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from archbuilder.importers import onnx_ops

    weight = numpy_helper.from_array(np.zeros((4, 3, 3, 3), np.float32), "conv.weight")
    nodes = [
        helper.make_node("Conv", ["x", "conv.weight"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["y"], name="pool"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 1, 1])],
        [weight],
    )
    path = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    spec = import_model(path).spec
    assert [layer.kind for layer in [*spec.blocks, *spec.head]] == ["conv", "global_avgpool"]
    window = onnx_ops._window
    monkeypatch.setattr(onnx_ops, "_window", lambda a, kernel: {**window(a, kernel), "stride": (2, 2)})
    with pytest.raises(ImportFailure) as failed:
        import_model(path)
    (problem,) = failed.value.problems
    assert (problem.node, problem.op) == ("conv", "Conv")
    assert "computes 4×4×4 per sample where the source computes 4×8×8" in problem.reason


def test_the_torch_modules_own_shapes_are_the_truth_the_spec_is_checked_against(monkeypatch):
    """A conv read with a wrong stride moves the importer's own shapes with it; running the
    module says what it computes, and the batch norm statistics stay as they were."""
    torch = pytest.importorskip("torch")
    from archbuilder.importers import import_module, torch_module

    module = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.Flatten()
    )
    example = torch.randn(2, 3, 8, 8)
    spec = import_module(module, example).spec
    assert [layer.kind for layer in [*spec.blocks, *spec.head]] == ["conv", "flatten"]
    statistics = module[1].running_mean.clone(), module[1].num_batches_tracked.clone()
    assert module.training and module[1].training
    read = torch_module._Converter.conv

    def wrong(self, fx_node, x, conv):
        read(self, fx_node, x, conv)
        self.nodes[-1].attrs["stride"] = (2, 2)

    monkeypatch.setattr(torch_module._Converter, "conv", wrong)
    with pytest.raises(ImportFailure) as failed:
        import_module(module, example)
    (problem,) = failed.value.problems
    assert (problem.node, problem.op) == ("_0", "0")  # fx names the call of module 0 `_0`
    assert "computes 4×4×4 per sample where the source computes 4×8×8" in problem.reason
    assert module.training and module[1].training  # the modes are put back
    assert torch.equal(module[1].running_mean, statistics[0])
    assert torch.equal(module[1].num_batches_tracked, statistics[1])
