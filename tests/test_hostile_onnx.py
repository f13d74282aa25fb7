"""Hostile ONNX models: external data confined to the model's folder, declared sizes capped
before allocating, cycles and dangling inputs refused, work linear in the graph's size.

Every case must end in an ImportFailure that names the model file (and the tensor, node or
path at fault) within seconds; a case that would block or loop runs under a thread timeout.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from archbuilder.importers import ImportFailure, import_model

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

SECRET = b"root:$6$s3cr3t-hash:19000:0:99999:7:::\n"


def finishes(function, *args, seconds: float = 10, **kwargs):
    """``function(*args, **kwargs)``'s exception or result, failing the test if it blocks."""
    box: list = []

    def run():
        try:
            box.append(function(*args, **kwargs))
        except BaseException as exc:
            box.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{function.__name__} did not finish within {seconds} s"
    return box[0]


def refused(path: Path, *words: str, seconds: float = 10, **kwargs) -> str:
    """The message of the ImportFailure importing ``path`` raises; it names the file and ``words``."""
    outcome = finishes(import_model, path, seconds=seconds, **kwargs)
    assert isinstance(outcome, ImportFailure), outcome
    message = str(outcome)
    assert str(path) in message, message
    for word in words:
        assert word in message, message
    assert SECRET.decode() not in message
    return message


def conv_model(folder: Path, weight, *, nodes=(), name: str = "model.onnx", inits=()) -> Path:
    """x (1×3×8×8) → Conv(weight ``w``) → y; ``weight`` is the initializer (or None: a node writes w)."""
    folder.mkdir(parents=True, exist_ok=True)
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[3, 3])
    graph = helper.make_graph(
        [*nodes, conv],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [*([weight] if weight is not None else []), *inits],
    )
    path = folder / name
    path.write_bytes(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    )
    return path


WEIGHT = np.arange(4 * 3 * 3 * 3, dtype=np.float32).reshape(4, 3, 3, 3) / 100


def external(name: str, location: str, *, offset: int = 0, length: int | None = None, dims=WEIGHT.shape):
    """A float32 tensor ``name`` whose data is in ``location`` (ONNX's external data)."""
    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=list(dims))
    tensor.data_location = TensorProto.EXTERNAL
    entries = {"location": location, "offset": str(offset)}
    if length is not None:
        entries["length"] = str(length)
    for key, value in entries.items():
        tensor.external_data.add(key=key, value=value)
    return tensor


def constant_node(tensor) -> object:
    return helper.make_node("Constant", [], ["w"], name="weights", value=tensor)


# -- external data: only inside the model's folder ------------------------------------------------
def test_external_data_beside_the_model_is_read(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w.bin").write_bytes(WEIGHT.tobytes())
    path = conv_model(tmp_path / "m", external("w", "w.bin"))
    result = import_model(path)
    [weight] = [value for key, value in result.weights.items() if key.endswith("weight")]
    assert np.array_equal(weight, WEIGHT)


def test_a_constant_with_external_data_reads_beside_the_model_never_the_working_folder(tmp_path, monkeypatch):
    model = conv_model(tmp_path / "m", None, nodes=[constant_node(external("w", "secret.txt"))])
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "secret.txt").write_bytes(SECRET.ljust(WEIGHT.nbytes, b"#"))
    monkeypatch.chdir(tmp_path / "work")
    refused(model, "'w'", "secret.txt", "no such file")
    (tmp_path / "m" / "secret.txt").write_bytes(WEIGHT.tobytes())  # beside the model: read
    result = import_model(model)
    [weight] = [value for key, value in result.weights.items() if key.endswith("weight")]
    assert np.array_equal(weight, WEIGHT)


@pytest.mark.parametrize("where", ["parent", "absolute", "symlink", "fifo", "dev_zero", "folder"])
def test_external_data_outside_the_folder_or_not_a_regular_file_is_refused(tmp_path, where):
    folder = tmp_path / "m"
    folder.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_bytes(SECRET.ljust(WEIGHT.nbytes, b"#"))
    location = {"parent": "../secret.txt", "absolute": str(secret)}.get(where, "data.bin")
    if where == "symlink":
        (folder / "data.bin").symlink_to(secret)
    elif where == "fifo":
        os.mkfifo(folder / "data.bin")
    elif where == "dev_zero":
        (folder / "data.bin").symlink_to("/dev/zero")
    elif where == "folder":
        (folder / "data.bin").mkdir()
    for path in (
        conv_model(folder, external("w", location)),  # an initializer
        conv_model(folder, None, nodes=[constant_node(external("w", location))], name="c.onnx"),
    ):
        message = refused(path, "'w'", location)
        if where in ("parent", "absolute", "symlink", "dev_zero"):
            assert "outside" in message and "--allow-path" in message


