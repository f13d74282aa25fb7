"""The bytes of an ONNX model and of its tensors, read as untrusted input.

The model file is read only when it is a regular file of at most :data:`MAX_ONNX_BYTES`
(protobuf's own limit), judged by its size before reading. Every tensor (initializers, and
tensor-valued attributes of any node, in subgraphs too) is checked from its declared dims
before anything is allocated: no negative dims, at most :data:`MAX_TENSOR_BYTES` together,
and data of exactly the declared length. External data (``data_location: EXTERNAL``) is
read here, never by onnx: its ``location`` must resolve (symbolic links followed) inside
the model's own folder or a folder the user allowed, name a regular file, and hold the
declared bytes at ``offset``; it is never looked for in the working folder.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from archbuilder.analysis.limits import DEFAULT_MAX_PARAM_BYTES, format_bytes
from archbuilder.core.files import UnreadableFile, open_regular
from archbuilder.importers.onnx_wiring import all_graphs, node_label, quoted, refusal

__all__ = ["MAX_ONNX_BYTES", "MAX_TENSOR_BYTES", "load_tensors", "read_onnx"]

MAX_ONNX_BYTES = 2 << 30  # protobuf cannot parse a larger message
MAX_TENSOR_BYTES = DEFAULT_MAX_PARAM_BYTES  # every tensor together, as declared

# Bytes per element of the types whose data length is checked exactly; others are counted
# at 16 bytes an element (the widest, complex128) for the cap, and converted by onnx.
_ITEM_BYTES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2}
_WIDEST = 16
_TYPED_FIELD = {1: "float_data", 11: "double_data", 7: "int64_data", 12: "uint64_data", 13: "uint64_data"}


def read_onnx(path: Path) -> bytes:
    """The bytes of the model file ``path``; ImportFailure unless it is a regular file within the cap."""
    try:
        with open_regular(path) as file:
            size = os.fstat(file.fileno()).st_size
            if size > MAX_ONNX_BYTES:
                raise refusal(str(path), _too_big(size))
            data = file.read(MAX_ONNX_BYTES + 1)
    except UnreadableFile as exc:
        raise refusal(str(path), exc.reason) from None
    except OSError as exc:
        raise refusal(str(path), f"cannot read: {exc.strerror}") from None
    if len(data) > MAX_ONNX_BYTES:  # it grew while being read
        raise refusal(str(path), _too_big(len(data)))
    return data


def _too_big(size: int) -> str:
    return (
        f"the file is {format_bytes(size)}, over the {format_bytes(MAX_ONNX_BYTES)} an ONNX model "
        "can hold (protobuf's limit; larger models keep their weights as external data)"
    )


def load_tensors(model: Any, source: str, folder: Path | None, allowed_roots: Iterable[Path] = ()) -> None:
    """Check every tensor of ``model`` and read its external data into it (in place).

    ``folder`` is the model file's folder (None for a model that is not a file: then any
    external data is refused); ``allowed_roots`` are further folders external data may be in.
    """
    tensors = list(_tensors(model, source))
    total = 0
    for where, tensor in tensors:
        size = _declared_bytes(tensor, where, source)
        total += size
        if total > MAX_TENSOR_BYTES:
            raise refusal(
                source,
                f"{where} declares {format_bytes(size)}, bringing the tensors to {format_bytes(total)}, "
                f"over the limit of {format_bytes(MAX_TENSOR_BYTES)}",
            )
    roots = None
    for where, tensor in tensors:
        if tensor.data_location == tensor.EXTERNAL:
            if folder is None:
                raise refusal(source, f"{where} keeps its data in a file; import the model by its path")
            roots = roots or [folder.resolve(), *(Path(root).resolve() for root in allowed_roots)]
            _read_external(tensor, where, source, folder, roots)
        else:
            _check_data(tensor, where, source)


def _tensors(model: Any, source: str) -> Iterator[tuple[str, Any]]:
    """Every tensor of the model with where it is (``initializer 'w'``); sparse ones refused."""
    for graph in all_graphs(model, source):
        if graph.sparse_initializer:
            name = graph.sparse_initializer[0].values.name
            raise refusal(source, f"initializer {quoted(name)} is sparse; sparse tensors are not supported")
        for tensor in graph.initializer:
            yield f"initializer {quoted(tensor.name)}", tensor
        for node in graph.node:
            for attribute in node.attribute:
                where = f"node {node_label(node)}"
                if attribute.HasField("sparse_tensor") or attribute.sparse_tensors:
                    message = (
                        f"{where}: sparse tensors are not supported (attribute {quoted(attribute.name)})"
                    )
                    raise refusal(source, message)
                values = [attribute.t] if attribute.HasField("t") else []
                for tensor in [*values, *attribute.tensors]:
                    yield f"tensor {quoted(tensor.name or attribute.name)} of {where}", tensor


def _declared_bytes(tensor: Any, where: str, source: str) -> int:
    """The bytes ``tensor``'s dims and type declare; ImportFailure for a negative dim or over the cap."""
    dims = list(tensor.dims)
    if any(dim < 0 for dim in dims):
        raise refusal(source, f"{where} has a negative dim: {dims}")
    item = _ITEM_BYTES.get(tensor.data_type, _WIDEST)
    extent = math.prod(dim for dim in dims if dim)  # numpy must hold the shape even where a dim is 0
    if extent * item > MAX_TENSOR_BYTES:
        raise refusal(
            source,
            f"{where} declares dims {dims}: {extent:,} elements, {format_bytes(extent * item)}, "
            f"over the limit of {format_bytes(MAX_TENSOR_BYTES)}",
        )
    return math.prod(dims) * item


