"""int8 (PT2E) and bf16 on a trained model: what is quantized, the accuracy cost, the exports, the CLI."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
import torch

import archbuilder
from archbuilder.builder.quantize import quantize
from archbuilder.cli.main import main as archbuild
from tests.conftest import ROOT, load_module
from tests.test_optimize import trained_looking
from tests.test_precision import SMALL, small

needs_torchao = pytest.mark.skipif(
    importlib.util.find_spec("torchao") is None, reason="int8 quantization needs torchao"
)

DEQUANTIZE_WEIGHT = "quantized_decomposed.dequantize_per_channel.default"


def ops(program: torch.fx.GraphModule) -> Counter:
    return Counter(str(node.target) for node in program.graph.nodes if node.op == "call_function")


def calibration(count: int = 2) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(4, 3, 16, 16, generator=generator) for _ in range(count)]


@pytest.mark.slow
@needs_torchao
def test_every_conv_is_int8_but_the_layers_kept_in_fp32():
    model = small()
    found = ops(quantize(model, calibration(), compile=False).program)
    # SMALL by hand: conv1, then per Inception block 5 convs once the two 1×1 reductions are
    # one conv (1×1, fused reductions, 3×3, 5×5, pool proj): 11 convs, all with int8 weights.
    assert found["aten.conv2d.default"] == 11 and found[DEQUANTIZE_WEIGHT] == 11
    assert found["aten.linear.default"] == 1  # the classifier, kept fp32 by default: no int8 weight
    # concats and max pools stay int8 (read a dequantize), but 3a's pool, which reads the LRN
    graph = quantize(model, calibration(), compile=False).program.graph
    cats = [n.args[0][0] for n in graph.nodes if n.target == torch.ops.aten.cat.default]
    pools = [n.args[0] for n in graph.nodes if n.target == torch.ops.aten.max_pool2d.default]
    assert len(cats) == 2 and all("dequantize" in str(n.target) for n in cats)
    assert ["dequantize" in str(n.target) for n in pools] == [False, True, True]
    kept = ops(quantize(model, calibration(), keep_fp32=["conv1", "3b"], compile=False).program)
    assert kept[DEQUANTIZE_WEIGHT] == 5 + 1  # 3a, and fc: the argument replaces the default
    unfused = ops(quantize(model, calibration(), fuse_siblings=False, compile=False).program)
    assert unfused["aten.conv2d.default"] == 1 + 2 * 6


@pytest.mark.slow
@needs_torchao
def test_int8_onnx_is_qdq_and_onnxruntime_agrees(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    import onnx

    model = small()
    path = tmp_path / "small-int8.onnx"
    archbuilder.export_model(model, path, dtype="int8", calibration=calibration())
    kinds = Counter(node.op_type for node in onnx.load(path).graph.node)
    assert kinds["QuantizeLinear"] >= 11 and kinds["DequantizeLinear"] >= 22 and kinds["Conv"] == 11
    x = torch.randn(3, 3, 16, 16)  # another batch size: the batch stays dynamic
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": x.numpy()})
    with torch.inference_mode():
        expected = model(x).numpy()
    # int8 against the float model: within int8's resolution, same predictions
    assert np.abs(got - expected).max() / np.abs(expected).max() < 0.1
    assert (got.argmax(1) == expected.argmax(1)).mean() >= 2 / 3


@pytest.mark.slow
@needs_torchao
def test_int8_onnx_from_the_command_line_with_calibration_images(tmp_path, capsys):
    spec, images, out = tmp_path / "small.yaml", tmp_path / "calib.npy", tmp_path / "small-int8.onnx"
    spec.write_text(SMALL)
    np.save(images, np.random.default_rng(0).standard_normal((12, 3, 16, 16)).astype(np.float32))
    assert (
        archbuild(["export", str(spec), "--dtype", "int8", "--calibration", str(images), "-o", str(out)]) == 0
    )
    assert "ONNX opset 20, int8" in capsys.readouterr().out
    import onnx

    assert Counter(node.op_type for node in onnx.load(out).graph.node)["QuantizeLinear"] >= 11


def test_bf16_onnx_is_refused_with_the_reason(tmp_path, capsys):
    spec = tmp_path / "small.yaml"
    spec.write_text(SMALL)
    assert archbuild(["export", str(spec), "--dtype", "bf16", "-o", str(tmp_path / "s.onnx")]) == 2
    assert "onnxruntime's CPU provider has no bf16 Conv kernel" in capsys.readouterr().err
    assert archbuild(["export", str(spec), "--calibration", "c.npy"]) == 2
    assert "--calibration applies to --dtype int8" in capsys.readouterr().err
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((4, 16), dtype=np.float32))
    argv = ["export", str(spec), "--dtype", "int8", "--calibration", str(bad), "-o", str(tmp_path / "s.pt2")]
    assert archbuild(argv) == 1
    assert "must be an N×C×H×W float array" in capsys.readouterr().err


@pytest.mark.slow
def test_bf16_pt2_export_from_the_command_line_loads_and_runs(tmp_path, capsys):
    spec = tmp_path / "small.yaml"
    spec.write_text(SMALL)
    out = tmp_path / "small-bf16.pt2"
    assert archbuild(["export", str(spec), "--dtype", "bf16", "-o", str(out)]) == 0
    assert "torch.export program, bf16" in capsys.readouterr().out
    program = torch.export.load(out)
    weights = [t for t in program.state_dict.values()] + list(program.constants.values())
    assert any(t.dtype == torch.bfloat16 for t in weights if isinstance(t, torch.Tensor))
    logits = program.module()(torch.randn(5, 3, 16, 16))
    assert logits.shape == (5, 5) and logits.dtype == torch.float32


@pytest.mark.slow
def test_bench_prints_a_row_per_contender(tmp_path, capsys):
    spec = tmp_path / "small.yaml"
    spec.write_text(SMALL)
    assert archbuild(["bench", str(spec), "--dtype", "bf16", "--batch", "2", "--repeats", "2"]) == 0
    out = capsys.readouterr().out
    assert "small, batch 2, bf16" in out and "archbuilder bf16" in out and "no torchvision twin" in out


def test_bench_takes_a_thread_count_and_says_when_the_machine_was_busy(tmp_path, capsys, monkeypatch):
    spec = tmp_path / "small.yaml"
    spec.write_text(SMALL)
    threads = torch.get_num_threads()
    command = ["bench", str(spec), "--batch", "1", "--repeats", "1", "--no-twin", "--threads", "1"]
    try:
        monkeypatch.setattr("os.getloadavg", lambda: (0.0, 0.0, 0.0))
        assert archbuild(command) == 0
        out = capsys.readouterr().out
        assert "small, batch 1, fp32: median of 1 interleaved calls, 1 thread," in out and "busy" not in out
        monkeypatch.setattr("os.getloadavg", lambda: (64.0, 64.0, 64.0))
        assert archbuild(command) == 0
        assert "the machine was busy: load average 64.0" in capsys.readouterr().out
    finally:
        torch.set_num_threads(threads)


# -- a trained model: the accuracy cost, measured --------------------------------------------
@pytest.fixture(scope="module")
def trained(digits_default_run):
    """The digits model trained by examples/train_digits.py (default settings, ≥ 97%), and its data."""
    _, checkpoint = digits_default_run
    train, test = load_module(ROOT / "examples" / "train_digits.py").digits()
    return archbuilder.load_checkpoint(checkpoint).model.eval(), train, test


def agreement_and_drop(model, candidate, test) -> tuple[float, float]:
    images, labels = test.tensors
    with torch.inference_mode():
        expected, got = model(images).argmax(1), candidate(images).float().argmax(1)
    drop = (expected == labels).float().mean() - (got == labels).float().mean()
    return (got == expected).float().mean().item(), drop.item() * 100


@pytest.mark.slow
def test_bf16_agrees_with_fp32_on_the_trained_digits_model(trained):
    model, _, test = trained
    bf16 = archbuilder.optimize_for_inference(model, dtype="bf16", input_shape=tuple(test.tensors[0].shape))
    agreement, drop = agreement_and_drop(model, bf16, test)
    assert agreement >= 0.995 and drop <= 0.5


@pytest.mark.slow
@needs_torchao
def test_int8_agrees_with_fp32_on_the_trained_digits_model(trained):
    model, train, test = trained
    int8 = quantize(model, list(train.tensors[0].split(64)))  # calibrated on training images
    agreement, drop = agreement_and_drop(model, int8, test)
    assert agreement >= 0.99 and drop <= 0.5


@pytest.mark.slow
@needs_torchao
def test_cpp_wrapper_runs_the_same_int8_kernels():
    model, batches = small(), calibration()
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        python_wrapper = quantize(model, batches)(x)
        cpp_wrapper = quantize(model, batches, cpp_wrapper=True)(x)
    assert torch.equal(cpp_wrapper, python_wrapper)  # same kernels, called from C++


CEIL_POOL = """
name: ceil-pool
input: {channels: 3, height: 16, width: 16}
num_classes: 5
defaults: {conv: {norm: batch, activation: relu, bias: false}}
stem:
  - {name: conv1, kind: conv, out: 16, kernel: 3, padding: 1}
  - {name: pool1, kind: maxpool, kernel: 3, stride: 2, ceil_mode: true}  # 16 → 8 (floor mode: 7)
