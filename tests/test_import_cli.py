"""``archbuild import``: files written, errors without tracebacks, exit codes."""

from __future__ import annotations

import hashlib

import pytest

import archbuilder
from archbuilder.cli.main import main

from .test_import_caffe import DEPLOY, TRAIN_VAL


def test_import_writes_a_spec_that_loads(tmp_path, capsys):
    out = tmp_path / "googlenet.yaml"
    assert main(["import", str(DEPLOY), "-o", str(out)]) == 0
    text = out.read_text()
    assert f"# sha256: {hashlib.sha256(DEPLOY.read_bytes()).hexdigest()}" in text
    assert archbuilder.lower(archbuilder.load_spec(out)).total()[0] == 6_998_552
    assert "6,998,552 parameters, 9 multi-branch blocks" in capsys.readouterr().err


def test_weights_from_a_prototxt_are_refused(tmp_path, capsys):
    assert main(["import", str(TRAIN_VAL), "--weights", str(tmp_path / "w.pt")]) == 2
    assert "holds no weights" in capsys.readouterr().err
    assert not (tmp_path / "w.pt").exists()


def test_unsupported_ops_exit_1_without_traceback(tmp_path, capsys):
    path = tmp_path / "bad.prototxt"
    path.write_text(
        'input: "data"\ninput_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8\nlayer { name: "p" type: "Power" bottom: "data" top: "p" }\n'
    )
    assert main(["import", str(path)]) == 1
    err = capsys.readouterr().err
    assert "p (Power): no archbuilder layer computes it" in err and "Traceback" not in err


def test_onnx_weights_load_into_the_built_spec(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    spec = archbuilder.load_spec(
        "name: t\ninput: {channels: 3, height: 8, width: 8}\nnum_classes: 4\n"
        "blocks: [{name: conv, kind: conv, out: 6, kernel: 3}]\n"
        "head: [{kind: global_avgpool}, {kind: flatten}, {name: fc, kind: linear, out: num_classes}]\n"
    )
    model = archbuilder.build(spec).eval()
    onnx_path = archbuilder.export_onnx(model, tmp_path / "t.onnx")
    out, weights = tmp_path / "t.yaml", tmp_path / "t.pt"
    assert main(["import", str(onnx_path), "-o", str(out), "--weights", str(weights)]) == 0
    rebuilt = archbuilder.build(out).eval()
    rebuilt.load_state_dict(torch.load(weights))
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(rebuilt(x), model(x), atol=1e-5)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.prototxt", None, "no such file"),
        ("bad.prototxt", "layer {\n  name: 'x'\n", "not protobuf text format: line 2, column 9: missing '}'"),
        ("bad.onnx", "not a model", "not an ONNX model"),
        ("net.caffemodel", "", "unknown format; give one of .prototxt, .onnx"),
    ],
)
def test_unreadable_files_are_one_line(tmp_path, capsys, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    assert main(["import", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{path}: ") and message in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_archbuild_export_no_optimize_then_import_gives_the_same_spec(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    source = tmp_path / "bn.yaml"
    source.write_text(
        "name: bn\ninput: {channels: 3, height: 8, width: 8}\nnum_classes: 4\n"
        "blocks: [{name: conv, kind: conv, out: 6, kernel: 3, bn_eps: 0.001}]\n"
        "head: [{name: pool, kind: global_avgpool}, {name: flatten, kind: flatten}, {name: fc, kind: linear, out: num_classes}]\n"
    )
    onnx_path, out, weights = tmp_path / "bn.onnx", tmp_path / "back.yaml", tmp_path / "back.pt"
    assert main(["export", str(source), "--no-optimize", "-o", str(onnx_path)]) == 0
    assert main(["import", str(onnx_path), "-o", str(out), "--weights", str(weights)]) == 0
    original, back = archbuilder.load_spec(source), archbuilder.load_spec(out)
    # parameters: conv 6·3·3·3 + batch norm 2·6 + linear 4·6 + 4; MACs: 6·6 positions · 6 · 27 + 24
    assert archbuilder.lower(back).total() == archbuilder.lower(original).total() == (202, 5856)
    ops = lambda spec: [(op.kind, op.shape, op.attrs) for op in archbuilder.lower(spec).ops()]  # noqa: E731
    assert ops(back) == ops(original)  # bn_eps 0.001 included (written in defaults now)
    model = archbuilder.build(out).eval()
    model.load_state_dict(torch.load(weights))
    ort = pytest.importorskip("onnxruntime")
    x = torch.randn(2, 3, 8, 8)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    [expected] = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        assert torch.allclose(model(x), torch.from_numpy(expected), atol=1e-5)


def test_no_optimize_is_for_onnx_only(tmp_path, capsys):
    source = tmp_path / "t.yaml"
    source.write_text(
        "name: t\ninput: {channels: 3, height: 8, width: 8}\nblocks: [{name: c, kind: conv, out: 2, kernel: 1}]\n"
    )
    assert main(["export", str(source), "--no-optimize", "-o", str(tmp_path / "t.pt2")]) == 2
    assert "--no-optimize applies to ONNX" in capsys.readouterr().err
