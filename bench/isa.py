"""GoogLeNet's inference paths against this CPU's fp32 floor, for the instruction set in use.

    python bench/isa.py [--batch 8 1] [--repeats 10] [--profile] [--variants]
                        [--no-compile] [--no-int8] [--no-digits]
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 python bench/isa.py

Run as it is, it measures the machine's own instruction set. Under the environment of the
second line, an AVX-512 machine runs oneDNN's AVX2 kernels (convs, int8; torch's oneDNN-bf16
check obeys the cap too) and ATen's AVX2 kernels (pools, elementwise, concat; inductor's
generated code follows ATen's capability). MKL honours its cap on Intel CPUs only. That is
emulation: the kernels of an AVX2 CPU on this CPU's cores, caches and clocks, good for
correctness and for where the time goes, not for an AVX2 CPU's speed.

It prints, in one process:
- the machine, what archbuilder sees of it (``cpu_support().describe()``) and the
  environment variables above where set;
- the fp32 floor: the GFLOP/s of a 2048² fp32 ``torch.matmul`` (MKL's SGEMM; the best of 21), and beside it
  oneDNN's own fp32 rate on one large 1×1 conv run the way ``optimize_for_inference`` runs its
  convs (packed weight, ``mkldnn::_convolution_pointwise``);
- which oneDNN kernels each path runs (from oneDNN's verbose log of one call);
- GoogLeNet (``specs/googlenet.yaml``, random weights, batch-norm statistics from data)
  timed interleaved against torchvision's ``googlenet`` in fp32 eager (its nearest reference:
  the same network with 3×3 convs where the paper has 5×5), the default build,
  ``optimize_for_inference`` in fp32 and under ``torch.compile``, in bf16, and ``quantize``
  (int8): ms, images/s, and the fraction of the fp32 floor (the row's own model's FLOP per
  batch at the matmul probe's rate) and of the oneDNN conv rate. ``--variants`` adds other
  layouts and kernels of the fp32 path: NCHW, separable max pools, ``compile_frozen``;
- ``--profile``: where ``optimize_for_inference`` fp32 spends its time, per top-level block
  (forward hooks; CPU ops are synchronous) and per operator (torch.profiler);
- the accuracy cost on a trained model: the digits model trained here by
  examples/train_digits.py (seed 0, one thread), bf16 and int8 against fp32.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable

import torch
import torchvision
from benchlib import ROOT, machine, median, print_repeats, table, time_interleaved
from inference import _print_profile
from precision_accuracy import digits as digits_accuracy
from precision_specs import calibrate_batch_norm
from torch import nn

import archbuilder
from archbuilder.builder.precision import Cast, compile_frozen
from archbuilder.builder.precision_cpu import cpu_support
from archbuilder.builder.quantize import calibration_batches

ENVIRONMENT = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")
SPEC = ROOT / "specs" / "googlenet.yaml"
REFERENCE_SPEC = ROOT / "specs" / "googlenet-torchvision.yaml"  # torchvision's layout, for its MACs
REFERENCE = "torchvision googlenet fp32 (nearest reference)"
PLAIN = "archbuilder (default build)"
OFI = "optimize_for_inference fp32"
COMPILED = "optimize_for_inference fp32 + torch.compile"
BF16 = "optimize_for_inference bf16"
INT8 = "quantize int8"
VARIANTS = {  # --variants: other layouts and kernels for the fp32 path, each a row of its own
    "optimize_for_inference fp32, NCHW": dict(channels_last=False),
    "optimize_for_inference fp32, separable max pools": dict(separable_pools=True),
}
FROZEN = "optimize_for_inference fp32 + compile_frozen"
SIZE = 224


def matmul_gflops(size: int = 2048, repeats: int = 21) -> tuple[float, list[float]]:
    """GFLOP/s of a size² fp32 ``torch.matmul`` (MKL's SGEMM), the best of ``repeats``, and the repeats."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    return _rate(lambda: a @ b, 2 * size**3, repeats)


def onednn_conv_gflops(
    channels: int = 2048, pixels: int = 2048, repeats: int = 21
) -> tuple[float, list[float]]:
    """GFLOP/s of oneDNN's fp32 1×1 conv (channels → channels over ``pixels`` pixels, channels-last),
    its weight packed once, as ``optimize_for_inference`` runs its convs: oneDNN's GEMM rate under
    the ISA it is allowed."""
    x = torch.randn(1, channels, 32, pixels // 32).contiguous(memory_format=torch.channels_last)
    weight, bias = torch.randn(channels, channels, 1, 1), torch.zeros(channels)
    packed = torch.ops.mkldnn._reorder_convolution_weight(weight, [0, 0], [1, 1], [1, 1], 1, list(x.shape))

    def run():
        return torch.ops.mkldnn._convolution_pointwise(
            x, packed, bias, [0, 0], [1, 1], [1, 1], 1, "none", [], ""
        )

    return _rate(run, 2 * channels * channels * pixels, repeats)


def _rate(run: Callable[[], object], flop: int, repeats: int, warmup: int = 3) -> tuple[float, list[float]]:
    """The best GFLOP/s of ``repeats`` calls, and all of them. The best, not the median: a floor is
    what the machine can do, and other work on it only ever slows a call down."""
    for _ in range(warmup):
        run()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        rates.append(flop / (time.perf_counter() - start) / 1e9)
    return max(rates), rates


def onednn_kernels(run: Callable[[], object]) -> Counter:
    """The oneDNN primitives ``run`` executes, by (primitive, implementation), from oneDNN's verbose
    log (written by C to file descriptor 1, so it is caught there). Reorders are layout changes of
    activations (an optimized model's weights are packed beforehand)."""
    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 1)
        try:
            with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON), torch.inference_mode():
                run()
        finally:
            libc.fflush(None)
            os.dup2(saved, 1)
            os.close(saved)
        caught.seek(0)
        text = caught.read().decode(errors="replace")
    kernels: Counter = Counter()
    for line in text.splitlines():
        fields = line.split(",")
        if len(fields) > 6 and fields[0] == "onednn_verbose" and "exec" in fields and "cpu" in fields:
            at = fields.index("exec")
            primitive, implementation = fields[at + 2], fields[at + 3]
            kernels[(primitive, implementation)] += 1
    return kernels


