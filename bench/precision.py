"""bf16 and int8 inference against the best eager and compiled peers, and what they cost in accuracy.

    python bench/precision.py [--model googlenet|inception-v3] [--batch 1 8] [--repeats 20]
                              [--no-compile] [--no-int8] [--accuracy] [--digits-checkpoint FILE]
                              [--profile]
    python bench/precision.py --spec inception-v3 bn-inception ... [--batch 1]   # the lineage

``--spec`` times each path of the named shipped specs against their torchvision / timm /
pretrainedmodels twins instead (bench/precision_specs.py).

Speed (one process, contenders taking turns call by call after warm-up, medians):
- torchvision fp32 eager (the baseline), channels-last under bf16 autocast eagerly and under
  ``torch.compile`` (the best a torchvision user gets: the peers);
- ``optimize_for_inference(dtype="bf16")``, eagerly and under ``torch.compile``, and
  ``quantize`` (int8, PT2E + inductor);
- torchvision quantized with the same PT2E flow (its fc kept fp32, as ours).
Each row also gives its fraction of the bf16 matmul floor: the model's MACs at the bf16 GFLOP/s
of a 4096² matmul measured here first.

Accuracy (``--accuracy``, bench/precision_accuracy.py): the digits model trained by
examples/train_digits.py (or the checkpoint given), and GoogLeNet at 224² trained here on the
digits scaled up: top-1 agreement with fp32, accuracy change, max and mean relative logit error.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch._inductor.config
from benchlib import machine, median, table, time_interleaved
from inference import PAIRS, _print_profile, _torchvision_model
from precision_accuracy import accuracy
from precision_specs import SPECS, calibrate_batch_norm, latency

import archbuilder
from archbuilder.builder.precision import compile_frozen
from archbuilder.builder.quantize import QuantizedModel, quantize, quantize_module


def matmul_gflops(dtype: torch.dtype, size: int = 4096, repeats: int = 5) -> float:
    """GFLOP/s of a size² matmul in ``dtype``; int8 is ``torch._int_mm`` (int8 × int8 → int32,
    oneDNN's int8 GEMM: VNNI / AMX where the CPU has them), in GOP/s."""
    if dtype == torch.int8:
        a, b = (torch.randint(-128, 128, (size, size), dtype=torch.int8) for _ in range(2))

        def run():
            return torch._int_mm(a, b)
    else:
        a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)

        def run():
            return a @ b

    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 2 * size**3 / median(times) / 1e9


def contenders(pair, spec_model, reference, batches: list[int], args) -> dict:
    def channels_last():
        model = _torchvision_model(pair)
        model.load_state_dict(reference.state_dict())
        return model.eval().to(memory_format=torch.channels_last)

    tv_cl = channels_last()

    def amp(model):
        def run(x):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return model(x.contiguous(memory_format=torch.channels_last))

        return run

    runs = {"torchvision fp32": reference, "torchvision CL + bf16 autocast": amp(tv_cl)}
    if not args.no_compile:
        runs["torch.compile(torchvision CL + bf16 autocast)"] = amp(torch.compile(channels_last()))
    runs["optimize_for_inference bf16"] = archbuilder.optimize_for_inference(spec_model, dtype="bf16")
    # The same with the opt-in separable stride-1 max pools: what that step gives, in the same run.
    runs["optimize_for_inference bf16, separable max pools"] = archbuilder.optimize_for_inference(
        spec_model, dtype="bf16", separable_pools=True
    )
    if not args.no_compile:
        ours = archbuilder.optimize_for_inference(spec_model, dtype="bf16", fuse_activations=False)
        runs["optimize_for_inference bf16, compile_frozen"] = compile_frozen(ours)
    if args.cpp_wrapper and not args.no_compile:  # a model of its own: nothing shared with the row above
        other = archbuilder.optimize_for_inference(spec_model, dtype="bf16", fuse_activations=False)
        runs["optimize_for_inference bf16, compile_frozen + cpp_wrapper"] = compile_frozen(
            other, cpp_wrapper=True
        )
    if not args.no_int8:
        size = pair.size
        calib = [torch.rand(8, 3, size, size, generator=torch.Generator().manual_seed(i)) for i in range(4)]
        runs["quantize int8"] = quantize(spec_model, calib)
        if args.cpp_wrapper:
            runs["quantize int8, cpp_wrapper"] = quantize(spec_model, calib, cpp_wrapper=True)
        tv_int8 = quantize_module(channels_last(), calib, keep_fp32=["fc"])
        runs["torchvision PT2E int8"] = QuantizedModel(tv_int8, None, compiled=True)
    start = time.perf_counter()
    with torch.inference_mode():
        for batch in batches:  # compile each shape now, not inside the timing
            for run in runs.values():
                run(torch.randn(batch, 3, pair.size, pair.size))
    print(f"first calls (compiling, packing) took {time.perf_counter() - start:.0f} s")
    return runs