def test_allowed_roots_let_external_data_live_elsewhere(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "w.bin").write_bytes(WEIGHT.tobytes())
    path = conv_model(tmp_path / "m", external("w", "../shared/w.bin"))
    refused(path, "outside")
    result = import_model(path, allowed_roots=[shared])
    assert np.array_equal(next(iter(v for k, v in result.weights.items() if k.endswith("weight"))), WEIGHT)


def test_the_cli_passes_allow_path_to_the_importer(tmp_path, capsys):
    from archbuilder.cli import main

    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "w.bin").write_bytes(WEIGHT.tobytes())
    path = conv_model(tmp_path / "m", external("w", "../shared/w.bin"))
    assert main(["import", str(path)]) == 1
    assert "--allow-path" in capsys.readouterr().err
    assert main(["import", str(path), "--allow-path", str(shared), "-o", str(tmp_path / "s.yaml")]) == 0


@pytest.mark.parametrize(
    ("offset", "length", "words"),
    [
        (0, WEIGHT.nbytes + 4, ["reads bytes 0 to"]),
        (WEIGHT.nbytes, None, ["offset"]),
        (8, WEIGHT.nbytes - 8, ["424 bytes from offset 8", "declare 432 bytes"]),
        (-4, None, ["offset"]),
    ],
)
def test_external_data_ranges_are_checked_against_the_file_and_the_dims(tmp_path, offset, length, words):
    (tmp_path / "w.bin").write_bytes(WEIGHT.tobytes())
    path = conv_model(tmp_path, external("w", "w.bin", offset=offset, length=length))
    refused(path, "'w'", *words)


def test_external_data_in_a_subgraph_is_confined_too(tmp_path):
    (tmp_path / "secret.txt").write_bytes(SECRET)
    inner = helper.make_graph(
        [
            helper.make_node(
                "Constant", [], ["c"], name="inner", value=external("c", "../secret.txt", dims=[4])
            )
        ],
        "then",
        [],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, None)],
    )
    branch = helper.make_node("If", ["x"], ["c"], name="if", then_branch=inner, else_branch=inner)
    path = conv_model(tmp_path / "m", numpy_helper.from_array(WEIGHT, "w"), nodes=[branch])
    refused(path, "'c'", "../secret.txt", "outside")


# -- the model file itself ---------------------------------------------------------------------------
def test_a_fifo_or_dev_zero_as_the_model_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe.onnx")
    refused(tmp_path / "pipe.onnx", "FIFO")
    (tmp_path / "zero.onnx").symlink_to("/dev/zero")
    refused(tmp_path / "zero.onnx", "character device")


def test_a_3_gib_model_is_refused_from_its_size_before_reading(tmp_path):
    path = tmp_path / "huge.onnx"
    with open(path, "wb") as file:
        file.truncate(3 << 30)  # sparse: no disk used, and nothing must read it
    start = time.perf_counter()
    refused(path, "3.0 GiB", "2.0 GiB")
    assert time.perf_counter() - start < 5


# -- declared sizes, before allocating ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("dims", "words"),
    [
        ([2**31, 2**31], ["4,611,686,018,427,387,904 elements", "4.0 GiB"]),
        ([-1, 3, 3, 3], ["-1"]),
        ([4, 3, 3, 3], ["no data", "108 elements"]),
    ],
)
def test_declared_dims_are_checked_before_allocating(tmp_path, dims, words):
    tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=dims)
    refused(conv_model(tmp_path, tensor), "'w'", *words)


def test_raw_data_of_the_wrong_length_is_refused(tmp_path):
    tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 3, 3, 3], raw_data=b"\0" * 100)
    refused(conv_model(tmp_path, tensor), "'w'", "100 bytes", "432")


def test_the_tensors_together_are_capped(tmp_path):
    big = [TensorProto(name=f"b{i}", data_type=TensorProto.FLOAT, dims=[2**29]) for i in range(3)]
    message = refused(conv_model(tmp_path, numpy_helper.from_array(WEIGHT, "w"), inits=big), "'b1'")
    assert "4.0 GiB" in message


def test_a_sparse_constant_is_refused_naming_the_node(tmp_path):
    values = numpy_helper.from_array(WEIGHT.reshape(-1)[:2].copy(), "v")
    indices = numpy_helper.from_array(np.array([0, 5], np.int64), "i")
    sparse = helper.make_sparse_tensor(values, indices, list(WEIGHT.shape))
    node = helper.make_node("Constant", [], ["w"], name="sparse_weights", sparse_value=sparse)
    refused(conv_model(tmp_path, None, nodes=[node]), "sparse_weights", "sparse tensors are not supported")


# -- graph structure ---------------------------------------------------------------------------------
def _graph_model(tmp_path, nodes, output: str) -> Path:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
    )
    path = tmp_path / "model.onnx"
    path.write_bytes(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    )
    return path


def test_a_node_reading_its_own_output_is_a_cycle(tmp_path):
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="r"),
        helper.make_node("Add", ["r", "a"], ["a"], name="loop"),
    ]
    refused(_graph_model(tmp_path, nodes, "a"), "cycle", "'loop' → 'loop'")


