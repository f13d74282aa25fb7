"""bf16 inference: which layers run in bf16, the precision policy, the CPU-feature warning."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest
import torch
from torch import nn

import archbuilder
from archbuilder.builder import precision_cpu
from archbuilder.builder.optimize import FusedConv
from archbuilder.builder.precision import Cast, Float32
from archbuilder.core.errors import SpecError
from tests.conftest import SPECS
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


# bf16 keeps 8 significant bits: each rounding moves a value by at most u = 2^-9 of itself.
# SMALL rounds 13 times on its deepest path (the input; conv1's weights and output; the cast
# after the LRN; 2 convs deep in each Inception block, weights and output; the average pool),
# and relative errors add at worst: 13u ≈ 2.5% of the largest logit.
BF16_TOLERANCE = 13 * 2**-9


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
    assert 1e-4 < relative_error(logits, expected) <= BF16_TOLERANCE  # above 1e-4: bf16 really ran


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
        assert relative_error(optimized(x), model(x)) <= BF16_TOLERANCE


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
    # inductor rounds to bf16 in other places (fewer: it fuses), each path within the bound
    assert relative_error(compiled, eager) <= BF16_TOLERANCE
    program = torch.export.export(optimized, (x,))
    dtypes = {getattr(n.meta.get("val"), "dtype", None) for n in program.graph.nodes}
    assert torch.bfloat16 in dtypes
    with torch.inference_mode():
        assert relative_error(program.module()(x), eager) <= BF16_TOLERANCE


AVX2 = {"avx", "avx2", "fma"}  # AMD Zen 2/3, Intel Haswell to Comet Lake
AVX512 = AVX2 | {"avx512f", "avx512bw", "avx512vl", "avx512dq"}  # Skylake-SP


def support(flags: set[str], *, onednn_bf16: bool, capability: str = "AVX2") -> precision_cpu.CpuSupport:
    return precision_cpu.CpuSupport(frozenset(flags), capability, None, onednn_bf16)


class TestCpuFeatures:
    """Each machine through archbuilder's one seam, :func:`precision_cpu.cpu_support`: the
    decisions follow it and the fallbacks run their real kernels on whatever CPU runs the
    test (the ISA-capped CI step runs them under oneDNN's AVX2 kernels too)."""

    @pytest.fixture(autouse=True)
    def fresh(self, monkeypatch):
        monkeypatch.setattr(precision_cpu, "_warned", set())

    def machine(self, monkeypatch, found: precision_cpu.CpuSupport) -> None:
        monkeypatch.setattr(precision_cpu, "cpu_support", lambda: found)

    def test_an_avx2_machine_is_warned_once_per_kind_with_what_runs_instead(self, monkeypatch):
        self.machine(monkeypatch, support(AVX2, onednn_bf16=False))
        with pytest.warns(precision_cpu.NotAcceleratedWarning, match="computes in float32 from the bf16"):
            precision_cpu.warn_if_not_accelerated("bf16")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            precision_cpu.warn_if_not_accelerated("bf16")  # once only
        with pytest.warns(precision_cpu.NotAcceleratedWarning, match="7 bits"):
            precision_cpu.warn_if_not_accelerated("int8")

    def test_bf16_without_onednn_bf16_computes_each_conv_in_float32_and_never_packs_bf16(self, monkeypatch):
        """The AVX2 crash: torch refuses oneDNN's bf16 weight packing there. The fallback packs
        float32 copies of the bf16 weights and rounds each conv's output to bf16."""
        self.machine(monkeypatch, support(AVX2, onednn_bf16=False))
        packed_dtypes = []
        reorder = torch.ops.mkldnn._reorder_convolution_weight

        def recording(weight, *args):
            packed_dtypes.append(weight.dtype)
            return reorder(weight, *args)

        monkeypatch.setattr(torch.ops.mkldnn, "_reorder_convolution_weight", recording)
        model = small()
        with pytest.warns(precision_cpu.NotAcceleratedWarning):
            optimized = archbuilder.optimize_for_inference(model, dtype="bf16", input_shape=(2, 3, 16, 16))
        assert all(
            conv.weight.dtype == torch.bfloat16 and conv.computes_in_float32 for conv in convs(optimized)
        )
        assert set(packed_dtypes) <= {torch.float32}
        x = torch.randn(4, 3, 16, 16)
        with torch.inference_mode():
            logits = optimized(x)
            expected = model(x)
            # every conv's output is bf16: the rounding is real, not skipped
            outputs = [
                conv(torch.randn(1, conv.weight.shape[1], 8, 8).bfloat16()) for conv in convs(optimized)[:2]
            ]
        assert {out.dtype for out in outputs} == {torch.bfloat16}
        assert 1e-4 < relative_error(logits, expected) <= BF16_TOLERANCE

    def test_the_fallback_computes_what_onednn_bf16_computes(self, monkeypatch):
        """bf16 products are exact in float32 and the sums are float32 in both paths: the
        outputs differ only where the sums' order moves a bf16 rounding (one bf16 step)."""
        if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            pytest.skip("no oneDNN bf16 convs on this CPU to compare with")
        model = small()
        native = archbuilder.optimize_for_inference(model, dtype="bf16", input_shape=(2, 3, 16, 16))
        self.machine(monkeypatch, support(AVX2, onednn_bf16=False))
        with pytest.warns(precision_cpu.NotAcceleratedWarning):
            fallback = archbuilder.optimize_for_inference(model, dtype="bf16", input_shape=(2, 3, 16, 16))
        x = torch.randn(4, 3, 16, 16)
        with torch.inference_mode():
            assert relative_error(fallback(x), native(x)) <= BF16_TOLERANCE / 2

    def test_avx512_without_bf16_is_warned_for_bf16_but_not_for_vnni_int8(self, monkeypatch):
        found = support(AVX512 | {"avx512_vnni"}, onednn_bf16=True, capability="AVX512")  # Cascade Lake
        self.machine(monkeypatch, found)
        assert not precision_cpu.accelerated("bf16") and precision_cpu.accelerated("int8")
        assert not found.int8_reduce_range
        with pytest.warns(precision_cpu.NotAcceleratedWarning, match="amx_bf16 and avx512_bf16"):
            precision_cpu.warn_if_not_accelerated("bf16")
        if torch.ops.mkldnn._is_mkldnn_bf16_supported():  # oneDNN's bf16 convs run here: run them
            optimized = archbuilder.optimize_for_inference(small(), dtype="bf16", input_shape=(1, 3, 16, 16))
            assert not any(conv.computes_in_float32 for conv in convs(optimized))

    def test_avx_vnni_on_an_avx2_machine_accelerates_int8(self, monkeypatch):
        found = support(AVX2 | {"avx_vnni"}, onednn_bf16=False)  # Alder Lake
        self.machine(monkeypatch, found)
        assert precision_cpu.accelerated("int8") and not precision_cpu.accelerated("bf16")
        assert not found.int8_reduce_range

    def test_a_machine_with_avx512_bf16_is_not_warned(self, monkeypatch):
        if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            pytest.skip("this CPU has no oneDNN bf16 convs to run what such a machine runs")
        self.machine(monkeypatch, support(AVX512 | {"avx512_bf16", "avx512_vnni"}, onednn_bf16=True))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            optimized = archbuilder.optimize_for_inference(small(), dtype="bf16", input_shape=(1, 3, 16, 16))
        assert not any(conv.computes_in_float32 for conv in convs(optimized))

    def test_unvectorized_aten_is_never_accelerated(self):
        found = support({"avx512_bf16", "amx_int8"}, onednn_bf16=True, capability="DEFAULT")
        assert not found.accelerated("bf16") and not found.accelerated("int8")

    def test_onednns_isa_cap_hides_the_flags_above_it(self, monkeypatch):
        monkeypatch.setattr(
            precision_cpu, "cpu_flags", lambda: frozenset(AVX512 | {"avx512_bf16", "avx512_vnni"})
        )
        for cap, bf16, int8 in (
            ("AVX2", False, False),
            ("AVX512_CORE_VNNI", False, True),
            ("ALL", True, True),
        ):
            monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
            precision_cpu.cpu_support.cache_clear()
            found = precision_cpu.cpu_support()
            assert (bool(found.flags & {"avx512_bf16"}), found.accelerated("int8")) == (bf16, int8), cap
        precision_cpu.cpu_support.cache_clear()

    def test_without_cpu_flags_pytorchs_probes_decide(self, monkeypatch):
        monkeypatch.setattr(precision_cpu, "cpu_flags", frozenset)  # no /proc/cpuinfo (or no flags line)
        for name, value in (("_is_avx512_bf16_supported", False), ("_is_amx_tile_supported", False),
                            ("_is_vnni_supported", True)):  # fmt: skip
            monkeypatch.setattr(torch.cpu, name, lambda value=value: value, raising=False)
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
        precision_cpu.cpu_support.cache_clear()
        try:
            found = precision_cpu.cpu_support()
        finally:
            precision_cpu.cpu_support.cache_clear()
        assert not found.flags & precision_cpu.ACCELERATING_FLAGS["bf16"] and not found.int8_reduce_range

    @pytest.mark.slow
    def test_int8_on_a_machine_without_vnni_warns_once_and_reduces_the_range(self, monkeypatch):
        pytest.importorskip("torchao")
        from archbuilder.builder.quantize import quantize

        self.machine(monkeypatch, support(AVX2, onednn_bf16=False))  # Haswell: no VNNI of any kind
        batches = [torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))]
        model = small()
        with pytest.warns(precision_cpu.NotAcceleratedWarning, match="int8 is not accelerated"):
            quantized = quantize(model, batches, compile=False)
        with warnings.catch_warnings():
            warnings.simplefilter("error", precision_cpu.NotAcceleratedWarning)
            quantize(model, batches, compile=False)  # once per process
        ranges = {
            tuple(n.args[3:5])
            for n in quantized.program.graph.nodes
            if "quantize_per_tensor" in str(n.target)
        }
        assert ranges == {(0, 127)}  # 7-bit activations: no 16-bit pair sum can saturate
        with torch.inference_mode():
            assert quantized(batches[0]).shape == (2, 5)

    def test_this_machine_agrees_with_pytorchs_own_checks(self):
        found = precision_cpu.cpu_support()
        assert found.onednn_bf16 == torch.ops.mkldnn._is_mkldnn_bf16_supported()
        probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
        if probe is None or not precision_cpu.cpu_flags() or found.onednn_max_isa:
            pytest.skip("no /proc/cpuinfo or no PyTorch probe here, or oneDNN's ISA is capped")
        assert precision_cpu.accelerated("bf16") == (probe() or torch.cpu._is_amx_tile_supported())
        assert precision_cpu.accelerated("int8") == torch.cpu._is_vnni_supported()