def speed(args) -> None:
    pair = PAIRS[args.model]
    torch.manual_seed(0)
    reference = _torchvision_model(pair)  # aux heads idle in eval
    # Batch-norm statistics from data, as training leaves them: activations keep their scale
    # instead of decaying through the untrained layers into denormals (slow on any x86 CPU).
    calibrate_batch_norm(reference, torch.randn(16, 3, pair.size, pair.size))
    spec_model = archbuilder.build(pair.spec, max_param_bytes=1 << 40)
    pair.load(spec_model, reference)
    spec_model.eval()
    macs = archbuilder.summarize(spec_model.spec).inference_macs
    floor = {dtype: matmul_gflops(dtype) for dtype in (torch.float32, torch.bfloat16, torch.int8)}
    print(f"matmul floor (4096²): fp32 {floor[torch.float32]:.0f}, bf16 {floor[torch.bfloat16]:.0f} GFLOP/s")
    # What int8 can gain over bf16 at best: the ratio of their GEMM throughputs on this CPU.
    ceiling = floor[torch.int8] / floor[torch.bfloat16]
    print(f"int8 matmul (4096², torch._int_mm): {floor[torch.int8]:.0f} GOP/s, {ceiling:.2f}× bf16's")
    print(f"{args.model}: {macs / 1e9:.2f} GMAC per image\n")
    if args.profile:  # the compiled models' generated kernels by name in the profile (not only as one call)
        torch._inductor.config.cpp.enable_kernel_profile = True
    runs = contenders(pair, spec_model, reference, args.batch, args)
    for batch in args.batch:
        x = torch.randn(batch, 3, pair.size, pair.size)
        with torch.inference_mode():
            times = time_interleaved(
                {n: (lambda r=r, x=x: r(x)) for n, r in runs.items()}, repeats=args.repeats
            )
        print(f"Batch {batch}:")
        print(table(*rows(times, batch, macs, floor[torch.bfloat16])))
        print()
    if args.profile:
        x = torch.randn(max(args.batch), 3, pair.size, pair.size)
        for name in (
            "optimize_for_inference bf16",
            "optimize_for_inference bf16, compile_frozen",
            "quantize int8",
        ):
            if name in runs:
                _print_profile(runs[name], x, name)


def rows(times: dict[str, list[float]], batch: int, macs: int, bf16_gflops: float):
    seconds = {name: median(values) for name, values in times.items()}
    base = seconds["torchvision fp32"]
    peers = [s for name, s in seconds.items() if "autocast" in name]
    ours_bf16 = seconds["optimize_for_inference bf16"]
    floor = 2 * macs * batch / (bf16_gflops * 1e9)
    body = []
    for name, value in seconds.items():
        body.append(
            [
                name,
                f"{value * 1e3:.1f}",
                f"{batch / value:.1f}",
                f"{base / value:.2f}×",
                f"{min(peers) / value:.2f}×",
                f"{ours_bf16 / value:.2f}×",
                f"{floor / value * 100:.0f}%",
            ]
        )
    headers = [
        "model",
        "ms / batch",
        "images / s",
        "vs tv fp32",
        "vs best peer",
        "vs our bf16",
        "of bf16 floor",
    ]
    return headers, body


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", choices=list(PAIRS), default="googlenet")
    parser.add_argument(
        "--spec", nargs="+", choices=SPECS, help="time these lineage specs against their twins instead"
    )
    parser.add_argument("--batch", type=int, nargs="+", help="batch sizes (default 1 8; with --spec, 1)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--no-compile", action="store_true", help="leave out the torch.compile peer")
    parser.add_argument("--no-int8", action="store_true", help="leave out the int8 contenders")
    parser.add_argument(
        "--cpp-wrapper",
        action="store_true",
        help="add compile_frozen and int8 rows with inductor's cpp_wrapper",
    )
    parser.add_argument(
        "--no-compile-twin", action="store_true", help="with --spec: leave out the compiled twin (saves time)"
    )
    parser.add_argument("--no-speed", action="store_true", help="accuracy only")
    parser.add_argument("--accuracy", action="store_true", help="measure the accuracy cost too")
    parser.add_argument("--profile", action="store_true", help="where each of our paths' time goes")
    parser.add_argument(
        "--digits-checkpoint", type=Path, help="a train_digits.py checkpoint (else train one)"
    )
    parser.add_argument(
        "--googlenet-epochs", type=int, default=3, help="epochs of the 224² GoogLeNet's training (default 3)"
    )
    args = parser.parse_args()
    args.batch = args.batch or ([1] if args.spec else [1, 8])
    print(f"Machine: {machine()}")
    print(f"CPU capability: {torch.backends.cpu.get_cpu_capability()}\n")
    if args.spec:
        latency(args)
        return
    if not args.no_speed:
        speed(args)
    if args.accuracy:
        accuracy(args.digits_checkpoint, args.googlenet_epochs)


if __name__ == "__main__":
    main()
