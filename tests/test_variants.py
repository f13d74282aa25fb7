"""Variants against independent references (BVLC Caffe's GoogLeNet transcribed by hand,
torchvision's model), their defining layout, and the shipped files."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision

import archbuilder
from archbuilder.catalog.variants import VARIANTS, emit, emit_yaml

from .caffe_googlenet import CaffeGoogLeNet, archbuilder_key
from .conftest import GOOGLENET, ROOT, SPECS

SHIPPED = {
    "v1": "googlenet-v1-original.yaml",
    "naive": "googlenet-naive.yaml",
    "torchvision": "googlenet-torchvision.yaml",
    "factorized": "googlenet-factorized.yaml",
}
LAYOUTS = ("v1", "v1-bn", "torchvision")


@pytest.fixture(scope="module")
def base():
    return archbuilder.load_spec(GOOGLENET)


def totals(spec):
    summary = archbuilder.summarize(spec)
    return summary.params, summary.inference_params


PROTOTXT = ROOT / "tests" / "data" / "import" / "bvlc_googlenet_deploy.prototxt"  # BVLC/caffe, unchanged


def numel(modules) -> int:
    return sum(p.numel() for module in modules for p in module.parameters())


@pytest.fixture(scope="module")
def caffe():
    """With weights that keep the activations' scale (Kaiming normal, biases up to 0.1), so
    that LRN and every layer after it change the outputs measurably."""
    torch.manual_seed(0)
    model = CaffeGoogLeNet().eval()
    for layer in model.layers.values():
        torch.nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        torch.nn.init.uniform_(layer.bias, -0.1, 0.1)
    return model


def deploy_layers(caffe) -> list:
    """The Caffe reference's layers that the deploy file defines (all but the aux heads)."""
    return [caffe.layer(name) for name in caffe.caffe_names() if not name.startswith(("loss1", "loss2"))]


def torchvision_googlenet(aux: bool) -> torch.nn.Module:
    return torchvision.models.googlenet(weights=None, aux_logits=aux, init_weights=False)


def deploy_file_layers() -> list[tuple[str, int, int, int, int]]:
    """(name, outputs, kernel, stride, pad) of every Convolution and InnerProduct in the file."""
    text = PROTOTXT.read_text()
    rows = []
    for name, body in re.findall(
        r'layer \{\s*name: "([^"]+)"\s*type: "(?:Convolution|InnerProduct)"(.*?)\n\}', text, re.S
    ):
        field = {
            key: int(value) for key, value in re.findall(r"(num_output|kernel_size|stride|pad): (\d+)", body)
        }
        rows.append(
            (
                name,
                field["num_output"],
                field.get("kernel_size", 1),
                field.get("stride", 1),
                field.get("pad", 0),
            )
        )
    return rows


def test_caffe_reference_has_the_deploy_files_layers(caffe):
    """The hand transcription against the file itself: every Convolution and InnerProduct of
    the deploy definition, with its outputs, kernel, stride and padding, in order."""
    in_file = deploy_file_layers()
    ours = []
    for name in caffe.caffe_names():
        layer = caffe.layer(name)
        if isinstance(layer, torch.nn.Conv2d):
            ours.append((name, layer.out_channels, layer.kernel_size[0], layer.stride[0], layer.padding[0]))
        elif not name.startswith(("loss1", "loss2")):
            ours.append((name, layer.out_features, 1, 1, 0))
    assert [row for row in ours if not row[0].startswith(("loss1", "loss2"))] == in_file
    assert len(in_file) == 58


def test_v1_parameter_counts_are_the_caffe_models(base, caffe):
    assert totals(emit(base, "v1")) == (numel([caffe]), numel(deploy_layers(caffe)))
    assert numel(deploy_layers(caffe)) == 6_998_552  # the fixture's own figure (fixtures/README.md)


def test_torchvision_parameter_counts_are_torchvisions(base):
    assert totals(emit(base, "torchvision")) == (
        numel([torchvision_googlenet(True)]),
        numel([torchvision_googlenet(False)]),
    )


def test_v1_bn_counts_are_v1_plus_a_batch_norm_per_conv(base, caffe):
    # v1-bn keeps every conv's bias and adds batch norm's weight and bias per output channel.
    channels = sum(
        layer.out_channels for layer in caffe.layers.values() if isinstance(layer, torch.nn.Conv2d)
    )
    deploy = sum(layer.out_channels for layer in deploy_layers(caffe) if isinstance(layer, torch.nn.Conv2d))
    assert totals(emit(base, "v1-bn")) == (
        numel([caffe]) + 2 * channels,
        numel(deploy_layers(caffe)) + 2 * deploy,
    )


