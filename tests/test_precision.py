"""bf16 inference: which layers run in bf16, the precision policy, the CPU-feature warning."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import archbuilder
from archbuilder.builder import precision_cpu
from archbuilder.builder.optimize import FusedConv
from archbuilder.builder.precision import Cast, Float32
from archbuilder.errors import SpecError
from tests.test_optimize import relative_error, trained_looking

SMALL = """
name: small
input: {channels: 3, height: 16, width: 16}
num_classes: 5
defaults: {conv: {norm: batch, activation: relu, bias: false}}
stem:
  - {name: conv1, kind: conv, out: 16, kernel: 3, padding: 1}
  - {name: norm1, kind: lrn, size: 5}
blocks:
  - {name: 3a, kind: inception, ch1x1: 8, ch3x3red: 8, ch3x3: 16, ch5x5red: 4, ch5x5: 8, pool_proj: 8}
  - {name: pool3, kind: maxpool, kernel: 2, stride: 2}
  - {name: 3b, kind: inception, ch1x1: 8, ch3x3red: 8, ch3x3: 16, ch5x5red: 4, ch5x5: 8, pool_proj: 8}
head:
  - {name: avgpool, kind: global_avgpool}
  - {name: flatten, kind: flatten}
  - {name: fc, kind: linear, out: num_classes}
