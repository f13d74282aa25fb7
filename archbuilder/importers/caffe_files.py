"""Caffe files read for an import: a ``.prototxt`` parsed into the importers' graph, and a
``.caffemodel``'s blobs attached to its nodes as weights. Every file is read as a regular
file, capped, and a failure is an ImportFailure naming the file."""

from __future__ import annotations

import hashlib
from pathlib import Path

from archbuilder.core.files import UnreadableFile, read_regular
from archbuilder.importers.graph import Graph, ImportFailure, Unsupported

__all__ = ["MAX_PROTOTXT_BYTES", "attach_caffemodel", "caffe_file", "read_file"]

MAX_PROTOTXT_BYTES = 16 << 20  # text; BVLC GoogLeNet's train_val is 43 KiB


def read_file(path: Path, limit: int) -> bytes:
    """The bytes of regular file ``path``; ImportFailure where it cannot be read (a FIFO, a
    device, a folder, missing) or holds more than ``limit`` bytes (counted while reading)."""
    try:
        return read_regular(path, max_bytes=limit)
    except UnreadableFile as exc:
        raise ImportFailure(str(path), [Unsupported("(file)", "-", exc.reason)]) from None


def caffe_file(
    path: Path, phase: str, input_shape: tuple[int, int, int] | None, partial: bool
) -> tuple[Graph, str | None, bytes]:
    """The graph of a ``.prototxt``, the net's own name (if it gives one) and the file's bytes."""
    raw = read_file(path, MAX_PROTOTXT_BYTES)
    from archbuilder.importers.caffe import caffe_graph
    from archbuilder.importers.prototxt import PrototxtError, parse_prototxt

    try:
        net = parse_prototxt(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ImportFailure(
            str(path), [Unsupported("(file)", "-", "not UTF-8 text; a .prototxt is a text file")]
        ) from None
    except PrototxtError as exc:
        raise ImportFailure(
            str(path), [Unsupported("(file)", "-", f"not protobuf text format: {exc}")]
        ) from None
    graph = caffe_graph(net, phase=phase, input_shape=input_shape, partial=partial)
    names = [name for name in net.get("name", []) if isinstance(name, str)]  # else a problem in graph
    return graph, names[0] if names else None, raw


def attach_caffemodel(graph: Graph, path: Path) -> None:
    """Read ``path`` (a .caffemodel) into ``graph``'s nodes; ImportFailure naming what differs."""
    from archbuilder.importers.caffe_weights import attach_caffe_weights
    from archbuilder.importers.caffemodel import MAX_CAFFEMODEL_BYTES, CaffemodelError, read_caffemodel

    raw = read_file(path, MAX_CAFFEMODEL_BYTES)
    try:
        blobs = read_caffemodel(raw)
    except CaffemodelError as exc:
        raise ImportFailure(str(path), [Unsupported("(file)", "-", f"not a Caffe model: {exc}")]) from None
    problems = attach_caffe_weights(graph, blobs)
    if problems:
        raise ImportFailure(str(path), problems, weights=True)
    graph.notes.append(f'weights: "{path.name}", sha256 {hashlib.sha256(raw).hexdigest()}')