def test_v1_computes_what_the_caffe_model_computes(base, caffe):
    """Weights copied from the Caffe transcription by name; main and aux logits compared."""
    model = archbuilder.build(emit(base, "v1")).eval()
    ours = model.state_dict()
    copied = {}
    for name in caffe.caffe_names():
        for kind, tensor in caffe.layer(name).state_dict().items():
            copied[f"{archbuilder_key(name)}.{kind}"] = tensor
    assert copied.keys() == ours.keys()
    model.load_state_dict(copied)
    x = 60 * torch.randn(2, 3, 224, 224)  # the scale of Caffe's mean-subtracted 0-255 pixels
    with torch.no_grad():
        expected = caffe(x)
        maps = model.features(x, at=["4a", "4d"])
        actual = {"loss3": model(x), "loss1": model.aux1(maps["4a"]), "loss2": model.aux2(maps["4d"])}
    for head, logits in expected.items():
        scale = logits.abs().max()
        assert scale > 0
        assert (actual[head] - logits).abs().max() / scale < 1e-4, head


@pytest.mark.parametrize("variant", ["v1", "torchvision"])
def test_built_models_have_the_references_counts(base, caffe, variant):
    expected = {"v1": numel([caffe]), "torchvision": numel([torchvision_googlenet(True)])}[variant]
    model = archbuilder.build(emit(base, variant))
    assert sum(p.numel() for p in model.parameters()) == expected


def test_naive_widths_compound(base):
    ir = archbuilder.lower(emit(base, "naive"))
    assert ir.op("3a.concat").shape == (64 + 128 + 32 + 192, 28, 28)
    assert ir.op("3b.concat").shape == (128 + 192 + 96 + 416, 28, 28)
    assert all(
        op.attrs["in_channels"] == 192 for op in ir.ops() if op.id.startswith("3a.") and op.kind == "conv"
    )
    naive, original = archbuilder.summarize(ir), archbuilder.summarize(base)
    assert naive.inference_macs > 5 * original.inference_macs  # the cost problem the article describes


def test_v1_layout(base):
    spec = emit(base, "v1")
    ir = archbuilder.lower(spec)
    stem = [entry.name for entry in ir.top_level if entry.section == "stem"]
    assert stem == ["conv1", "pool1", "norm1", "conv2_reduce", "conv2", "norm2", "pool2"]
    assert ir.op("norm1").attrs == {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 1.0}
    convs = [op for op in ir.ops() if op.kind == "conv"]
    assert all(op.attrs["norm"] == "none" and op.attrs["bias"] for op in convs)
    pools = [op for op in ir.ops() if op.kind == "maxpool" and "." not in op.id]
    assert all(op.attrs["ceil_mode"] and op.attrs["padding"] == (0, 0) for op in pools)
    assert ir.op("aux1.pool").kind == "avgpool" and ir.op("aux1.pool").attrs["kernel"] == (5, 5)
    assert ir.op("aux1.pool").shape == (512, 4, 4)
    assert ir.op("dropout").attrs["p"] == 0.4 and ir.op("aux2.dropout").attrs["p"] == 0.7


def test_torchvision_layout(base):
    ir = archbuilder.lower(emit(base, "torchvision"))
    convs = [op for op in ir.ops() if op.kind == "conv"]
    assert all(op.attrs["bn_eps"] == 1e-3 and not op.attrs["bias"] for op in convs)
    assert all(ir.op(f"{name}.branch5x5.conv").attrs["kernel"] == (3, 3) for name in ("3a", "4e", "5b"))
    assert ir.op("pool4").attrs["kernel"] == (2, 2) and ir.op("pool4").attrs["ceil_mode"]
    assert ir.op("dropout").attrs["p"] == 0.2


def test_factorized_keeps_every_shape_and_counts_by_hand(base):
    factorized, original = archbuilder.lower(emit(base, "factorized")), archbuilder.lower(base)
    shapes = lambda ir: [(e.name, ir.op(e.output).shape) for e in ir.top_level]  # noqa: E731
    assert shapes(factorized) == shapes(original)
    first, second = factorized.op("3a.branch5x5.conv"), factorized.op("3a.branch5x5.conv2")
    assert first.attrs["kernel"] == second.attrs["kernel"] == (3, 3)
    assert (first.attrs["in_channels"], first.attrs["out_channels"], second.attrs["out_channels"]) == (
        16,
        32,
        32,
    )
    # 3×3 weights + bias + BN (weight, bias), by hand
    assert first.params == 9 * 16 * 32 + 32 + 2 * 32
    assert second.params == 9 * 32 * 32 + 32 + 2 * 32