"""


def small(extra: str = "") -> archbuilder.ArchModel:
    torch.manual_seed(0)
    return trained_looking(archbuilder.build(archbuilder.load_spec(SMALL + extra)))


def convs(model: nn.Module) -> list[FusedConv]:
    return [m for m in model.modules() if isinstance(m, FusedConv)]


def test_bf16_convs_run_in_onednn_and_the_classifier_stays_fp32():
    model = small()
    optimized = archbuilder.optimize_for_inference(model, dtype="bf16", input_shape=(2, 3, 16, 16))
    assert all(conv.weight.dtype == torch.bfloat16 for conv in convs(optimized))
    # oneDNN runs every conv where torch has it, none where it has not (no branch that may not run)
    assert {conv.onednn for conv in convs(optimized)} == {torch.backends.mkldnn.is_available()}
    (fc,) = [m for m in optimized.modules() if isinstance(m, nn.Linear)]
    assert fc.weight.dtype == torch.float32
    # bf16 at the input, float32 around the LRN, back before the classifier; none at the output
    kinds = [type(m).__name__ if not isinstance(m, Cast) else str(m.dtype) for m in optimized.body]
    assert kinds[:4] == ["torch.bfloat16", "FusedConv", "torch.float32", "LocalResponseNorm"]
    assert kinds[4] == "torch.bfloat16" and kinds[-3:] == ["Flatten", "torch.float32", "Linear"]
    x = torch.randn(4, 3, 16, 16)
    with torch.inference_mode():
        logits = optimized(x)
        expected = model(x)
    assert logits.dtype == torch.float32
    # bf16 keeps 8 significant bits (relative rounding 2^-9 ≈ 0.2%); a few layers add up
    assert 1e-4 < relative_error(logits, expected) <= 3e-2  # above 1e-4: bf16 really ran


def test_keep_fp32_in_the_spec_and_as_an_argument():
    model = small("precision: {keep_fp32: [conv1, 3b]}\n")
    optimized = archbuilder.optimize_for_inference(model, dtype=torch.bfloat16, input_shape=(2, 3, 16, 16))
    dtypes = [conv.weight.dtype for conv in convs(optimized)]
    # conv1, then 3a's convs (4 after sibling fusion), then 3b's: only 3a in bf16
    assert dtypes == [torch.float32] + [torch.bfloat16] * 4 + [torch.float32] * 4
    # the argument wins over the spec; [] keeps nothing in fp32, so the logits come out bf16 and are cast
    everything = archbuilder.optimize_for_inference(
        model, dtype="bf16", keep_fp32=[], output_dtype=None, input_shape=(2, 3, 16, 16)
    )
    (fc,) = [m for m in everything.modules() if isinstance(m, nn.Linear)]
    assert fc.weight.dtype == torch.bfloat16
    with torch.inference_mode():
        assert everything(torch.randn(2, 3, 16, 16)).dtype == torch.bfloat16


def test_a_bad_layer_name_is_refused_with_its_location_or_a_suggestion():
    with pytest.raises(SpecError) as caught:
        archbuilder.load_spec(SMALL + "precision:\n  keep_fp32: [conv1, fcc]\n")
    (problem,) = caught.value.problems
    assert problem.path == ("precision", "keep_fp32", 1)
    assert problem.line == SMALL.count("\n") + 2 and "did you mean 'fc'" in problem.message
    with pytest.raises(SpecError, match="unknown key 'keep_fp16'"):
        archbuilder.load_spec(SMALL + "precision: {keep_fp16: [fc]}\n")
    with pytest.raises(ValueError, match="did you mean 'conv1'"):
        archbuilder.optimize_for_inference(small(), dtype="bf16", keep_fp32=["convl"])
    with pytest.raises(ValueError, match="dtype must be one of fp32, bf16"):
        archbuilder.optimize_for_inference(small(), dtype="fp16")


def test_an_lrn_inside_a_block_runs_in_float32():
    block = (
        "  - {name: n, kind: branches, branches: [{name: a, layers: "
        "[{name: c, kind: conv, out: 8, kernel: 1}, {name: l, kind: lrn, size: 3}]}]}\n"
    )
    spec = SMALL.replace("head:\n", block + "head:\n")
    torch.manual_seed(0)
    model = trained_looking(archbuilder.build(archbuilder.load_spec(spec)))
    optimized = archbuilder.optimize_for_inference(model, dtype="bf16", input_shape=(2, 3, 16, 16))
    (wrapped,) = [m for m in optimized.modules() if isinstance(m, Float32)]
    assert isinstance(wrapped.module, nn.LocalResponseNorm)
    x = torch.randn(2, 3, 16, 16)
    with torch.inference_mode():
        assert relative_error(optimized(x), model(x)) <= 3e-2


def test_fp32_is_unchanged_by_the_precision_step():
    model = small()
    optimized = archbuilder.optimize_for_inference(model, input_shape=(2, 3, 16, 16))
    assert not any(isinstance(m, Cast | Float32) for m in optimized.modules())
    x = torch.randn(2, 3, 16, 16)
    with torch.inference_mode():
        assert relative_error(optimized(x), model(x)) <= 1e-5


@pytest.mark.slow
def test_bf16_model_compiles_and_exports():
    # Two Inception blocks: each kind of kernel inductor makes for a larger model (every extra
    # block would add compile time, not a new case).
    model = small()
    optimized = archbuilder.optimize_for_inference(model, dtype="bf16", input_shape=(2, 3, 16, 16))
    x = torch.randn(2, 3, 16, 16)
    with torch.inference_mode():
        eager = optimized(x)
        compiled = torch.compile(optimized)(x)
    assert compiled.dtype == torch.float32
    assert relative_error(compiled, eager) <= 2e-2  # inductor's bf16 kernels round differently
    program = torch.export.export(optimized, (x,))
    dtypes = {getattr(n.meta.get("val"), "dtype", None) for n in program.graph.nodes}
    assert torch.bfloat16 in dtypes
    with torch.inference_mode():
        assert relative_error(program.module()(x), eager) <= 2e-2


class TestCpuFeatures:
    @pytest.fixture(autouse=True)
    def fresh(self, monkeypatch):
        monkeypatch.setattr(precision_cpu, "_warned", set())

    def machine(self, monkeypatch, capability: str, flags: set[str]) -> None:
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
        monkeypatch.setattr(precision_cpu, "cpu_flags", lambda: frozenset(flags))

    def test_an_avx2_machine_is_warned_once_per_kind(self, monkeypatch):
        self.machine(monkeypatch, "AVX2", {"avx2", "fma"})
        with pytest.warns(
            precision_cpu.NotAcceleratedWarning, match="bf16 inference works .* not accelerated"
        ):
            precision_cpu.warn_if_not_accelerated("bf16")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            precision_cpu.warn_if_not_accelerated("bf16")  # once only
        with pytest.warns(precision_cpu.NotAcceleratedWarning, match="avx512_vnni"):
            precision_cpu.warn_if_not_accelerated("int8")

    def test_avx512_without_bf16_is_warned_for_bf16_but_not_for_vnni_int8(self, monkeypatch):
        self.machine(monkeypatch, "AVX512", {"avx512f", "avx512_vnni"})  # Cascade Lake
        assert not precision_cpu.accelerated("bf16") and precision_cpu.accelerated("int8")
        with pytest.warns(precision_cpu.NotAcceleratedWarning, match="amx_bf16 or avx512_bf16"):
            archbuilder.optimize_for_inference(small(), dtype="bf16", input_shape=(1, 3, 16, 16))

    def test_avx_vnni_on_an_avx2_machine_accelerates_int8(self, monkeypatch):
        self.machine(monkeypatch, "AVX2", {"avx2", "avx_vnni"})  # Alder Lake
        assert precision_cpu.accelerated("int8") and not precision_cpu.accelerated("bf16")

    def test_a_machine_with_avx512_bf16_is_not_warned(self, monkeypatch):
        self.machine(monkeypatch, "AVX512", {"avx512f", "avx512_bf16", "avx512_vnni"})
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            archbuilder.optimize_for_inference(small(), dtype="bf16", input_shape=(1, 3, 16, 16))

    def test_no_vector_unit_is_never_accelerated(self, monkeypatch):
        self.machine(monkeypatch, "DEFAULT", {"avx512_bf16", "amx_int8"})  # ATEN_CPU_CAPABILITY=default
        assert not precision_cpu.accelerated("bf16") and not precision_cpu.accelerated("int8")

    def test_without_cpu_flags_pytorchs_probes_decide(self, monkeypatch):
        self.machine(monkeypatch, "AVX512", set())  # no /proc/cpuinfo (or no flags line)
        for name, value in (("_is_avx512_bf16_supported", False), ("_is_amx_tile_supported", False),
                            ("_is_vnni_supported", True)):  # fmt: skip
            monkeypatch.setattr(torch.cpu, name, lambda value=value: value, raising=False)
        assert not precision_cpu.accelerated("bf16") and precision_cpu.accelerated("int8")

    @pytest.mark.slow
    def test_int8_on_a_machine_without_vnni_warns_once_and_still_quantizes(self, monkeypatch):
        pytest.importorskip("torchao")
        from archbuilder.builder.quantize import quantize

        self.machine(monkeypatch, "AVX2", {"avx2", "fma"})  # Haswell: no VNNI of any kind
        batches = [torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))]
        model = small()
        with pytest.warns(precision_cpu.NotAcceleratedWarning, match="int8 inference works"):
            quantized = quantize(model, batches, compile=False)
        with warnings.catch_warnings():
            warnings.simplefilter("error", precision_cpu.NotAcceleratedWarning)
            quantize(model, batches, compile=False)  # once per process
        with torch.inference_mode():
            assert quantized(batches[0]).shape == (2, 5)

    def test_this_machine_agrees_with_pytorchs_own_probes(self):
        probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
        if probe is None or not precision_cpu.cpu_flags():
            pytest.skip("no /proc/cpuinfo or no PyTorch probe here")
        assert precision_cpu.accelerated("bf16") == (probe() or torch.cpu._is_amx_tile_supported())
        assert precision_cpu.accelerated("int8") == torch.cpu._is_vnni_supported()