def _check_data(tensor: Any, where: str, source: str) -> None:
    """The tensor's own data holds exactly its declared elements (for the types counted here)."""
    item = _ITEM_BYTES.get(tensor.data_type)
    if item is None:
        return
    elements = math.prod(tensor.dims)
    if tensor.HasField("raw_data"):
        if len(tensor.raw_data) != elements * item:
            raise refusal(
                source,
                f"{where} holds {len(tensor.raw_data):,} bytes of data, but its dims {list(tensor.dims)} "
                f"declare {elements * item:,}",
            )
        return
    held = len(getattr(tensor, _TYPED_FIELD.get(tensor.data_type, "int32_data")))
    if held != elements:
        what = "no data" if held == 0 else f"{held:,} values"
        raise refusal(
            source, f"{where} holds {what}, but its dims {list(tensor.dims)} declare {elements:,} elements"
        )


def _read_external(tensor: Any, where: str, source: str, folder: Path, roots: list[Path]) -> None:
    """Read ``tensor``'s external data into its ``raw_data``, confined to ``roots``."""
    entries = {entry.key: entry.value for entry in tensor.external_data}
    location = entries.get("location", "")
    asked = f"{where} keeps its data in {quoted(location)}"
    try:
        offset = int(entries.get("offset", "0"))
        length = int(entries["length"]) if "length" in entries else None
    except ValueError:
        raise refusal(source, f"{asked}: its offset and length are not whole numbers") from None
    if offset < 0 or (length is not None and length < 0):
        raise refusal(source, f"{asked}: a negative offset or length")
    path = _confined(location, folder, roots, source, asked)
    try:
        with open_regular(path) as file:
            size = os.fstat(file.fileno()).st_size
            if offset > size:
                raise refusal(source, f"{asked}: offset {offset:,} is past its end ({size:,} bytes)")
            length = size - offset if length is None else length
            if offset + length > size:
                raise refusal(
                    source, f"{asked}: reads bytes {offset:,} to {offset + length:,} of a {size:,}-byte file"
                )
            expected = math.prod(tensor.dims) * _ITEM_BYTES.get(tensor.data_type, 0)
            if tensor.data_type in _ITEM_BYTES and length != expected:
                raise refusal(
                    source,
                    f"{asked}: {length:,} bytes from offset {offset:,}, but its dims {list(tensor.dims)} "
                    f"declare {expected:,} bytes",
                )
            if length > MAX_TENSOR_BYTES:
                raise refusal(
                    source,
                    f"{asked}: {format_bytes(length)}, over the limit of {format_bytes(MAX_TENSOR_BYTES)}",
                )
            file.seek(offset)
            data = file.read(length)
    except UnreadableFile as exc:
        raise refusal(source, f"{asked}: {exc.reason}") from None
    except OSError as exc:
        raise refusal(source, f"{asked}: cannot read: {exc.strerror}") from None
    if len(data) != length:  # the file shrank while being read
        raise refusal(source, f"{asked}: the file ended after {len(data):,} of {length:,} bytes")
    tensor.raw_data = data
    tensor.data_location = tensor.DEFAULT
    del tensor.external_data[:]


def _confined(location: str, folder: Path, roots: list[Path], source: str, asked: str) -> Path:
    """The real path of ``location`` (relative to the model's folder), when it is inside ``roots``."""
    if not location or "\0" in location:
        raise refusal(source, f"{asked}: not a file name")
    try:
        path = (folder / location).resolve(strict=True)
    except FileNotFoundError:
        raise refusal(source, f"{asked}: no such file beside the model ({folder / location})") from None
    except (RuntimeError, OSError):  # a symbolic link loop; Python < 3.13 raises RuntimeError
        raise refusal(source, f"{asked}: a symbolic link loop or an unreadable path") from None
    if not any(path == root or root in path.parents for root in roots):
        raise refusal(
            source,
            f"{asked}, which is {path}, outside the model's folder; the model's data must be beside it "
            "(allow another folder with --allow-path DIR, import_model(..., allowed_roots=[DIR]))",
        )
    return path
