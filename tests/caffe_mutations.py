"""Hostile Caffe files for the fuzzers: BVLC GoogLeNet's deploy prototxt and a small net's
caffemodel, mutated the way a careless tool or an attacker would (hypothesis strategies), and
the check every case must pass: a spec or an ImportFailure naming the file, in seconds.

Used by tests/test_fuzz_importers.py (a few dozen cases) and bench/fuzz_importers.py (bulk).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = (ROOT / "tests" / "data" / "import" / "bvlc_googlenet_deploy.prototxt").read_text()
HEAD, *LAYERS = DEPLOY.split("layer {")
LAYERS = [f"layer {{{layer}" for layer in LAYERS]

# What replaces a value: numbers Caffe refuses or that overflow, words where numbers go and the
# other way round, messages and lists where scalars go, nothing at all.
TOKENS = st.one_of(
    st.integers(-3, 3).map(str),
    st.sampled_from(
        ["2147483648", "9" * 400, "1e999", "-1e999", "inf", "-inf", "nan", "0.5", "-0", "1e-300"]
    ),
    st.sampled_from(['"x"', '""', "MAX", "AVE", "TEST", "true", "data", '"data"', '"__init__"', '"a\\nb"']),
    st.sampled_from(["{ }", "{ phase: TEST }", "[1, 2, 3]", "[]", "", ":", "{", "}", "#"]),
)
FIELDS = st.sampled_from(
    [
        "stride: 0",
        "kernel_size: 0",
        "pad: -1",
        "num_output: 0",
        "kernel_size: 1 kernel_size: 2 kernel_size: 3",
        'include: "TEST"',
        "include { phase: TEST }",
        "exclude { phase: TRAIN }",
        'bottom: "nowhere"',
        'bottom: "data"',
        'top: "data"',
        'top: "data#1"',
        'type: "Deconvolution"',
        'name: "x" name: "y"',
        "convolution_param: 5",
        "pooling_param { global_pooling: true }",
        "loss_weight: heavy",
    ]
)
VALUE = re.compile(r"(?<=:)[ \t]*[^\s{}]+")


@st.composite
def prototxt_texts(draw) -> str:
    """BVLC GoogLeNet's deploy file after 1 to 4 mutations: layers dropped, duplicated or
    swapped, values replaced, fields added, braces removed or added, the text cut short."""
    layers = list(LAYERS)
    text = None
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["drop", "duplicate", "swap", "value", "field", "brace", "cut"]))
        index = draw(st.integers(0, len(layers) - 1))
        if kind == "drop" and len(layers) > 1:
            del layers[index]
        elif kind == "duplicate":
            layers.insert(draw(st.integers(0, len(layers))), layers[index])
        elif kind == "swap":
            other = draw(st.integers(0, len(layers) - 1))
            layers[index], layers[other] = layers[other], layers[index]
        elif kind == "value":
            values = list(VALUE.finditer(layers[index]))
            if values:
                match = draw(st.sampled_from(values))
                layer = layers[index]
                layers[index] = f"{layer[: match.start()]} {draw(TOKENS)}{layer[match.end() :]}"
        elif kind == "field":  # into the layer or one of its parameter messages
            layer = layers[index]
            at = draw(st.sampled_from([i + 1 for i, char in enumerate(layer) if char == "{"] or [0]))
            layers[index] = f"{layer[:at]} {draw(FIELDS)}\n{layer[at:]}"
        elif kind == "brace":
            layer = layers[index]
            at = draw(st.integers(0, len(layer)))
            braces = [i for i, char in enumerate(layer) if char in "{}"]
            if draw(st.booleans()) and braces:
                at = draw(st.sampled_from(braces))
                layers[index] = layer[:at] + layer[at + 1 :]
            else:
                layers[index] = layer[:at] + draw(st.sampled_from("{}")) + layer[at:]
        elif kind == "cut":
            text = HEAD + "".join(layers)
            text = text[: draw(st.integers(0, len(text)))]
    return text if text is not None else HEAD + "".join(layers)


SMALL = """
name: "small"
input: "data"
input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 4 kernel_size: 3 pad: 1 bias_term: false } }
layer { name: "conv1/bn" type: "BatchNorm" bottom: "conv1" top: "conv1" }
layer { name: "conv1/scale" type: "Scale" bottom: "conv1" top: "conv1" scale_param { bias_term: true } }
layer { name: "fc" type: "InnerProduct" bottom: "conv1" top: "fc" inner_product_param { num_output: 5 } }
"""


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        out.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _blob(*shape: int) -> bytes:
    import numpy as np

    count = int(np.prod(shape))
    values = np.linspace(-1, 1, count, dtype=np.float32).tobytes()
    return _field(7, _field(1, b"".join(_varint(d) for d in shape))) + _field(5, values)


def _layer(name: str, *blobs: bytes) -> bytes:
    return _field(100, _field(1, name.encode()) + b"".join(_field(7, blob) for blob in blobs))


# SMALL's weights, as Caffe writes them (layer = 100, name = 1, blobs = 7; shape = 7, data = 5).
SMALL_WEIGHTS = (
    _layer("conv1", _blob(4, 3, 3, 3))
    + _layer("conv1/bn", _blob(4), _blob(4), _blob(1))
    + _layer("conv1/scale", _blob(4), _blob(4))
    + _layer("fc", _blob(5, 256), _blob(5))
)
WIRE = st.sampled_from(
    [
        b"\xff" * 11,  # a varint that never ends
        b"\xa2\x06\xff\xff\xff\xff\x0f",  # a layer of 4 GiB
        b"\x3a\x05\x0a\x03\x08\xff\x7f",  # a blob shape of 16,383
        b"\x3a\x0c\x0a\x0a" + b"\x08\x02" * 5,  # five dims
        b"\x2d\x00\x00\x80\x3f" * 8,  # unpacked floats
        b"\x41" + b"\x00" * 8,  # an unpacked double
        b"\x0b",  # a group (wire type 3)
        b"\x0a\x00",  # an empty name
    ]
)


@st.composite
def caffemodel_bytes(draw) -> bytes:
    """SMALL_WEIGHTS after 1 to 4 mutations: bytes flipped, replaced, inserted, removed or
    duplicated, wire-format pieces spliced in, the file cut short."""
    data = bytearray(SMALL_WEIGHTS)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "byte", "insert", "remove", "duplicate", "wire", "cut"]))
        at = draw(st.integers(0, len(data)))
        if kind == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "remove":
            del data[at : at + draw(st.integers(1, 16))]
        elif kind == "duplicate":
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
        elif kind == "wire":
            data[at:at] = draw(WIRE)
        elif kind == "cut":
            del data[at:]
    return bytes(data)


def _outcome(function, paths: tuple[Path, ...], time_limit: float) -> str:
    """How ``function()`` ends: "imported", "refused" (an ImportFailure naming one of ``paths``),
    or the failure the fuzzers look for."""
    from archbuilder.importers import ImportFailure

    start = time.perf_counter()
    try:
        function()
        outcome = "imported"
    except ImportFailure as exc:
        located = any(str(exc).startswith(str(path)) for path in paths)
        outcome = "refused" if located else f"unlocated refusal: {exc}"
    except Exception as exc:  # anything else is what the fuzzers look for
        outcome = f"traceback: {type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - start
    if seconds > time_limit and outcome in ("imported", "refused"):
        return f"slow: {seconds:.1f} s"
    return outcome


def check_prototxt(text: str, folder: Path, *, partial: bool, time_limit: float) -> str:
    """How importing ``text`` as ``folder/net.prototxt`` ends (see :func:`_outcome`)."""
    from archbuilder.importers import import_model

    path = folder / "net.prototxt"
    path.write_text(text)
    return _outcome(lambda: import_model(path, partial=partial), (path,), time_limit)


def check_caffemodel(raw: bytes, folder: Path, *, time_limit: float) -> str:
    """How importing SMALL with ``raw`` as its ``--caffemodel`` ends (see :func:`_outcome`)."""
    from archbuilder.importers import import_model

    prototxt, weights = folder / "small.prototxt", folder / "small.caffemodel"
    prototxt.write_text(SMALL)
    weights.write_bytes(raw)
    return _outcome(lambda: import_model(prototxt, caffemodel=weights), (prototxt, weights), time_limit)