def test_v1_bn_of_the_article_spec_is_the_article_spec(base):
    drop = lambda data: {k: v for k, v in data.items() if k not in ("name", "description")}  # noqa: E731
    assert drop(emit(base, "v1-bn").to_dict()) == drop(base.to_dict())


@pytest.mark.parametrize(("first", "second"), list(itertools.product(LAYOUTS, LAYOUTS)))
def test_layout_variants_convert_into_each_other(base, first, second):
    assert emit(emit(base, first), second) == emit(base, second)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_emitting_twice_changes_nothing(base, variant):
    once = emit(base, variant)
    assert emit(once, variant) == once


@pytest.mark.parametrize(("variant", "filename"), list(SHIPPED.items()))
def test_shipped_variant_files_are_current(base, variant, filename):
    text = (SPECS / filename).read_text()
    emitted = emit_yaml(
        base, variant, source="specs/googlenet.yaml", schema="../schema/archbuilder.schema.json"
    )
    assert emitted == text, (
        f"re-emit with: archbuild emit specs/googlenet.yaml --variant {variant} -o specs/{filename}"
    )


@pytest.mark.parametrize("filename", list(SHIPPED.values()))
def test_emitted_files_round_trip(filename):
    text = (SPECS / filename).read_text()
    *header, body = text.split("\n", 3)
    assert header[0] == "# yaml-language-server: $schema=../schema/archbuilder.schema.json"
    assert all(line.startswith("# ") for line in header)
    assert archbuilder.load_spec(SPECS / filename).to_yaml() == body


def test_unknown_variant(base):
    with pytest.raises(ValueError, match="unknown variant 'v2'; variants: naive, v1"):
        emit(base, "v2")


def archbuild(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "archbuilder", *args], capture_output=True, text=True, cwd=ROOT
    )


def _split_schema_line(text: str) -> tuple[str, str]:
    first, rest = text.split("\n", 1)
    prefix = "# yaml-language-server: $schema="
    assert first.startswith(prefix), first
    return first[len(prefix) :], rest


def test_emit_command(tmp_path):
    """The output is the shipped file, but for the schema line, which points at the installed
    schema (here the checkout's, an editable install) wherever the output is."""
    output = tmp_path / "v1.yaml"
    result = archbuild("emit", "specs/googlenet.yaml", "--variant", "v1", "-o", str(output))
    assert result.returncode == 0, result.stderr
    reference, body = _split_schema_line(output.read_text())
    _, shipped_body = _split_schema_line((SPECS / SHIPPED["v1"]).read_text())
    assert body == shipped_body
    assert Path(reference).is_absolute() and Path(reference) == ROOT / "schema" / "archbuilder.schema.json"
    stdout = archbuild("emit", "specs/googlenet.yaml", "--variant", "naive")  # standard output
    assert stdout.returncode == 0
    assert _split_schema_line(stdout.stdout) == (
        reference,
        _split_schema_line((SPECS / SHIPPED["naive"]).read_text())[1],
    )


def test_emit_schema_option():
    url = "https://example.org/archbuilder.schema.json"
    result = archbuild("emit", "specs/googlenet.yaml", "--variant", "v1", "--schema", url)
    assert result.returncode == 0, result.stderr
    assert _split_schema_line(result.stdout)[0] == url
    result = archbuild("emit", "specs/googlenet.yaml", "--variant", "v1", "--schema", "")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# googlenet-v1: emitted by")


def test_emit_command_with_overrides_says_so(tmp_path):
    result = archbuild("emit", "specs/googlenet.yaml", "--variant", "v1", "--set", "num_classes=10")
    assert result.returncode == 0, result.stderr
    assert "--set num_classes=10 --variant v1`" in result.stdout.splitlines()[1]
    assert "num_classes: 10" in result.stdout


def test_emit_never_overwrites_its_input(tmp_path):
    spec = tmp_path / "g.yaml"
    spec.write_text(GOOGLENET.read_text())
    result = archbuild("emit", str(spec), "--variant", "v1", "-o", str(spec))
    assert result.returncode == 2 and "is the input spec" in result.stderr
    assert spec.read_text() == GOOGLENET.read_text()
    assert archbuild("emit", str(spec), "--variant", "v9").returncode == 2
