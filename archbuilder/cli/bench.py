"""``bench``: the spec's inference throughput in fp32, bf16 or int8, next to its torchvision twin
(or, where torchvision has none, its nearest reference, labelled as such)."""

from __future__ import annotations

import argparse
import textwrap
from typing import TYPE_CHECKING

from archbuilder.cli.common import Command, load, positive

if TYPE_CHECKING:
    from archbuilder.benchmarks.bench_reference import Reference
    from archbuilder.spec import ArchSpec

__all__ = ["register"]


def register(command: Command) -> None:
    bench = command(
        "bench", "time inference of the optimized model (fp32, bf16, int8) against torchvision's", _bench
    )
    bench.add_argument("spec", metavar="SPEC")
    bench.add_argument("--batch", type=positive, default=8, help="images per batch (default 8)")
    bench.add_argument("--dtype", choices=["fp32", "bf16", "int8"], default="fp32", help="default fp32")
    bench.add_argument("--repeats", type=positive, default=10, help="timed calls each (default 10)")
    bench.add_argument(
        "--no-twin", action="store_true", help="leave out the torchvision twin (or nearest reference)"
    )
    bench.add_argument("--threads", type=positive, help="torch CPU threads (default: torch's, one per core)")


def _bench(args: argparse.Namespace) -> int:
    import torch

    from archbuilder.benchmarks.bench_reference import NEAREST, NEAREST_SUFFIX, compare
    from archbuilder.benchmarks.precision_bench import TWINS

    spec = load(args, args.spec)
    if args.threads:
        torch.set_num_threads(args.threads)
    busy = _busy_warning(torch.get_num_threads())
    result = compare(spec, batch=args.batch, dtype=args.dtype, repeats=args.repeats, twin=not args.no_twin)
    timings = result.timings
    print(
        f"{spec.name}, batch {args.batch}, {args.dtype}: median of {args.repeats} interleaved calls, "
        f"{_plural(torch.get_num_threads(), 'thread')}, CPU capability {torch.backends.cpu.get_cpu_capability()}"
    )
    fp32 = ("torchvision fp32", f"torchvision fp32{NEAREST_SUFFIX}")
    base = next((t.seconds for t in timings if t.name in fp32), None)
    width = max(len(t.name) for t in timings)
    header = f"{'model':<{width}}  {'ms / batch':>10}  {'images / s':>10}"
    print(header + ("  vs torchvision fp32" if base else ""))
    for timing in timings:
        line = f"{timing.name:<{width}}  {timing.seconds * 1e3:>10.1f}  {timing.images_per_second:>10.1f}"
        print(line + (f"  {base / timing.seconds:>19.2f}×" if base else ""))
    reference = result.reference
    if reference is not None and not reference.exact and result.params:
        print(_nearest_note(spec, reference, *result.params))
    elif reference is None and not args.no_twin:
        print(
            f"(no torchvision twin for {spec.name}; twins: {', '.join(TWINS)}; "
            f"nearest references: {', '.join(NEAREST)})"
        )
    if busy:
        print(busy)
    return 0


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _busy_warning(threads: int) -> str | None:
    """A note when other work holds the cores before the run: the medians are then a shared
    machine's, and with several threads each op waits for the slowest of them."""
    import os

    try:
        load = os.getloadavg()[0]
    except OSError:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if load < 0.5 * cores:
        return None
    return (
        f"(the machine was busy: load average {load:.1f} on {cores} cores before the run, so these are a "
        f"shared machine's times; with {threads} threads each op waits for the slowest, and --threads 1 "
        "holds up better under contention)"
    )


def _nearest_note(spec: ArchSpec, reference: Reference, params: int, reference_params: int) -> str:
    """What the "(nearest)" rows are: not a twin, their parameters and MACs, how they differ."""
    from archbuilder.analysis.summary import summarize
    from archbuilder.benchmarks.bench_reference import NEAREST_SUFFIX
    from archbuilder.spec.shipped import shipped_path

    macs = summarize(spec).inference_macs / 1e9
    text = (
        f'The "{NEAREST_SUFFIX.strip()}" rows: torchvision has no twin of {spec.name}; they time its nearest '
        f"reference, torchvision's {reference.builder} with random weights of its own: {reference_params:,} "
        f"parameters"
    )
    if reference.twin_spec:
        reference_macs = summarize(shipped_path(reference.twin_spec)).inference_macs / 1e9
        text += f" and {reference_macs:.2f} G MACs to the spec's {params:,} and {macs:.2f} G"
    else:
        text += f" to the spec's {params:,}"
    text += f". It differs in: {reference.differences}."
    if reference.twin_spec:
        text += f" `archbuild bench {reference.twin_spec}` times the spec of its layout against it, weights copied."
    return textwrap.fill(text, width=100, subsequent_indent="  ", break_on_hyphens=False)
