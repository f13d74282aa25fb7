"""Caffe files from untrusted places: a .prototxt or .caffemodel gives a spec or one located
ImportFailure, never another exception, never a block on a special file, never work that
grows faster than the file."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from archbuilder.cli.main import main
from archbuilder.importers import ImportFailure, import_model
from archbuilder.importers.caffe import caffe_graph
from archbuilder.importers.caffemodel import CaffemodelError, read_caffemodel
from archbuilder.importers.fuse import fuse
from archbuilder.importers.prototxt import Message, PrototxtError, parse_prototxt

from .test_hostile_files import finishes

INPUT = 'name: "net"\ninput: "data"\ninput_shape { dim: 1 dim: 3 dim: 16 dim: 16 }\n'
CONV = 'layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 } }\n'


def _write(tmp_path, text: str, name: str = "net.prototxt"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _failure(path, **kwargs) -> ImportFailure:
    result = finishes(lambda: import_model(path, **kwargs))
    assert isinstance(result, ImportFailure), result
    return result


# -- readers -----------------------------------------------------------------------------------
@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe.caffemodel"
    os.mkfifo(path)
    return path


def test_a_fifo_caffemodel_or_prototxt_is_refused_without_blocking(tmp_path, fifo):
    prototxt = _write(tmp_path, INPUT + CONV)
    for failure in (_failure(prototxt, caffemodel=fifo), _failure(fifo.rename(tmp_path / "pipe.prototxt"))):
        assert "pipe." in str(failure) and "FIFO" in str(failure), failure


def test_dev_zero_behind_a_symlink_is_refused_not_read(tmp_path):
    prototxt = _write(tmp_path, INPUT + CONV)
    for name in ("zero.prototxt", "zero.caffemodel"):
        (tmp_path / name).symlink_to("/dev/zero")
    for failure in (
        _failure(tmp_path / "zero.prototxt"),
        _failure(prototxt, caffemodel=tmp_path / "zero.caffemodel"),
    ):
        assert "zero." in str(failure) and "character device" in str(failure), failure


def test_a_prototxt_over_its_cap_is_refused_while_reading(tmp_path):
    big = tmp_path / "big.prototxt"
    with big.open("wb") as file:
        file.truncate((16 << 20) + 1)  # sparse: nothing is written, 16 MiB + 1 are read
    assert "larger than 16 MiB" in str(_failure(big))


def test_the_cli_says_a_fifo_caffemodel_in_one_line(tmp_path, fifo, capsys):
    prototxt = _write(tmp_path, INPUT + CONV)
    weights = tmp_path / "w.pt"
    code = finishes(
        lambda: main(["import", str(prototxt), "--caffemodel", str(fifo), "--weights", str(weights)])
    )
    err = capsys.readouterr().err
    assert code == 1 and len(err.splitlines()) == 1 and "FIFO" in err and str(fifo) in err
    assert not weights.exists()


# -- malformed layers: one located ImportFailure each ---------------------------------------------
def _layer(body: str) -> str:
    return f'layer {{ name: "bad" {body} }}\n'


POOL = 'type: "Pooling" bottom: "conv" top: "pool" '
CONV_BAD = 'type: "Convolution" bottom: "data" top: "bad" '
MALFORMED = {
    "pool stride 0": (POOL + "pooling_param { kernel_size: 2 stride: 0 }", "stride: 0 is below 1"),
    "include a string": (POOL + 'include: "TEST"', "include: 'TEST' is not a message"),
    "kernel a string": (CONV_BAD + 'convolution_param { num_output: 2 kernel_size: "3" }', "not an integer"),
    "kernel a fraction": (
        CONV_BAD + "convolution_param { num_output: 2 kernel_size: 2.5 }",
        "not an integer",
    ),
    "pad negative": (CONV_BAD + "convolution_param { num_output: 2 pad: -1 }", "pad: -1 is below 0"),
    "num_output 0": (CONV_BAD + "convolution_param { num_output: 0 }", "num_output: 0 is below 1"),
    "num_output twice": (
        CONV_BAD + "convolution_param { num_output: 2 num_output: 3 }",
        "num_output is given 2 times",
    ),
    "kernel three axes": (
        CONV_BAD + "convolution_param { num_output: 2 kernel_size: 1 kernel_size: 1 kernel_size: 1 }",
        "kernel_size is given 3 values",
    ),
    "param a number": (CONV_BAD + "convolution_param: 5", "convolution_param: 5 is not a message"),
    "group not dividing": (
        CONV_BAD + "convolution_param { num_output: 4 group: 2 }",
        "group: 2 does not divide",
    ),
    "huge number": (CONV_BAD + "convolution_param { num_output: 1e999 }", "inf is not an integer"),
    "window over input": (POOL + "pooling_param { kernel_size: 16 }", "larger than its input"),
    "pad not below kernel": (
        POOL + "pooling_param { kernel_size: 2 pad: 2 }",
        "not smaller than kernel_size",
    ),
    "dunder type": ('type: "__Init__" bottom: "conv" top: "bad"', "no archbuilder layer computes it"),
    "empty type": ('type: [] bottom: "conv" top: "bad"', "no archbuilder layer computes it"),
    "unknown type": ('type: "Deconvolution" bottom: "conv" top: "bad"', "no archbuilder layer computes it"),
    "bottom never written": ('type: "ReLU" bottom: "nowhere" top: "bad"', "nowhere, which no earlier layer"),
    "no bottom": ('type: "ReLU" top: "bad"', "it reads 0 blobs"),
    "two bottoms": ('type: "ReLU" bottom: "conv" bottom: "data" top: "bad"', "it reads 2 blobs"),
    "eltwise of two shapes": ('type: "Eltwise" bottom: "conv" bottom: "data" top: "bad"', "differ in shape"),
    "concat of two sizes": ('type: "Concat" bottom: "conv" bottom: "data" top: "bad"', "differ in size"),
    "loss weight a word": (
        'type: "SoftmaxWithLoss" bottom: "conv" loss_weight: heavy',
        "not a finite number",
    ),
    "dropout ratio 2": (
        'type: "Dropout" bottom: "conv" top: "bad" dropout_param { dropout_ratio: 2 }',
        "[0, 1)",
    ),
}


@pytest.mark.parametrize(("body", "words"), MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_layer_is_an_import_failure_naming_it_and_its_line(tmp_path, body, words):
    failure = _failure(_write(tmp_path, INPUT + CONV + "\n" + _layer(body)))
    (problem,) = failure.problems
    assert (problem.node, words in problem.reason, problem.reason.endswith("(line 6)")) == ("bad", True, True)
    assert str(tmp_path / "net.prototxt") in str(failure)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (INPUT.replace("dim: 3", 'dim: "x"'), "dim: 'x' is not an integer"),
        (INPUT.replace("dim: 3", "dim: -3"), "dim: -3 is below 1"),
        (INPUT.replace('name: "net"', "name { a: 1 }"), "name: a message { ... } is not a name"),
        (INPUT + "layer: 5\n", "layer 1 is 5, not a message"),
        (INPUT + "input_shape: 7\n", "input_shape: 7 is not a message"),
    ],
)
def test_a_malformed_network_field_is_an_import_failure(tmp_path, text, words):
    failure = _failure(_write(tmp_path, text + CONV))
    assert words in str(failure), failure


def test_names_like_the_importers_own_stay_apart(tmp_path):
    """Tops named as the importer names its in-place tensors (``x#1``) do not merge with them."""
    text = INPUT + CONV.replace('top: "conv"', 'top: "data#1"')
    text += 'layer { name: "relu" type: "ReLU" bottom: "data" top: "data" }\n'
    text += 'layer { name: "sum" type: "Eltwise" bottom: "data" bottom: "data#1" top: "sum" }\n'
    failure = _failure(_write(tmp_path, text))
    assert "differ in shape: 3×16×16, 4×14×14" in str(failure)


def test_a_prototxt_of_deep_lists_or_too_many_messages_is_a_prototxt_error(monkeypatch):
    with pytest.raises(PrototxtError, match="expected a value, found '\\['"):
        parse_prototxt("a: " + "[" * 100_000)
    monkeypatch.setattr("archbuilder.importers.prototxt.MAX_MESSAGES", 10)
    with pytest.raises(PrototxtError, match=r"line 2, column \d+: more than 10 messages"):
        parse_prototxt("a {}\nb { c {} d {} e {} f {} g {} h {} i {} j {} }")


# -- work that grows with the file -----------------------------------------------------------------
def _net(layers: list[Message]) -> Message:
    net = Message()
    net.update(name=["big"], input=["data"], input_dim=[1, 3, 8, 8], layer=layers)
    return net


def _message(line: int, **fields) -> Message:
    message = Message(line)
    message.update({key: value if isinstance(value, list) else [value] for key, value in fields.items()})
    return message


def _timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


@pytest.mark.slow
def test_batchnorm_scale_pairs_convert_in_linear_time():
    """30,000 in-place BatchNorm + Scale pairs (the issue's file took over 60 s): the graph and
    its fused layers in seconds, the Scale's BatchNorm found without a scan of all nodes."""
    layers = []
    for i in range(30_000):
        layers.append(_message(i, name=f"bn{i}", type="BatchNorm", bottom="data", top="data"))
        scale = _message(i, bias_term=True)
        layers.append(_message(i, name=f"sc{i}", type="Scale", bottom="data", top="data", scale_param=scale))
    assert _timed(lambda: fuse(caffe_graph(_net(layers)))) < 20


@pytest.mark.slow
def test_inner_products_of_many_branches_flatten_in_linear_time():
    """20,000 conv → InnerProduct branches: each InnerProduct's flatten is placed without
    rebuilding the producers and readers of the whole graph."""
    layers = []
    for i in range(20_000):
        conv = _message(i, num_output=1)
        layers.append(
            _message(i, name=f"c{i}", type="Convolution", bottom="data", top=f"c{i}", convolution_param=conv)
        )
        layers.append(_message(i, name=f"drop{i}", type="Dropout", bottom=f"c{i}", top=f"c{i}"))
        fc = _message(i, num_output=1)
        layers.append(
            _message(
                i, name=f"fc{i}", type="InnerProduct", bottom=f"c{i}", top=f"fc{i}", inner_product_param=fc
            )
        )
    graph = finishes(lambda: caffe_graph(_net(layers)), seconds=20)
    assert [node.op for node in graph.nodes[:4]] == ["conv", "flatten", "dropout", "linear"]


def test_the_layer_budget_is_located_and_partial_keeps_what_came_before(tmp_path, monkeypatch):
    monkeypatch.setattr("archbuilder.importers.caffe.MAX_LAYERS", 3)
    relus = "".join(f'layer {{ name: "r{i}" type: "ReLU" bottom: "conv" top: "conv" }}\n' for i in range(3))
    path = _write(tmp_path, INPUT + CONV + relus)
    assert "more than 3 layers (line 7); the importer reads no more" in str(_failure(path))
    kept = import_model(path, partial=True).spec.blocks  # r0 is the conv's activation; r2 is left out
    assert [layer.name for layer in kept] == ["conv", "r1"]


# -- caffemodel bytes -----------------------------------------------------------------------------
def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        out.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _unpacked(key: int, values: np.ndarray) -> bytes:
    """Each value as its own field: the one-byte ``key``, then its little-endian bytes."""
    records = np.empty((values.size, 1 + values.itemsize), np.uint8)
    records[:, 0] = key
    records[:, 1:] = values.view(np.uint8).reshape(values.size, values.itemsize)
    return records.tobytes()


def _model(blob: bytes) -> bytes:
    """A NetParameter with one layer ``conv`` holding ``blob``'s fields."""
    return _bytes_field(100, _bytes_field(1, b"conv") + _bytes_field(7, blob))


def _shape(*dims: int) -> bytes:
    return _bytes_field(7, b"".join(_varint(1 << 3) + _varint(d) for d in dims))


def test_millions_of_unpacked_floats_read_at_numpy_speed():
    """4 million floats each written as its own field (old writers): read in well under the
    seconds a field-by-field decoder takes, every value in place."""
    values = np.arange(4_000_000, dtype=np.float32)
    raw = _model(_shape(4_000_000) + _unpacked(0x2D, values))
    blobs = finishes(read_caffemodel, raw, seconds=3)
    np.testing.assert_array_equal(blobs["conv"][0], values)


def test_unpacked_and_packed_data_keep_their_order_and_doubles_read_too():
    first, second = np.float32([1.5, -2]), np.float32([3, 4, 5])
    raw = _model(_shape(5) + _unpacked(0x2D, first) + _bytes_field(5, second.tobytes()))
    np.testing.assert_array_equal(read_caffemodel(raw)["conv"][0], [1.5, -2, 3, 4, 5])
    doubles = np.float64([0.25, 7])
    np.testing.assert_array_equal(
        read_caffemodel(_model(_shape(2) + _unpacked(0x41, doubles)))["conv"][0], doubles
    )


def test_interleaved_fields_past_the_budget_are_refused(monkeypatch):
    """Unpacked data and diff alternating (no run to read at once) are decoded one field at a
    time, so there is a budget of fields."""
    monkeypatch.setattr("archbuilder.importers.caffemodel.MAX_FIELDS", 1000)
    pairs = b"".join(_unpacked(0x2D, np.float32([i])) + _unpacked(0x35, np.float32([0])) for i in range(600))
    with pytest.raises(CaffemodelError, match=r"more than 1,000 fields \(at byte \d+\)"):
        read_caffemodel(_model(_shape(600) + pairs))


def test_a_shape_of_more_than_32_axes_is_refused():
    with pytest.raises(CaffemodelError, match="conv blob 0: a shape of more than 32 dimensions"):
        read_caffemodel(_model(_bytes_field(7, _bytes_field(1, b"\x01" * 100_000))))


def test_a_network_of_no_layers_is_an_import_failure(tmp_path):
    """Found by the fuzzer: a file cut after its input crashed the spec writer."""
    path = _write(tmp_path, INPUT)
    assert "no layer computes the network's output (it is the input)" in str(_failure(path))
    assert "nothing before it to import" in str(_failure(path, partial=True))