def googlenet_pair() -> tuple[nn.Module, archbuilder.ArchModel]:
    """torchvision's GoogLeNet and ours (specs/googlenet.yaml), random weights, eval, with
    batch-norm statistics from data: activations keep their scale instead of decaying into
    denormals through untrained layers."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = torchvision.models.googlenet(
            weights=None, aux_logits=True, init_weights=True, transform_input=False
        )
    model = archbuilder.build(SPEC, max_param_bytes=1 << 40)
    images = torch.randn(16, 3, SIZE, SIZE)
    calibrate_batch_norm(reference, images)
    calibrate_batch_norm(model, images)
    return reference.eval(), model.eval()


def first_calls(run: Callable, batches: list[int]) -> Callable:
    """``run`` after one call at every batch size (compiling, packing), so that none is timed."""
    with torch.inference_mode():
        for batch in batches:
            run(torch.randn(batch, 3, SIZE, SIZE))
    return run


def contenders(reference: nn.Module, model: archbuilder.ArchModel, args) -> dict[str, Callable]:
    """Every contender but int8, each called at every batch size as soon as it is made."""
    batches = args.batch
    runs = {REFERENCE: first_calls(reference, batches), PLAIN: first_calls(model, batches)}
    runs[OFI] = first_calls(archbuilder.optimize_for_inference(model), batches)
    if args.variants:
        for name, steps in VARIANTS.items():
            runs[name] = first_calls(archbuilder.optimize_for_inference(model, **steps), batches)
    if not args.no_compile:
        compiled = torch.compile(archbuilder.optimize_for_inference(model), dynamic=False)
        runs[COMPILED] = first_calls(compiled, batches)
        if args.variants:  # inductor's own weight packing, pools and concats (fuse_activations is its job)
            frozen = compile_frozen(archbuilder.optimize_for_inference(model, fuse_activations=False))
            runs[FROZEN] = first_calls(frozen, batches)
    runs[BF16] = first_calls(archbuilder.optimize_for_inference(model, dtype="bf16"), batches)
    return runs


def block_names(model: archbuilder.ArchModel, body: nn.Sequential) -> list[str]:
    """The spec's layer name of each of the optimized body's children (casts by their dtype)."""
    kept = [
        name
        for name in model.body_names
        if not isinstance(model.get_submodule(name), nn.Dropout | nn.Identity)
    ]
    names, layers = [], iter(kept)
    for child in body:
        names.append(f"cast to {child.extra_repr()}" if isinstance(child, Cast) else next(layers, "?"))
    return (
        names
        if next(layers, None) is None and "?" not in names
        else [f"{index}: {type(child).__name__}" for index, child in enumerate(body)]
    )


def block_profile(model: archbuilder.ArchModel, optimized: nn.Module, batch: int, calls: int = 10) -> None:
    """Time per top-level block of ``optimized`` (forward hooks around each, median of ``calls``), with
    each block's share, its multiply-adds and the rate it reaches."""
    body = optimized.body
    names = block_names(model, body)
    macs = {row.name: row.macs for row in archbuilder.summarize(model.spec).rows}
    seconds: dict[str, list[float]] = {name: [] for name in names}
    started: dict[str, float] = {}
    handles = []
    for name, child in zip(names, body):
        handles.append(
            child.register_forward_pre_hook(lambda *_, n=name: started.__setitem__(n, time.perf_counter()))
        )
        handles.append(
            child.register_forward_hook(
                lambda *_, n=name: seconds[n].append(time.perf_counter() - started[n])
            )
        )
    x = torch.randn(batch, 3, SIZE, SIZE)
    totals = []
    try:
        with torch.inference_mode():
            optimized(x)  # warm-up
            for values in seconds.values():
                values.clear()
            for _ in range(calls):
                start = time.perf_counter()
                optimized(x)
                totals.append(time.perf_counter() - start)
    finally:
        for handle in handles:
            handle.remove()
    per_block = {name: median(values) for name, values in seconds.items()}
    total = sum(per_block.values())
    rows = []
    for name, value in sorted(per_block.items(), key=lambda item: item[1], reverse=True):
        flop = 2 * macs.get(name, 0) * batch
        rows.append(
            [
                name,
                f"{value * 1e3:.2f}",
                f"{value / total * 100:.1f}%",
                f"{flop / 2e9:.3f}",
                f"{flop / value / 1e9:.0f}" if flop else "",
            ]
        )
    print(f"Where {OFI}'s time goes, per block (batch {batch}, median of {calls} calls; whole call "
          f"{median(totals) * 1e3:.1f} ms, blocks {total * 1e3:.1f} ms):")  # fmt: skip
    print(table(["block", "ms", "share", "GMAC", "GFLOP/s"], rows))
    print()