def test_two_nodes_reading_each_other_are_a_cycle(tmp_path):
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="r"),
        helper.make_node("Add", ["r", "b"], ["a"], name="left"),
        helper.make_node("Identity", ["a"], ["b"], name="right"),
    ]
    refused(_graph_model(tmp_path, nodes, "b"), "cycle", "'left' → 'right' → 'left'")


@pytest.mark.parametrize("pair", [False, True])
def test_identities_writing_back_into_their_input_are_refused_not_followed_forever(tmp_path, pair):
    """Once looped forever: each Identity made its output an alias of its input."""
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="r")]
    if pair:
        nodes += [
            helper.make_node("Identity", ["a"], ["b"], name="left"),
            helper.make_node("Identity", ["b"], ["a"], name="right"),
        ]
    else:
        nodes.append(helper.make_node("Identity", ["a"], ["a"], name="loop"))
    refused(_graph_model(tmp_path, nodes, "a"), "tensor 'a' is written by node 'r' (Relu) and again by node")


def test_an_input_nobody_writes_is_refused_naming_the_node(tmp_path):
    nodes = [helper.make_node("Add", ["x", "ghost"], ["y"], name="adder")]
    refused(_graph_model(tmp_path, nodes, "y"), "adder", "ghost")


def test_a_tensor_written_twice_is_refused(tmp_path):
    nodes = [
        helper.make_node("Relu", ["x"], ["y"], name="one"),
        helper.make_node("Sigmoid", ["x"], ["y"], name="two"),
    ]
    refused(_graph_model(tmp_path, nodes, "y"), "one", "two", "'y'")


def test_nodes_out_of_order_are_sorted(tmp_path):
    nodes = [
        helper.make_node("Relu", ["a"], ["y"], name="second"),
        helper.make_node("Relu", ["x"], ["a"], name="first"),
    ]
    result = import_model(_graph_model(tmp_path, nodes, "y"))
    assert len(result.spec.blocks) >= 1


def test_the_node_count_is_capped(tmp_path):
    graph = helper.make_graph(
        [],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("t100000", TensorProto.FLOAT, None)],
    )
    for index in range(100_001):
        graph.node.add(op_type="Relu", input=[f"t{index - 1}" if index else "x"], output=[f"t{index}"])
    path = tmp_path / "model.onnx"
    path.write_bytes(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    )
    refused(path, "100,001 nodes", "100,000")


@pytest.mark.slow
def test_a_partial_import_of_a_wide_fan_out_is_fast(tmp_path):
    """A fork of 20,000 branches: the walks of each branch and the cut for --partial were quadratic."""
    width = 20_000
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="r")]
    nodes += [helper.make_node("Relu", ["r"], [f"b{i}"], name=f"b{i}") for i in range(width)]
    nodes.append(helper.make_node("Concat", [f"b{i}" for i in range(width)], ["c"], name="c", axis=1))
    nodes.append(helper.make_node("Erf", ["c"], ["y"], name="unsupported"))
    path = _graph_model(tmp_path, nodes, "y")
    start = time.perf_counter()
    finishes(import_model, path, partial=True, seconds=60)
    assert time.perf_counter() - start < 20


@pytest.mark.slow
def test_a_long_chain_of_residual_blocks_is_bounded(tmp_path):
    """Recovering the nesting costs blocks × ops: 8,000 residual blocks were minutes and gigabytes."""
    nodes, tensor = [], "x"
    for index in range(8000):
        nodes.append(helper.make_node("Relu", [tensor], [f"r{index}"], name=f"r{index}"))
        nodes.append(helper.make_node("Add", [tensor, f"r{index}"], [f"a{index}"], name=f"a{index}"))
        tensor = f"a{index}"
    start = time.perf_counter()
    refused(_graph_model(tmp_path, nodes, tensor), "too many multi-branch blocks", seconds=60)
    assert time.perf_counter() - start < 20


# -- found by tests/test_fuzz_importers.py: each was a bare exception --------------------------------
def test_a_zero_dim_beside_a_huge_one_is_refused(tmp_path):
    tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1, 2**40, 2**31, 0])
    refused(conv_model(tmp_path, tensor), "'w'", "over the limit")


def test_a_conv_of_a_flattened_tensor_names_the_conv(tmp_path):
    nodes = [helper.make_node("Flatten", ["x"], ["f"], name="flat")]
    path = conv_model(tmp_path, numpy_helper.from_array(WEIGHT, "w"), nodes=nodes)
    graph_path = tmp_path / "flat.onnx"
    model = onnx.load(path)
    model.graph.node[1].input[0] = "f"
    onnx.save(model, graph_path)
    refused(graph_path, "conv", "does not fit")


def test_an_output_that_is_the_input_is_a_located_failure(tmp_path):
    nodes = [helper.make_node("Identity", ["x"], ["y"], name="copy")]
    refused(_graph_model(tmp_path, nodes, "y"))
