"""Variants against the published counts, their defining layout, and the shipped files."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest

import archbuilder
from archbuilder.variants import VARIANTS, emit, emit_yaml

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


def test_published_parameter_counts(base):
    assert totals(emit(base, "v1")) == (13_378_280, 6_998_552)
    assert totals(emit(base, "torchvision")) == (13_004_888, 6_624_904)
    assert totals(emit(base, "v1-bn")) == (13_393_352, 7_013_112)


@pytest.mark.parametrize("variant", ["v1", "torchvision"])
def test_built_models_have_the_published_counts(base, variant):
    expected = {"v1": 13_378_280, "torchvision": 13_004_888}[variant]
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