def speed(
    args, floor_gflops: float, onednn_gflops: float
) -> tuple[dict[str, Callable], archbuilder.ArchModel]:
    """The speed tables. int8 is timed in a second round, after every other contender's last
    call, beside the reference and ``optimize_for_inference`` fp32: on this Zen 4 (torch 2.14.1,
    torchao 0.18), a ``torch.compile``-d fp32 model called at batch 1 after the int8 program has
    run corrupts the heap (glibc aborts), so no compiled fp32 model runs after it."""
    reference, model = googlenet_pair()
    macs = archbuilder.summarize(model.spec).inference_macs
    reference_macs = archbuilder.summarize(archbuilder.load_spec(REFERENCE_SPEC)).inference_macs
    print(
        f"googlenet.yaml: {macs / 1e9:.2f} GMAC per image ({2 * macs * 8 / 1e9:.1f} GFLOP per batch of 8); "
        f"torchvision's googlenet: {reference_macs / 1e9:.2f} GMAC per image"
    )
    start = time.perf_counter()
    runs = contenders(reference, model, args)
    print(f"first calls (compiling, packing) took {time.perf_counter() - start:.0f} s")
    rounds = {batch: [timed(runs, batch, args.repeats)] for batch in args.batch}
    if not args.no_int8:
        start = time.perf_counter()
        int8 = archbuilder.quantize(model, calibration_batches(model, count=4, batch=8))
        runs[INT8] = first_calls(int8, args.batch)
        print(f"int8: quantize and first calls took {time.perf_counter() - start:.0f} s")
        second = {name: runs[name] for name in (REFERENCE, OFI, INT8)}
        for batch in args.batch:
            rounds[batch].append(timed(second, batch, args.repeats))
    print()
    print("oneDNN kernels per call (batch 8; primitive, implementation × calls):")
    for name in (OFI, *(VARIANTS if args.variants else ()), BF16, INT8):
        if name in runs:
            kernels = onednn_kernels(lambda r=runs[name]: r(torch.randn(8, 3, SIZE, SIZE)))
            listed = ", ".join(f"{p} {impl} ×{n}" for (p, impl), n in kernels.most_common()) or "none"
            print(f"- {name}: {listed}")
    print()
    headers = ["model", "ms / batch", "images / s", "vs reference", "of fp32 floor", "of oneDNN rate"]
    for batch in args.batch:
        rows = []
        for index, times in enumerate(rounds[batch]):
            base = median(times[REFERENCE])
            for name, values in times.items():
                if index and name != INT8:
                    continue  # the second round's reference and fp32: below, in its own table
                seconds = median(values)
                flop = 2 * (reference_macs if name == REFERENCE else macs) * batch
                rows.append(
                    [name, f"{seconds * 1e3:.1f}", f"{batch / seconds:.1f}", f"{base / seconds:.2f}×",
                     f"{flop / (floor_gflops * 1e9) / seconds * 100:.0f}%",
                     f"{flop / (onednn_gflops * 1e9) / seconds * 100:.0f}%"]
                )  # fmt: skip
        note = (
            "; int8 in a second round, its ratio to that round's reference" if len(rounds[batch]) > 1 else ""
        )
        print(f"Batch {batch} (median of {args.repeats} interleaved calls after warm-up{note}):")
        print(table(headers, rows))
        print_repeats(rounds[batch][0])
        if len(rounds[batch]) > 1:
            second = rounds[batch][1]
            print(
                f"\nSecond round, batch {batch} (int8 after the rest, median of {args.repeats} interleaved calls):"
            )
            print(
                table(
                    ["model", "ms / batch"], [[name, f"{median(v) * 1e3:.1f}"] for name, v in second.items()]
                )
            )
            print_repeats(second)
        print()
    return runs, model