blocks:
  - {name: 3a, kind: inception, ch1x1: 8, ch3x3red: 8, ch3x3: 16, ch5x5red: 4, ch5x5: 8, pool_proj: 8}
  - {name: pool2, kind: maxpool, kernel: 3, stride: 2, ceil_mode: true}  # 8 → 4 (floor mode: 3)
head:
  - {name: flatten, kind: flatten}
  - {name: fc, kind: linear, out: num_classes}
"""


def classifier_code_tolerance(
    program: torch.fx.GraphModule, classifier: torch.nn.Linear, codes: int
) -> float:
    """How far two runs of one int8 program may put a logit apart when ``codes`` of the (float)
    classifier's inputs land one quantization step apart: a requantization can round a tie
    to the neighbouring code when two kernels multiply the scales in another order. Worst
    case: those inputs meet the largest weight."""
    (linear,) = [n for n in program.graph.nodes if n.target == torch.ops.aten.linear.default]
    source = linear.args[0]
    while "dequantize_per_tensor" not in str(source.target):  # through flatten / view
        source = source.args[0]
    step = source.args[1]  # the scale of the classifier's uint8 input
    return codes * step * classifier.weight.abs().max().item()


@pytest.mark.slow
@needs_torchao
def test_compiled_int8_pools_in_ceil_mode_as_the_reference_graph_does():
    """Inductor's int8 max pool drops ceil mode (torch 2.14.1); the quantized graph pools by
    edge padding instead, and the compiled model computes what the reference graph does:
    the same integer arithmetic, so at most a few rounding ties apart. On a CPU without VNNI
    that holds only with 7-bit activations: with 8 bits oneDNN's 16-bit pair sums saturate
    and the logits move by 2–3% of the largest (ONEDNN_MAX_CPU_ISA=AVX2), 2–4× this bound."""
    torch.manual_seed(0)
    model = trained_looking(archbuilder.build(archbuilder.load_spec(CEIL_POOL))).eval()
    batches = calibration()
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    reference_model = quantize(model, batches, compile=False)
    with torch.inference_mode():
        compiled, reference = quantize(model, batches)(x), reference_model(x)
        expected = model(x)
    assert compiled.shape == reference.shape == (2, 5)
    tolerance = classifier_code_tolerance(reference_model.program, model.fc, codes=4)
    assert tolerance < 0.015 * reference.abs().max()  # tight enough to see a saturated sum
    assert (compiled - reference).abs().max() <= tolerance
    assert (reference - expected).abs().max() <= 0.1 * expected.abs().max()  # int8 against float


@pytest.mark.slow
@needs_torchao
def test_edge_padded_pools_stay_int8_and_export_to_onnx(tmp_path):
    """The edge pad before each ceil-mode pool copies uint8 values (no float round trip), the
    pools read int8, and onnxruntime runs the exported graph as the reference graph does."""
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = trained_looking(archbuilder.build(archbuilder.load_spec(CEIL_POOL))).eval()
    batches = calibration()
    graph = quantize(model, batches, compile=False).program.graph
    pads = [n for n in graph.nodes if n.target == torch.ops.aten.pad.default]
    pools = [n for n in graph.nodes if n.target == torch.ops.aten.max_pool2d.default]
    quantized = "quantized_decomposed.quantize_per_tensor.default"
    assert len(pads) == 2 and [str(n.args[0].target) for n in pads] == [quantized] * 2
    assert len(pools) == 3  # pool1, 3a's pool branch, pool2: each reads an int8 tensor
    assert all(str(n.args[0].target).startswith("quantized_decomposed.dequantize") for n in pools)
    path = tmp_path / "ceil-int8.onnx"
    archbuilder.export_model(model, path, dtype="int8", calibration=batches)
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": x.numpy()})
    with torch.inference_mode():
        reference = quantize(model, batches, compile=False)(x).numpy()
    assert got.shape == (2, 5)
    assert np.abs(got - reference).max() <= 0.02 * np.abs(reference).max()


@pytest.mark.slow
@needs_torchao
def test_without_torchaos_private_hooks_the_plain_quantizer_is_used_and_is_correct(monkeypatch):
    """The edge-pad-aware quantizer leans on torchao's private hooks; if any differs (a name, a
    parameter, an annotation field), the plain X86InductorQuantizer runs: pads and the pools
    after them in float, the same function."""
    import types

    flow = importlib.import_module("archbuilder.builder.quantize")  # the package re-exports the function
    x86 = flow._torchao().x86  # imported as quantize does: its inductor pass put back

    assert flow._private_api_matches(x86)
    for missing in ("_is_any_annotated", "QUANT_ANNOTATION_KEY", "X86InductorQuantizer"):
        stripped = types.SimpleNamespace(**{k: v for k, v in vars(x86).items() if k != missing})
        assert not flow._private_api_matches(stripped), missing

    class Renamed(x86.X86InductorQuantizer):  # a parameter renamed upstream
        def _annotate_output_share_observer_as_input(self, node, source):
            return None

    renamed = types.SimpleNamespace(**{**vars(x86), "X86InductorQuantizer": Renamed})
    assert not flow._private_api_matches(renamed)
    assert flow._edge_pad_aware.__wrapped__(renamed) is Renamed

    monkeypatch.setattr(flow, "_private_api_matches", lambda module: False)
    flow._edge_pad_aware.cache_clear()
    try:
        torch.manual_seed(0)
        model = trained_looking(archbuilder.build(archbuilder.load_spec(CEIL_POOL))).eval()
        reference = quantize(model, calibration(), compile=False)
        pads = [n for n in reference.program.graph.nodes if n.target == torch.ops.aten.pad.default]
        quantized = "quantized_decomposed.quantize_per_tensor.default"
        assert pads and not any(str(n.args[0].target) == quantized for n in pads)  # float pads
        x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))
        with torch.inference_mode():
            compiled, expected = quantize(model, calibration())(x), reference(x)
        tolerance = classifier_code_tolerance(reference.program, model.fc, codes=4)
        assert (compiled - expected).abs().max() <= tolerance
    finally:
        flow._edge_pad_aware.cache_clear()


def test_int8_without_onednn_is_refused_with_what_to_use_instead(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)  # a torch built without it
    with pytest.raises(archbuilder.UnsupportedOnThisCPU, match=r"compile=False"):
        quantize(small(), calibration())
    spec = tmp_path / "small.yaml"
    spec.write_text(SMALL)
    if importlib.util.find_spec("torchao") is None:
        pytest.skip("the command line asks for torchao first")
    assert archbuild(["bench", str(spec), "--dtype", "int8", "--batch", "1", "--repeats", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("archbuild: error: int8 kernels need oneDNN") and "Traceback" not in err


@pytest.mark.slow
@needs_torchao
def test_quantize_leaves_inductors_passes_as_it_found_them():
    """Importing torchao's x86 quantizer installs its int8 pass in inductor for the whole
    process; left there, a float model compiled later in the same process corrupted the heap
    (GoogLeNet, batch 8 then 1, torch 2.14.1). quantize puts it back and its int8 programs
    compile with it. A fresh interpreter, so that no other test's import of torchao counts."""
    code = f"""
import torch, archbuilder
from archbuilder.builder.quantize import quantize
spec = archbuilder.load_spec({SMALL!r})
model = archbuilder.build(spec).eval()
before = torch._inductor.config.pre_grad_custom_pass
int8 = quantize(model, [torch.rand(2, 3, 16, 16)])
with torch.inference_mode():
    int8(torch.rand(2, 3, 16, 16))
print(before is None, torch._inductor.config.pre_grad_custom_pass is before)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["True", "True"]
