"""Caffe weights on the importer graph: each layer's blobs (from a ``.caffemodel``) become its
node's weights, shapes checked against the layer.

Convolution: weight (out, in/groups, kh, kw) and bias; InnerProduct: weight (out, in) and
bias (older files write them 4-D, 1×1×out×in); BatchNorm: mean, variance and Caffe's moving
average scale factor (both divided by it, as Caffe does), with the Scale layer's gamma and
beta as the batch norm's weight and bias (1 and 0 without a Scale).
"""

from __future__ import annotations

import math
from typing import Any

from archbuilder.importers.graph import Graph, Node, ShapeError, Unsupported, infer_shapes

__all__ = ["attach_caffe_weights"]


class _Mismatch(Exception):
    pass


def _as(blob: Any, shape: tuple[int, ...], what: str) -> Any:
    """``blob`` in ``shape``: the same values, Caffe's legacy 4-D dims allowed."""
    if blob.size != math.prod(shape) or [d for d in blob.shape if d != 1] != [d for d in shape if d != 1]:
        raise _Mismatch(f"its {what} blob is {tuple(blob.shape)}; the layer needs {shape}")
    return blob.reshape(shape)


def _conv(node: Node, blobs: list[Any], channels: int) -> dict[str, Any]:
    a = node.attrs
    weights = {"weight": _as(blobs[0], (a["out"], channels // a["groups"], *a["kernel"]), "weight")}
    if a["bias"]:
        weights["bias"] = _as(blobs[1], (a["out"],), "bias")
    return weights


def _linear(node: Node, blobs: list[Any], features: int) -> dict[str, Any]:
    weights = {"weight": _as(blobs[0], (node.attrs["out"], features), "weight")}
    if node.attrs["bias"]:
        weights["bias"] = _as(blobs[1], (node.attrs["out"],), "bias")
    return weights


def _batchnorm(node: Node, blobs: list[Any], scale: list[Any] | None, channels: int) -> dict[str, Any]:
    import numpy as np

    factor = float(_as(blobs[2], (1,), "scale factor")[0]) if len(blobs) > 2 else 1.0
    factor = 0.0 if factor == 0 else 1.0 / factor  # Caffe's BatchNormLayer::Forward_cpu
    weights = {
        "running_mean": _as(blobs[0], (channels,), "mean") * factor,
        "running_var": _as(blobs[1], (channels,), "variance") * factor,
    }
    if scale is None:
        weights.update(weight=np.ones(channels, np.float32), bias=np.zeros(channels, np.float32))
    else:
        weights.update(
            weight=_as(scale[0], (channels,), "Scale"), bias=_as(scale[1], (channels,), "Scale bias")
        )
    return weights


_COUNTS = {"conv": (1, 2), "linear": (1, 2), "bn": (2, 2)}  # blobs needed without, with bias


def _weights(node: Node, blobs: dict[str, list[Any]], shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    mine = blobs.get(node.name)
    if mine is None:
        raise _Mismatch("the caffemodel has no weights for it")
    least = _COUNTS[node.op][1 if node.attrs.get("bias") else 0]
    if len(mine) < least:
        raise _Mismatch(f"the caffemodel has {len(mine)} blobs for it, not {least}")
    if node.op == "conv":
        return _conv(node, mine, shapes[node.inputs[0]][0])
    if node.op == "linear":
        return _linear(node, mine, shapes[node.inputs[0]][0])
    scale_layer = node.attrs.get("scale_layer")
    scale = blobs.get(scale_layer) if scale_layer else None
    if scale_layer and (scale is None or len(scale) < 2):
        raise _Mismatch(f"the caffemodel has no gamma and beta for its Scale layer {scale_layer}")
    return _batchnorm(node, mine, scale, shapes[node.inputs[0]][0])


def attach_caffe_weights(graph: Graph, blobs: dict[str, list[Any]]) -> list[Unsupported]:
    """Give every conv, linear and batch norm node of ``graph`` its layer's blobs; the
    problems found (a missing layer, a shape that differs), every one of them."""
    try:
        shapes = infer_shapes(graph)
    except ShapeError as exc:  # the network itself does not fit together: no layer to weigh
        graph.has_weights = False
        return [exc.problem]
    problems = []
    for node in graph.nodes:
        if node.op not in _COUNTS:
            continue
        try:
            node.weights = _weights(node, blobs, shapes)
        except _Mismatch as exc:
            problems.append(Unsupported(node.name, node.source_op or node.op, str(exc)))
    graph.has_weights = not problems
    return problems
