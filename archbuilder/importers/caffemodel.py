"""Caffe weights (``.caffemodel``, a binary ``NetParameter``) read without Caffe or protoc.

A small decoder of protobuf's wire format for the few fields weights need: the layers
(``layer`` = 100, or the V1 ``layers`` = 2 of older files), each layer's ``name`` and
``blobs``, and each blob's ``shape`` (or the legacy ``num``/``channels``/``height``/``width``)
and ``data`` (or ``double_data``), packed or not. Every other field is skipped by its length.
The work is bounded by the file: lengths are checked against the bytes left, a blob's
element count must match its data, a run of one unpacked field is read by numpy at once,
at most :data:`MAX_FIELDS` fields are decoded one by one, and the caller limits the file size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_CAFFEMODEL_BYTES", "MAX_FIELDS", "CaffemodelError", "read_caffemodel"]

MAX_CAFFEMODEL_BYTES = 2 << 30  # the largest Caffe model zoo files are about 0.6 GiB
MAX_FIELDS = 1_000_000  # BVLC GoogLeNet's file has about 2,000 (a run of unpacked values counts as one)
_MAX_AXES = 32  # Caffe's kMaxBlobAxes
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
    value: Any  # an int (varint); bytes (fixed: the little-endian values of a run of them); a memoryview


def _varint(data: memoryview, at: int) -> tuple[int, int]:
    result = shift = 0
    for index in range(at, min(at + 10, len(data))):
        byte = data[index]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, index + 1
        shift += 7
    raise CaffemodelError(f"a varint at byte {at} runs past its 10 bytes or the end")


class _Budget:
    """How many more fields may be decoded one by one (shared by the whole file)."""

    def __init__(self, fields: int):
        self.left = fields

    def spend(self, at: int) -> None:
        self.left -= 1
        if self.left < 0:
            raise CaffemodelError(
                f"more than {MAX_FIELDS:,} fields (at byte {at}); the importer decodes no more"
            )


def _run(data: memoryview, start: int, size: int) -> int:
    """How many records of one field (the one-byte key at ``start``, then ``size`` bytes)
    follow each other from ``start``; read by numpy in windows that double, so the work is
    proportional to the run, not to the bytes after it."""
    import numpy as np

    stride, key = size + 1, data[start]
    whole = (len(data) - start) // stride
    count, window = 0, 64
    while count < whole:
        take = min(window, whole - count)
        records = np.frombuffer(data, np.uint8, count=take * stride, offset=start + count * stride)
        other = np.flatnonzero(records[::stride] != key)
        if other.size:
            return count + int(other[0])
        count, window = count + take, window * 2
    return count


def _fixed(data: memoryview, start: int, at: int, number: int, size: int) -> tuple[bytes, int]:
    """The values (little-endian bytes) of the run of fixed-size fields that starts at ``start``
    (its key) and ``at`` (its first value), and where the run ends."""
    import numpy as np

    if at + size > len(data):
        raise CaffemodelError(f"field {number} at byte {at} runs past the end")
    if at != start + 1:  # a key of several bytes (a field number above 15): one value
        return bytes(data[at : at + size]), at + size
    count = _run(data, start, size)
    records = np.frombuffer(data, np.uint8, count=count * (size + 1), offset=start)
    return records.reshape(count, size + 1)[:, 1:].tobytes(), start + count * (size + 1)


def _fields(data: memoryview, budget: _Budget):
    """The (number, wire type, value) of each field of one message's bytes; a run of one
    fixed-size field (unpacked repeated floats) comes as one field holding all its values."""
    at = 0
    while at < len(data):
        budget.spend(at)
        start = at
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, at = _varint(data, at)
        elif wire in (_FIXED64, _FIXED32):
            value, at = _fixed(data, start, at, number, 8 if wire == _FIXED64 else 4)
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


def _packed_ints(field: _Field, where: str) -> list[int]:
    if field.wire == _VARINT:
        return [field.value]
    values, at = [], 0
    while at < len(field.value):
        if len(values) == _MAX_AXES:
            raise CaffemodelError(f"{where}: a shape of more than {_MAX_AXES} dimensions")
        value, at = _varint(field.value, at)
        values.append(value)
    return values


def _shape(data: memoryview, budget: _Budget, where: str) -> list[int]:
    dims = [d for f in _fields(data, budget) if f.number == 1 for d in _packed_ints(f, where)]
    if len(dims) > _MAX_AXES:
        raise CaffemodelError(f"{where}: a shape of more than {_MAX_AXES} dimensions")
    return dims


_DTYPES = {(_BLOB_DATA, _BYTES): "<f4", (_BLOB_DATA, _FIXED32): "<f4"}
_DTYPES.update({(_BLOB_DOUBLE, _BYTES): "<f8", (_BLOB_DOUBLE, _FIXED64): "<f8"})  # packed, unpacked


def _blob(data: memoryview, budget: _Budget, where: str) -> Any:
    import numpy as np

    legacy, shape = [1, 1, 1, 1], None
    chunks: list[Any] = []
    for field in _fields(data, budget):
        dtype = _DTYPES.get((field.number, field.wire))
        if field.number in _BLOB_LEGACY and field.wire == _VARINT:
            legacy[_BLOB_LEGACY[field.number]] = field.value
        elif field.number == _BLOB_SHAPE and field.wire == _BYTES:
            shape = _shape(field.value, budget, where)
        elif dtype is not None:
            if len(field.value) % np.dtype(dtype).itemsize:
                raise CaffemodelError(
                    f"{where}: packed data of {len(field.value)} bytes is not whole numbers"
                )
            chunks.append(np.frombuffer(field.value, dtype).astype(np.float32))
    dims = shape if shape is not None else legacy
    if any(d >= 2**63 for d in dims):  # int64 dims read as unsigned varints: negative
        raise CaffemodelError(f"{where}: a negative dimension in {dims}")
    values = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if math.prod(dims) != values.size:
        raise CaffemodelError(
            f"{where}: shape {dims} needs {math.prod(dims)} values, the blob has {values.size}"
        )
    return values.reshape(dims)


def _layer(
    data: memoryview, budget: _Budget, name_field: int, blobs_field: int, index: int
) -> tuple[str, list[Any]]:
    name, raw_blobs = None, []
    for field in _fields(data, budget):
        if field.number == name_field and field.wire == _BYTES:
            name = bytes(field.value).decode("utf-8", "replace")
        elif field.number == blobs_field and field.wire == _BYTES:
            raw_blobs.append(field.value)
    name = name if name is not None else f"(layer {index})"
    return name, [_blob(blob, budget, f"{name} blob {i}") for i, blob in enumerate(raw_blobs)]


def read_caffemodel(raw: bytes) -> dict[str, list[Any]]:
    """The blobs (float32 numpy arrays, Caffe's shapes) of each layer of a ``.caffemodel``,
    by layer name; layers without blobs are left out. CaffemodelError for bytes it cannot read."""
    found: dict[str, list[Any]] = {}
    count = 0
    budget = _Budget(MAX_FIELDS)
    for field in _fields(memoryview(raw), budget):
        if field.wire != _BYTES or field.number not in (_NET_LAYER, _NET_V1_LAYERS):
            continue
        fields = (_LAYER_NAME, _LAYER_BLOBS) if field.number == _NET_LAYER else (_V1_NAME, _V1_BLOBS)
        name, blobs = _layer(field.value, budget, *fields, count)
        count += 1
        if blobs:
            if name in found:
                raise CaffemodelError(f"two layers named {name!r} hold weights")
            found[name] = blobs
    if not count:
        raise CaffemodelError("no layers: not a Caffe NetParameter")
    return found
