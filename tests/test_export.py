"""Export: ONNX files run in onnxruntime as the torch model does; torch.export, torch.compile and
torch.fx take built models; `archbuild export`.

The reference is always the torch model itself, in eval mode, on the same input.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import archbuilder
from archbuilder.export import ExportError, export_model, export_onnx, export_program, export_pt2

from .conftest import GOOGLENET, ROOT

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

SMALL = ROOT / "tests" / "data" / "bases" / "small.yaml"
# small.yaml with an aux head, so training mode returns ModelOutputs
AUX = {
    "aux_heads": [
        {
            "name": "aux",
            "tap": "mix",
            "loss_weight": 0.3,
            "layers": [
                {"kind": "global_avgpool"},
                {"kind": "flatten"},
                {"kind": "linear", "out": "num_classes"},
            ],
        }
    ]
}
RTOL = 1e-4


def small_model(**overrides) -> archbuilder.ArchModel:
    torch.manual_seed(0)
    model = archbuilder.build(archbuilder.load_spec(SMALL, overrides=overrides or None))
    _randomize_norms(model)
    return model


def _randomize_norms(model: torch.nn.Module) -> None:
    """Batch-norm statistics away from 0 and 1, so eval mode differs from an identity norm."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)


def inputs(spec: archbuilder.ArchSpec, batch: int) -> torch.Tensor:
    return torch.randn(batch, spec.input.channels, spec.input.height, spec.input.width)


def relative_error(actual: np.ndarray, expected: torch.Tensor) -> float:
    expected = expected.detach().numpy()
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


def run_onnx(path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {"input": x.numpy()})
    return output


def check_onnx(path, model: archbuilder.ArchModel, batches=(1, 5)) -> None:
    """The file runs at every batch size (dynamic batch) and matches the eval-mode torch model."""
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    (graph_input,) = proto.graph.input
    assert graph_input.name == "input"
    assert graph_input.type.tensor_type.shape.dim[0].dim_param  # symbolic, not a fixed size
    model.eval()
    for batch in batches:
        x = inputs(model.spec, batch)
        with torch.no_grad():
            expected = model(x)
        actual = run_onnx(path, x)
        assert actual.shape == tuple(expected.shape) == (batch, model.spec.num_classes)
        assert relative_error(actual, expected) <= RTOL


def test_onnx_matches_torch_at_two_batch_sizes(tmp_path):
    model = small_model(**AUX).train()  # exported in eval mode whatever mode it is in
    path = export_onnx(model, tmp_path / "small.onnx")
    assert model.training, "the model is put back in the mode it was in"
    check_onnx(path, model)
    assert [op.version for op in onnx.load(str(path)).opset_import if op.domain in ("", "ai.onnx")] == [20]


def test_onnx_from_a_spec_with_another_opset(tmp_path):
    """A spec is built fresh (without aux heads); its random weights are in the file."""
    path = export_model(SMALL, tmp_path / "small.onnx", num_classes=7, opset=18)
    proto = onnx.load(str(path))
    assert [op.version for op in proto.opset_import if op.domain in ("", "ai.onnx")] == [18]
    assert run_onnx(path, inputs(archbuilder.load_spec(SMALL), 3)).shape == (3, 7)
    with pytest.raises(ValueError, match="opset must be 18 to 23"):
        export_onnx(SMALL, tmp_path / "x.onnx", opset=12)


@pytest.mark.slow
def test_googlenet_onnx(tmp_path):
    torch.manual_seed(0)
    model = archbuilder.build(GOOGLENET)
    _randomize_norms(model)
    check_onnx(export_onnx(model, tmp_path / "googlenet.onnx"), model, batches=(1, 3))


def test_missing_onnx_packages_are_named(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # makes `import onnxscript` fail
    with pytest.raises(
        ExportError, match=r"needs onnxscript \(not installed\): pip install 'archbuilder\[onnx\]'"
    ):
        export_onnx(small_model(), tmp_path / "small.onnx")
    assert not (tmp_path / "small.onnx").exists()


def test_pt2_round_trip(tmp_path):
    model = small_model().eval()
    path = export_pt2(model, tmp_path / "small.pt2")
    loaded = torch.export.load(str(path)).module()
    for batch in (1, 4):
        x = inputs(model.spec, batch)
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_unknown_extension(tmp_path):
    with pytest.raises(ValueError, match=r"unsupported extension '\.onx'; use \.onnx, \.pt2"):
        export_model(SMALL, tmp_path / "model.onx")


def test_a_model_without_a_spec_is_refused():
    with pytest.raises(ValueError, match=r"no \.spec"):
        export_program(torch.nn.Linear(2, 2))


# torch.export, torch.compile and torch.fx on built models, compared with eager mode.


def test_torch_export_eval_mode_dynamic_batch():
    model = small_model(**AUX).eval()
    program = torch.export.export(
        model, (inputs(model.spec, 2),), dynamic_shapes=({0: torch.export.Dim("batch")},)
    )
    for batch in (2, 6):
        x = inputs(model.spec, batch)
        with torch.no_grad():
            torch.testing.assert_close(program.module()(x), model(x), rtol=0, atol=0)


def test_torch_export_training_mode_returns_model_outputs():
    model = small_model(**AUX).train()
    x = inputs(model.spec, 4)
    program = torch.export.export(model, (x,))
    torch.manual_seed(1)
    exported = program.module()(x)
    torch.manual_seed(1)
    eager = model(x)
    assert isinstance(exported, archbuilder.ModelOutputs) and len(exported.aux) == 1
    torch.testing.assert_close(exported.logits, eager.logits)
    torch.testing.assert_close(exported.aux[0], eager.aux[0])


def test_fx_symbolic_trace():
    model = small_model(**AUX).eval()
    traced = torch.fx.symbolic_trace(model)
    called = {node.target for node in traced.graph.nodes if node.op == "call_module"}
    assert {"stem.conv", "mix.branch3x3.reduce.conv", "fc"} <= called  # the spec's names survive
    assert not any(target.startswith("aux") for target in called)  # eval mode: no aux head
    x = inputs(model.spec, 3)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model(x), rtol=0, atol=0)


