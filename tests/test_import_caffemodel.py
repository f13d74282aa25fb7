"""Caffe weights: a .caffemodel written by protobuf's own encoder (tests/caffe_proto.py) read
by archbuilder's wire-format decoder, checked against hand-written torch computations."""

from __future__ import annotations

import numpy as np
import pytest

import archbuilder
from archbuilder.cli.main import main
from archbuilder.importers import ImportFailure, import_model
from archbuilder.importers.caffemodel import CaffemodelError, read_caffemodel

from .test_import_caffe import DEPLOY, TRAIN_VAL

torch = pytest.importorskip("torch")
pytest.importorskip("google.protobuf")
from torch.nn import functional as F  # noqa: E402

from .caffe_proto import caffemodel  # noqa: E402

RNG = np.random.default_rng(1)

SMALL = """
name: "small"
input: "data"
input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 4 kernel_size: 3 pad: 1 bias_term: false } }
layer { name: "conv1/bn" type: "BatchNorm" bottom: "conv1" top: "conv1" batch_norm_param { eps: 0.001 } }
layer { name: "conv1/scale" type: "Scale" bottom: "conv1" top: "conv1" scale_param { bias_term: true } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "conv2" type: "Convolution" bottom: "conv1" top: "conv2"
  convolution_param { num_output: 6 kernel_size: 3 stride: 2 group: 2 } }
layer { name: "conv2/bn" type: "BatchNorm" bottom: "conv2" top: "conv2" }
layer { name: "fc" type: "InnerProduct" bottom: "conv2" top: "fc" inner_product_param { num_output: 5 } }
"""


def _small_blobs():
    r = lambda *shape: RNG.normal(0, 0.5, shape).astype(np.float32)  # noqa: E731
    return {
        "conv1": [r(4, 3, 3, 3)],
        "conv1/bn": [r(4), RNG.uniform(0.5, 2, 4).astype(np.float32), np.array([2.5], np.float32)],
        "conv1/scale": [r(4), r(4)],
        "conv2": [r(6, 2, 3, 3), r(6)],
        "conv2/bn": [r(6), RNG.uniform(0.5, 2, 6).astype(np.float32), np.array([0.5], np.float32)],
        "fc": [r(5, 6 * 3 * 3), r(5)],
        "unused": [r(3)],  # a layer the prototxt does not have: ignored
    }


def _small_by_hand(blobs, x):
    """Caffe's forward pass written out: BatchNorm divides its statistics by the scale factor."""
    t = {name: [torch.from_numpy(b) for b in arrays] for name, arrays in blobs.items()}
    y = F.conv2d(x, t["conv1"][0], padding=1)
    mean, var, factor = t["conv1/bn"]
    y = (y - (mean / factor).view(-1, 1, 1)) / torch.sqrt((var / factor).view(-1, 1, 1) + 1e-3)
    y = F.relu(y * t["conv1/scale"][0].view(-1, 1, 1) + t["conv1/scale"][1].view(-1, 1, 1))
    y = F.conv2d(y, t["conv2"][0], t["conv2"][1], stride=2, groups=2)
    mean, var, factor = t["conv2/bn"]  # no Scale after it: weight 1, bias 0; Caffe's eps 1e-5
    y = (y - (mean / factor).view(-1, 1, 1)) / torch.sqrt((var / factor).view(-1, 1, 1) + 1e-5)
    return y.flatten(1) @ t["fc"][0].T + t["fc"][1]


@pytest.mark.parametrize(
    "form",
    [{}, {"v1": True, "legacy_dims": True}, {"double": True}],
    ids=["layer-shape-float", "v1-layers-legacy-dims", "double-data"],
)
def test_weights_of_a_small_net_match_caffe_s_computation(tmp_path, form):
    prototxt, weights = tmp_path / "small.prototxt", tmp_path / "small.caffemodel"
    prototxt.write_text(SMALL)
    blobs = _small_blobs()
    weights.write_bytes(caffemodel(blobs, **form))
    result = import_model(prototxt, caffemodel=weights)
    model = archbuilder.build(result.spec).eval()
    model.load_state_dict(result.state_dict())
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        expected, got = _small_by_hand(blobs, x), model(x)
    assert ((got - expected).abs().max() / expected.abs().max()).item() <= 1e-5
    assert any(note.startswith('weights: "small.caffemodel", sha256 ') for note in result.notes)