def timed(runs: dict[str, Callable], batch: int, repeats: int) -> dict[str, list[float]]:
    x = torch.randn(batch, 3, SIZE, SIZE)
    with torch.inference_mode():
        return time_interleaved(
            {name: (lambda r=run, x=x: r(x)) for name, run in runs.items()}, repeats=repeats
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, nargs="+", default=[8, 1], help="batch sizes (default 8 1)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--profile", action="store_true", help="where optimize_for_inference's time goes")
    parser.add_argument(
        "--variants", action="store_true", help="add other layouts and kernels of the fp32 path as rows"
    )
    parser.add_argument("--no-compile", action="store_true", help="leave out the torch.compile row")
    parser.add_argument("--no-int8", action="store_true", help="leave out the int8 row")
    parser.add_argument("--no-digits", action="store_true", help="leave out the trained model's agreement")
    args = parser.parse_args()

    print(f"Machine: {machine()}")
    print(f"archbuilder sees: {cpu_support().describe()}")
    print(f"ATen capability: {torch.backends.cpu.get_cpu_capability()}; "
          f"torch's oneDNN bf16 convs: {torch.ops.mkldnn._is_mkldnn_bf16_supported()}")  # fmt: skip
    set_ = [f"{name}={os.environ[name]}" for name in ENVIRONMENT if name in os.environ]
    print(f"Environment: {' '.join(set_) if set_ else 'none of ' + ', '.join(ENVIRONMENT)}")
    rate, rates = matmul_gflops()
    print(f"fp32 floor: 2048² matmul (MKL) {rate:.1f} GFLOP/s (best of {len(rates)}; median {median(rates):.1f}; "
          f"in order: {' '.join(f'{r:.1f}' for r in rates)})")  # fmt: skip
    conv, convs = onednn_conv_gflops()
    print(f"oneDNN fp32 1×1 conv (2048 → 2048 channels, 2048 pixels, packed): {conv:.1f} GFLOP/s (best of "
          f"{len(convs)}; median {median(convs):.1f}; in order: {' '.join(f'{r:.1f}' for r in convs)})")  # fmt: skip
    print()
    runs, model = speed(args, rate, conv)
    if args.profile:
        batch = max(args.batch)
        block_profile(model, runs[OFI], batch)
        _print_profile(runs[OFI], torch.randn(batch, 3, SIZE, SIZE), OFI)
        print()
    if not args.no_digits:
        threads = torch.get_num_threads()
        digits_accuracy(None)  # trains with --threads 1 and seed 0
        torch.set_num_threads(threads)


if __name__ == "__main__":
    main()