def test_torch_compile_full_graph():
    """Dynamo captures the whole model in one graph (fullgraph: no graph breaks). The
    aot_eager backend keeps this fast; inductor, which compiles C++, is the slow test below."""
    torch._dynamo.reset()
    model = small_model(**AUX).eval()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    for batch in (2, 5):
        x = inputs(model.spec, batch)
        with torch.no_grad():
            torch.testing.assert_close(compiled(x), model(x), rtol=0, atol=0)


@pytest.mark.slow
def test_torch_compile_inductor():
    torch._dynamo.reset()
    model = small_model().eval()
    compiled = torch.compile(model, fullgraph=True)
    x = inputs(model.spec, 2)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-6)


# The command line.


def archbuild(*args: str, code: str = "") -> subprocess.CompletedProcess:
    run = f"{code}\nimport sys\nfrom archbuilder.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", run, *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


@pytest.mark.slow  # over 2.5 s: CI runs it; the fast subset stays under 3 minutes
def test_export_command_onnx(tmp_path):
    output = tmp_path / "small.onnx"
    result = archbuild("export", str(SMALL), "-o", str(output), "--set", "num_classes=6")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote {output} (ONNX opset 20, input batch×3×16×16)\n"
    assert run_onnx(output, inputs(archbuilder.load_spec(SMALL), 2)).shape == (2, 6)


@pytest.mark.slow
def test_export_command_pt2(tmp_path):
    output = tmp_path / "small.pt2"
    result = archbuild("export", str(SMALL), "-o", str(output), "--num-classes", "3")
    assert result.returncode == 0, result.stderr
    assert "torch.export program" in result.stdout
    assert torch.export.load(str(output)).module()(torch.randn(2, 3, 16, 16)).shape == (2, 3)


@pytest.mark.slow  # over 2.5 s: CI runs it; the fast subset stays under 3 minutes
def test_export_command_errors(tmp_path):
    simulated = "import sys; sys.modules['onnxscript'] = None  # as if it were not installed"
    missing = archbuild("export", str(SMALL), "-o", str(tmp_path / "m.onnx"), code=simulated)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr  # 2: a missing extra
    assert missing.stderr == (
        "archbuild: error: ONNX export needs onnxscript (not installed): pip install 'archbuilder[onnx]'\n"
    )
    assert not (tmp_path / "m.onnx").exists()

    bad_suffix = archbuild("export", str(SMALL), "-o", str(tmp_path / "m.tflite"))
    assert bad_suffix.returncode == 2 and "unsupported extension '.tflite'" in bad_suffix.stderr
    assert archbuild("export", str(SMALL), "--opset", "9").returncode == 2
    broken = archbuild("export", str(ROOT / "tests" / "data" / "broken" / "bad_tap.yaml"))
    assert broken.returncode == 1 and "Traceback" not in broken.stderr
    unwritable = archbuild("export", str(SMALL), "-o", str(tmp_path / "no" / "m.pt2"))
    assert unwritable.returncode == 1 and "cannot write" in unwritable.stderr


@pytest.mark.slow  # over 2.5 s: CI runs it; the fast subset stays under 3 minutes
def test_export_command_from_a_checkpoint(tmp_path):
    model = small_model()  # trained-looking batch norms: not what a fresh build from the spec has
    checkpoint = archbuilder.save_checkpoint(tmp_path / "run.pt", model, epoch=3)
    result = archbuild("export", "--checkpoint", str(checkpoint))
    output = tmp_path / "run.onnx"  # the default: the checkpoint's name with .onnx
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote {output} (ONNX opset 20, input batch×3×16×16)\n"
    check_onnx(output, model, batches=(2,))


@pytest.mark.slow  # over 2.5 s: CI runs it; the fast subset stays under 3 minutes
def test_export_command_checkpoint_errors(tmp_path):
    both = archbuild("export", str(SMALL), "--checkpoint", str(tmp_path / "run.pt"))
    assert both.returncode == 2 and "one of them" in both.stderr
    neither = archbuild("export")
    assert neither.returncode == 2 and "one of them" in neither.stderr
    checkpoint = archbuilder.save_checkpoint(tmp_path / "run.pt", small_model())
    retarget = archbuild("export", "--checkpoint", str(checkpoint), "--num-classes", "3")
    assert retarget.returncode == 2 and "exported as trained" in retarget.stderr
    missing = archbuild(
        "export", "--checkpoint", str(tmp_path / "nothing.pt"), "-o", str(tmp_path / "x.onnx")
    )
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert "nothing.pt: no such file" in missing.stderr
    not_ours = tmp_path / "weights.pt"
    torch.save(small_model().state_dict(), not_ours)
    foreign = archbuild("export", "--checkpoint", str(not_ours), "-o", str(tmp_path / "x.onnx"))
    assert foreign.returncode == 1 and "not an archbuilder checkpoint" in foreign.stderr
    assert not (tmp_path / "x.onnx").exists()