@pytest.mark.slow
def test_bvlc_googlenet_weights_through_archbuild_import(tmp_path):
    from .caffe_googlenet import CaffeGoogLeNet

    reference = CaffeGoogLeNet().eval()
    with torch.no_grad():
        for param in reference.parameters():
            param.normal_(0, 0.05)
    blobs = {
        name: [p.detach().numpy() for p in reference.layer(name).parameters()]
        for name in reference.caffe_names()
    }  # the aux heads' layers too, which the deploy definition does not have
    model_file = tmp_path / "bvlc_googlenet.caffemodel"
    model_file.write_bytes(caffemodel(blobs))
    spec, weights = tmp_path / "googlenet.yaml", tmp_path / "googlenet.pt"
    args = [
        "import",
        str(DEPLOY),
        "--caffemodel",
        str(model_file),
        "-o",
        str(spec),
        "--weights",
        str(weights),
    ]
    assert main(args) == 0
    model = archbuilder.build(spec).eval()
    model.load_state_dict(torch.load(weights))
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        expected, got = reference(x)["loss3"], model(x)
    assert ((got - expected).abs().max() / expected.abs().max()).item() <= 1e-5
    # the training definition: the loss branches' layers take their weights too
    train = import_model(TRAIN_VAL, caffemodel=model_file)
    state = train.state_dict()
    assert sum(v.numel() for v in state.values()) == 13_378_280
    aux = [v for k, v in state.items() if k.startswith("loss1.")]
    assert [torch.equal(a, b) for a, b in zip(aux, reference.layer("loss1/conv").parameters())] == [True] * 2


def test_weights_that_do_not_fit_the_layers_are_all_reported(tmp_path):
    prototxt, weights = tmp_path / "small.prototxt", tmp_path / "small.caffemodel"
    prototxt.write_text(SMALL)
    blobs = _small_blobs()
    blobs["conv2"][0] = blobs["conv2"][0][:5]  # 5 filters for 6 outputs
    del blobs["fc"]
    weights.write_bytes(caffemodel(blobs))
    with pytest.raises(ImportFailure) as failure:
        import_model(prototxt, caffemodel=weights)
    assert [(p.node, p.op) for p in failure.value.problems] == [
        ("conv2", "Convolution"),
        ("fc", "InnerProduct"),
    ]
    message = str(failure.value)
    assert "2 layers whose weights do not fit" in message and "--partial" not in message
    assert "conv2 (Convolution): its weight blob is (5, 2, 3, 3); the layer needs (6, 2, 3, 3)" in message
    assert "fc (InnerProduct): the caffemodel has no weights for it" in message


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"", "no layers"),
        (b"\xa2\x06\xff\xff\xff\x0f", "says 33554431 bytes; 0 are left"),  # field 100, 2**25 - 1 bytes
        (b"\xa2\x06" + b"\xff" * 11, "varint"),
        (b"\x0b", "wire type 3"),
    ],
)
def test_unreadable_caffemodels_say_why(raw, message):
    with pytest.raises(CaffemodelError, match=message):
        read_caffemodel(raw)


def test_a_blob_whose_shape_claims_more_than_its_data_is_refused():
    blob = caffemodel({"conv": [np.zeros((2, 3), np.float32)]})
    # the same bytes with dims 2×3 raised to 2×3000000000 (a varint of 5 bytes instead of 1)
    import google.protobuf  # noqa: F401

    from .caffe_proto import CLASSES

    net = CLASSES["NetParameter"]()
    net.ParseFromString(blob)
    net.layer[0].blobs[0].shape.dim[1] = 3_000_000_000
    with pytest.raises(
        CaffemodelError, match=r"shape \[2, 3000000000\] needs 6000000000 values, the blob has 6"
    ):
        read_caffemodel(net.SerializeToString())


def test_cli_caffemodel_errors(tmp_path, capsys):
    prototxt = tmp_path / "small.prototxt"
    prototxt.write_text(SMALL)
    bad = tmp_path / "bad.caffemodel"
    bad.write_bytes(b"\x0b")
    assert main(["import", str(prototxt), "--caffemodel", str(bad), "--weights", str(tmp_path / "w.pt")]) == 1
    err = capsys.readouterr().err
    assert "bad.caffemodel: not a Caffe model" in err and "Traceback" not in err
    assert not (tmp_path / "w.pt").exists()
    assert main(["import", str(prototxt), "--weights", str(tmp_path / "w.pt")]) == 2
    assert "--caffemodel" in capsys.readouterr().err
