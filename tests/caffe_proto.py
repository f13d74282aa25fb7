"""An independent .caffemodel writer for tests: protobuf's own encoder, driven by a
hand-written subset of Caffe's ``caffe.proto`` (BVLC/caffe src/caffe/proto/caffe.proto,
field numbers as published) built as a descriptor at run time, so neither protoc nor Caffe
is needed."""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto

# message: [(field, number, type, label, message type)], from caffe.proto
MESSAGES = {
    "BlobShape": [("dim", 1, F.TYPE_INT64, F.LABEL_REPEATED, None)],
    "BlobProto": [
        ("shape", 7, F.TYPE_MESSAGE, F.LABEL_OPTIONAL, "BlobShape"),
        ("data", 5, F.TYPE_FLOAT, F.LABEL_REPEATED, None),
        ("diff", 6, F.TYPE_FLOAT, F.LABEL_REPEATED, None),
        ("double_data", 8, F.TYPE_DOUBLE, F.LABEL_REPEATED, None),
        ("num", 1, F.TYPE_INT32, F.LABEL_OPTIONAL, None),
        ("channels", 2, F.TYPE_INT32, F.LABEL_OPTIONAL, None),
        ("height", 3, F.TYPE_INT32, F.LABEL_OPTIONAL, None),
        ("width", 4, F.TYPE_INT32, F.LABEL_OPTIONAL, None),
    ],
    "NetStateRule": [("phase", 1, F.TYPE_INT32, F.LABEL_OPTIONAL, None)],
    "LayerParameter": [
        ("name", 1, F.TYPE_STRING, F.LABEL_OPTIONAL, None),
        ("type", 2, F.TYPE_STRING, F.LABEL_OPTIONAL, None),
        ("bottom", 3, F.TYPE_STRING, F.LABEL_REPEATED, None),
        ("top", 4, F.TYPE_STRING, F.LABEL_REPEATED, None),
        ("loss_weight", 5, F.TYPE_FLOAT, F.LABEL_REPEATED, None),
        ("blobs", 7, F.TYPE_MESSAGE, F.LABEL_REPEATED, "BlobProto"),
        ("include", 8, F.TYPE_MESSAGE, F.LABEL_REPEATED, "NetStateRule"),
    ],
    "V1LayerParameter": [
        ("bottom", 2, F.TYPE_STRING, F.LABEL_REPEATED, None),
        ("top", 3, F.TYPE_STRING, F.LABEL_REPEATED, None),
        ("name", 4, F.TYPE_STRING, F.LABEL_OPTIONAL, None),
        ("type", 5, F.TYPE_INT32, F.LABEL_OPTIONAL, None),  # an enum in caffe.proto: the same varint
        ("blobs", 6, F.TYPE_MESSAGE, F.LABEL_REPEATED, "BlobProto"),
    ],
    "NetParameter": [
        ("name", 1, F.TYPE_STRING, F.LABEL_OPTIONAL, None),
        ("layers", 2, F.TYPE_MESSAGE, F.LABEL_REPEATED, "V1LayerParameter"),
        ("input", 3, F.TYPE_STRING, F.LABEL_REPEATED, None),
        ("input_dim", 4, F.TYPE_INT32, F.LABEL_REPEATED, None),
        ("layer", 100, F.TYPE_MESSAGE, F.LABEL_REPEATED, "LayerParameter"),
    ],
}
PACKED = {("BlobShape", "dim"), ("BlobProto", "data"), ("BlobProto", "diff"), ("BlobProto", "double_data")}


def _classes():
    proto = descriptor_pb2.FileDescriptorProto(name="caffe_subset.proto", package="caffe", syntax="proto2")
    for message, fields in MESSAGES.items():
        described = proto.message_type.add(name=message)
        for name, number, kind, label, type_name in fields:
            field = described.field.add(name=name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = f".caffe.{type_name}"
            if (message, name) in PACKED:
                field.options.packed = True
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"caffe.{name}"))
        for name in MESSAGES
    }


CLASSES = _classes()


def caffemodel(
    layers: dict[str, list], *, v1: bool = False, legacy_dims: bool = False, double: bool = False
) -> bytes:
    """A serialized NetParameter whose layers (by name) hold ``layers``' numpy arrays as blobs."""
    net = CLASSES["NetParameter"](name="test")
    for name, arrays in layers.items():
        layer = net.layers.add(name=name, type=4) if v1 else net.layer.add(name=name, type="Convolution")
        if not v1:
            layer.include.add(phase=1)  # a field the reader skips
        for array in arrays:
            blob = layer.blobs.add()
            if legacy_dims:
                dims = [1] * (4 - array.ndim) + list(array.shape)
                blob.num, blob.channels, blob.height, blob.width = dims
            else:
                blob.shape.dim.extend(array.shape)
            (blob.double_data if double else blob.data).extend(array.reshape(-1).tolist())
    return net.SerializeToString()
