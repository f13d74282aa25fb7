"""Hostile ONNX graphs for the importer fuzzers: small models built with ``onnx.helper``.

:func:`onnx_models` draws a model mixing Conv, Relu, MaxPool, Concat, Identity, Constant,
Gemm and Flatten with random attributes (wrong types and out-of-range values included),
random initializer dims (negative, huge, or with data of the wrong length) and random
wiring (a node may read a tensor nobody writes, its own output, or a later node's).
:func:`check_onnx` imports one and says how it ended.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st

OPS = ["Conv", "Relu", "MaxPool", "Concat", "Identity", "Constant", "Gemm", "Flatten"]

small_ints = st.integers(-2, 5)
attribute_values = st.one_of(
    st.lists(small_ints, min_size=0, max_size=5),
    small_ints,
    st.floats(-4, 4),
    st.just(float("nan")),
    st.text(max_size=4),
    st.lists(st.floats(-2, 2), min_size=1, max_size=3),
)
dims = st.one_of(
    st.lists(st.integers(1, 4), min_size=1, max_size=4),
    st.lists(st.sampled_from([-1, 0, 1, 3, 2**31, 2**40]), min_size=1, max_size=4),
)


@st.composite
def _tensor(draw: Any, name: str) -> Any:
    """An initializer or Constant value: usually consistent, sometimes not (dims vs. data)."""
    from onnx import TensorProto

    shape = draw(dims)
    count = int(np.prod(shape)) if all(0 <= d <= 64 for d in shape) else 0
    kind = draw(st.sampled_from(["raw", "floats", "wrong_length", "no_data", "int64"]))
    if kind == "raw":
        raw = np.ones(count, np.float32).tobytes()
        return TensorProto(name=name, data_type=TensorProto.FLOAT, dims=shape, raw_data=raw)
    if kind == "floats":
        return TensorProto(name=name, data_type=TensorProto.FLOAT, dims=shape, float_data=[0.25] * count)
    if kind == "wrong_length":
        extra = draw(st.integers(1, 7))
        tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=shape)
        tensor.raw_data = b"\x00" * (4 * count + extra)
        return tensor
    if kind == "int64":
        return TensorProto(name=name, data_type=TensorProto.INT64, dims=shape, int64_data=[1] * count)
    return TensorProto(name=name, data_type=TensorProto.FLOAT, dims=shape)


@st.composite
def _node(draw: Any, index: int, tensors: list[str], inits: list[Any]) -> Any:
    from onnx import AttributeProto, helper

    op = draw(st.sampled_from(OPS))
    name = f"n{index}"
    output = f"t{index}"
    wiring = [*tensors, output, f"t{index + 1}", "nowhere"]
    pick = st.sampled_from(tensors) if draw(st.integers(0, 9)) else st.sampled_from(wiring)
    attrs: dict[str, Any] = {}
    if op == "Constant":
        return helper.make_node(op, [], [output], name=name, value=draw(_tensor(f"{name}.value")))
    inputs = [draw(pick)]
    if op in ("Conv", "Gemm"):
        weight = f"{name}.weight"
        inits.append(draw(_tensor(weight)))
        inputs.append(weight)
        if draw(st.booleans()):
            inits.append(draw(_tensor(f"{name}.bias")))
            inputs.append(f"{name}.bias")
    if op == "Concat":
        inputs += [draw(pick) for _ in range(draw(st.integers(0, 2)))]
        attrs["axis"] = draw(st.integers(-5, 5))
    names = {
        "Conv": ["kernel_shape", "pads", "strides", "dilations", "group", "auto_pad"],
        "MaxPool": ["kernel_shape", "pads", "strides", "ceil_mode", "dilations"],
        "Gemm": ["transA", "transB", "alpha", "beta"],
        "Flatten": ["axis"],
    }.get(op, [])
    for attribute in (
        draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names))) if names else []
    ):
        attrs[attribute] = draw(attribute_values)
    node = helper.make_node(op, inputs, [output], name=name)
    for key, value in attrs.items():
        empty = isinstance(value, list) and not value  # onnx cannot tell the type of []
        node.attribute.append(
            helper.make_attribute(key, value, attr_type=AttributeProto.INTS if empty else None)
        )
    return node


@st.composite
def onnx_models(draw: Any) -> bytes:
    """The bytes of a small, often malformed, ONNX model with one N×C×H×W input ``x``."""
    from onnx import TensorProto, helper

    shape = [draw(st.integers(1, 4)), draw(st.integers(1, 8)), draw(st.integers(1, 8))]
    inits: list[Any] = []
    nodes = []
    tensors = ["x"]
    for index in range(draw(st.integers(1, 6))):
        node = draw(_node(index, tensors, inits))
        nodes.append(node)
        tensors.append(node.output[0])
    output = draw(st.sampled_from(tensors[1:])) if draw(st.integers(0, 4)) else tensors[-1]
    graph = helper.make_graph(
        nodes,
        draw(st.sampled_from(["g", "", "main_graph"])),
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *shape])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
        inits,
    )
    opset = draw(st.sampled_from([11, 13, 17]))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return model.SerializeToString()


def check_onnx(data: bytes, folder: Path, *, partial: bool, time_limit: float) -> str:
    """How importing ``data`` as ``folder/model.onnx`` ends: "imported", "refused", or the failure."""
    from archbuilder.importers import ImportFailure, import_model

    path = folder / "model.onnx"
    path.write_bytes(data)
    start = time.perf_counter()
    try:
        import_model(path, partial=partial)
        outcome = "imported"
    except ImportFailure as exc:
        outcome = "refused" if str(exc).startswith(str(path)) else f"unlocated refusal: {exc}"
    except Exception as exc:  # anything else is the failure the fuzzer looks for
        outcome = f"traceback: {type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - start
    if seconds > time_limit and outcome in ("imported", "refused"):
        return f"slow: {seconds:.1f} s"
    return outcome
