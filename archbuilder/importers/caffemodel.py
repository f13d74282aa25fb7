"""Caffe weights (``.caffemodel``, a binary ``NetParameter``) read without Caffe or protoc.

A small decoder of protobuf's wire format for the few fields weights need: the layers
(``layer`` = 100, or the V1 ``layers`` = 2 of older files), each layer's ``name`` and
``blobs``, and each blob's ``shape`` (or the legacy ``num``/``channels``/``height``/``width``)
and ``data`` (or ``double_data``). Every other field is skipped by its length. The work is
bounded by the file: lengths are checked against the bytes left, a blob's element count
must match its data, and the caller limits the file size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_CAFFEMODEL_BYTES", "CaffemodelError", "read_caffemodel"]

MAX_CAFFEMODEL_BYTES = 2 << 30  # the largest Caffe model zoo files are about 0.6 GiB
_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5
_NET_LAYER, _NET_V1_LAYERS = 100, 2
_LAYER_NAME, _LAYER_BLOBS = 1, 7
_V1_NAME, _V1_BLOBS = 4, 6
_BLOB_LEGACY = {1: 0, 2: 1, 3: 2, 4: 3}  # num, channels, height, width
_BLOB_DATA, _BLOB_SHAPE, _BLOB_DOUBLE = 5, 7, 8


class CaffemodelError(ValueError):
    """The bytes are not a Caffe NetParameter the importer can read; the message says where."""


@dataclass
class _Field:
    number: int
    wire: int
    value: Any  # an int (varint, fixed) or a memoryview (length-delimited)


def _varint(data: memoryview, at: int) -> tuple[int, int]:
    result = shift = 0
    for index in range(at, min(at + 10, len(data))):
        byte = data[index]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, index + 1
        shift += 7
    raise CaffemodelError(f"a varint at byte {at} runs past its 10 bytes or the end")


def _fields(data: memoryview):
    """The (number, wire type, value) of each field of one message's bytes."""
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, at = _varint(data, at)
        elif wire in (_FIXED64, _FIXED32):
            size = 8 if wire == _FIXED64 else 4
            if at + size > len(data):
                raise CaffemodelError(f"field {number} at byte {at} runs past the end")
            value, at = int.from_bytes(data[at : at + size], "little"), at + size
        elif wire == _BYTES:
            size, at = _varint(data, at)
            if size > len(data) - at:
                raise CaffemodelError(
                    f"field {number} at byte {at} says {size} bytes; {len(data) - at} are left"
                )
            value, at = data[at : at + size], at + size
        else:
            raise CaffemodelError(f"field {number} has wire type {wire} (groups are not used by Caffe)")
        yield _Field(number, wire, value)


def _packed_ints(field: _Field) -> list[int]:
    if field.wire == _VARINT:
        return [field.value]
    values, at = [], 0
    while at < len(field.value):
        value, at = _varint(field.value, at)
        values.append(value)
    return values


def _blob(data: memoryview, where: str) -> Any:
    import numpy as np

    legacy, shape = [1, 1, 1, 1], None
    chunks: list[Any] = []
    singles: list[float] = []
    for field in _fields(data):
        if field.number in _BLOB_LEGACY and field.wire == _VARINT:
            legacy[_BLOB_LEGACY[field.number]] = field.value
        elif field.number == _BLOB_SHAPE and field.wire == _BYTES:
            shape = [d for f in _fields(field.value) if f.number == 1 for d in _packed_ints(f)]
        elif field.number in (_BLOB_DATA, _BLOB_DOUBLE) and field.wire == _BYTES:
            dtype = "<f4" if field.number == _BLOB_DATA else "<f8"
            if len(field.value) % np.dtype(dtype).itemsize:
                raise CaffemodelError(
                    f"{where}: packed data of {len(field.value)} bytes is not whole numbers"
                )
            chunks.append(np.frombuffer(field.value, dtype).astype(np.float32))
        elif field.number == _BLOB_DATA and field.wire == _FIXED32:  # unpacked floats (old writers)
            singles.append(np.frombuffer(field.value.to_bytes(4, "little"), "<f4")[0])
    if singles:
        chunks.append(np.asarray(singles, np.float32))
    dims = shape if shape is not None else legacy
    if any(d >= 2**63 for d in dims):  # int64 dims read as unsigned varints: negative
        raise CaffemodelError(f"{where}: a negative dimension in {dims}")
    values = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if math.prod(dims) != values.size:
        raise CaffemodelError(
            f"{where}: shape {dims} needs {math.prod(dims)} values, the blob has {values.size}"
        )
    return values.reshape(dims)


def _layer(data: memoryview, name_field: int, blobs_field: int, index: int) -> tuple[str, list[Any]]:
    name, raw_blobs = None, []
    for field in _fields(data):
        if field.number == name_field and field.wire == _BYTES:
            name = bytes(field.value).decode("utf-8", "replace")
        elif field.number == blobs_field and field.wire == _BYTES:
            raw_blobs.append(field.value)
    name = name if name is not None else f"(layer {index})"
    return name, [_blob(blob, f"{name} blob {i}") for i, blob in enumerate(raw_blobs)]


def read_caffemodel(raw: bytes) -> dict[str, list[Any]]:
    """The blobs (float32 numpy arrays, Caffe's shapes) of each layer of a ``.caffemodel``,
    by layer name; layers without blobs are left out. CaffemodelError for bytes it cannot read."""
    found: dict[str, list[Any]] = {}
    count = 0
    for field in _fields(memoryview(raw)):
        if field.wire != _BYTES or field.number not in (_NET_LAYER, _NET_V1_LAYERS):
            continue
        fields = (_LAYER_NAME, _LAYER_BLOBS) if field.number == _NET_LAYER else (_V1_NAME, _V1_BLOBS)
        name, blobs = _layer(field.value, *fields, count)
        count += 1
        if blobs:
            if name in found:
                raise CaffemodelError(f"two layers named {name!r} hold weights")
            found[name] = blobs
    if not count:
        raise CaffemodelError("no layers: not a Caffe NetParameter")
    return found
