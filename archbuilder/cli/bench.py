"""``bench``: the spec's inference throughput in fp32, bf16 or int8, next to its torchvision twin."""

from __future__ import annotations

import argparse

from archbuilder.cli.common import Command, load, positive

__all__ = ["register"]


def register(command: Command) -> None:
    bench = command(
        "bench", "time inference of the optimized model (fp32, bf16, int8) against torchvision's", _bench
    )
    bench.add_argument("spec", metavar="SPEC")
    bench.add_argument("--batch", type=positive, default=8, help="images per batch (default 8)")
    bench.add_argument("--dtype", choices=["fp32", "bf16", "int8"], default="fp32", help="default fp32")
    bench.add_argument("--repeats", type=positive, default=10, help="timed calls each (default 10)")
    bench.add_argument("--no-twin", action="store_true", help="leave out the torchvision twin")


def _bench(args: argparse.Namespace) -> int:
    import torch

    from archbuilder.builder.precision_bench import TWINS, benchmark

    spec = load(args, args.spec)
    timings = benchmark(spec, batch=args.batch, dtype=args.dtype, repeats=args.repeats, twin=not args.no_twin)
    print(
        f"{spec.name}, batch {args.batch}, {args.dtype}: median of {args.repeats} interleaved calls, "
        f"{torch.get_num_threads()} threads, CPU capability {torch.backends.cpu.get_cpu_capability()}"
    )
    base = next((t.seconds for t in timings if t.name == "torchvision fp32"), None)
    width = max(len(t.name) for t in timings)
    header = f"{'model':<{width}}  {'ms / batch':>10}  {'images / s':>10}"
    print(header + ("  vs torchvision fp32" if base else ""))
    for timing in timings:
        line = f"{timing.name:<{width}}  {timing.seconds * 1e3:>10.1f}  {timing.images_per_second:>10.1f}"
        print(line + (f"  {base / timing.seconds:>19.2f}×" if base else ""))
    if spec.name not in TWINS and not args.no_twin:
        print(f"(no torchvision twin for {spec.name}; twins: {', '.join(TWINS)})")
    return 0