@pytest.mark.slow
def test_bf16_runs_where_torch_refuses_onednns_bf16_convs(tmp_path):
    """Under ONEDNN_MAX_CPU_ISA=AVX2 torch's own check refuses oneDNN's bf16 weight packing,
    as on an AMD Zen 3, whatever CPU runs this: the crash this guards against, on real kernels."""
    spec = tmp_path / "small.yaml"
    spec.write_text(SMALL)
    code = f"""
import warnings, torch, archbuilder
from archbuilder.builder.precision_cpu import cpu_support
model = archbuilder.build(archbuilder.load_spec({str(spec)!r})).eval()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    optimized = archbuilder.optimize_for_inference(model, dtype="bf16", input_shape=(2, 3, 16, 16))
x = torch.randn(2, 3, 16, 16)
with torch.inference_mode():
    error = ((optimized(x) - model(x)).abs().max() / model(x).abs().max()).item()
print(cpu_support().onednn_bf16, len(caught), error)
"""
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    onednn_bf16, warned, error = result.stdout.split()
    assert onednn_bf16 == "False" and warned == "1" and float(error) <= BF16_TOLERANCE


def test_the_precision_benchmark_leaves_the_callers_random_state_alone():
    """It builds the same weights every run without reseeding the process: the caller's
    generator state is the same after it as before."""
    from archbuilder.benchmarks.precision_bench import benchmark

    spec = archbuilder.load_spec(SPECS / "inception-digits.yaml")
    torch.manual_seed(123)
    before = torch.random.get_rng_state().clone()
    benchmark(spec, batch=2, repeats=1, twin=False)
    assert torch.equal(torch.random.get_rng_state(), before)
