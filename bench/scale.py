"""Scale: validate, lower (shape inference) and summarize specs of 10 to 10,000 Inception blocks.

    python bench/scale.py [--sizes 10 100 1000 10000] [--repeats 3]

Each synthetic spec is a stem and N identical Inception blocks (256 channels in and out,
28×28), as YAML text. Each run times the phases one after another: validate, lower, summarize,
and the garbage collection that archbuilder defers until it is done. Reported: the median of
the whole runs' totals (and the time per block from it, which stays flat when the cost grows
linearly), the fastest and slowest total, and beside them each phase's median over the runs.
The phase medians need not add up to the median total. Every run's phases follow the table.
"""

from __future__ import annotations

import argparse
import gc
import time

from benchlib import machine, median, table

import archbuilder

BLOCK = "  - {name: b%d, kind: inception, ch1x1: 64, ch3x3red: 96, ch3x3: 128, ch5x5red: 16, ch5x5: 32, pool_proj: 32}\n"


def spec_text(blocks: int) -> str:
    head = (
        f"name: inception-x{blocks}\n"
        "input: {channels: 3, height: 56, width: 56}\n"
        "num_classes: 10\n"
        "defaults: {conv: {norm: batch, activation: relu}}\n"
        "stem:\n"
        "  - {name: conv1, kind: conv, out: 256, kernel: 3, stride: 2, padding: 1}\n"
        "blocks:\n"
    )
    tail = "head:\n  - {name: pool, kind: global_avgpool}\n  - {name: flatten, kind: flatten}\n  - {name: fc, kind: linear, out: num_classes}\n"
    return head + "".join(BLOCK % i for i in range(blocks)) + tail


def phases(text: str) -> dict[str, float]:
    gc.collect()
    times = {}
    start = time.perf_counter()
    spec = archbuilder.load_spec(text, check_shapes=False)
    times["validate"] = time.perf_counter() - start
    start = time.perf_counter()
    ir = archbuilder.lower(spec)
    times["lower + shapes"] = time.perf_counter() - start
    start = time.perf_counter()
    archbuilder.summarize(ir)
    times["summary"] = time.perf_counter() - start
    start = time.perf_counter()
    gc.collect()  # archbuilder defers garbage collection while it builds; the deferred cost, paid once
    times["gc"] = time.perf_counter() - start
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    phases(spec_text(10))  # warm-up: imports, pydantic's validators
    rows, raw = [], []
    for size in args.sizes:
        text = spec_text(size)
        runs = [phases(text) for _ in range(args.repeats)]
        totals = [sum(run.values()) for run in runs]
        total = median(totals)
        rows.append(
            [
                f"{size:,}",
                f"{total:.3f}",
                f"{min(totals):.3f}",
                f"{max(totals):.3f}",
                f"{total / size * 1e3:.3f}",
                *(f"{median([run[phase] for run in runs]):.3f}" for phase in runs[0]),
            ]
        )
        raw += [
            f"- {size:,} blocks, run {i + 1}: "
            + ", ".join(f"{k} {v:.4f}" for k, v in run.items())
            + f"; total {sum(run.values()):.4f}"
            for i, run in enumerate(runs)
        ]
    print(f"Machine: {machine()}\nMedian of {args.repeats} whole runs per size\n")
    headers = [
        "blocks",
        "total s",
        "fastest s",
        "slowest s",
        "ms / block",
        "validate s",
        "lower + shapes s",
        "summary s",
        "gc s",
    ]
    print(table(headers, rows))
    print("\nRepeats (s, in the order run):")
    print("\n".join(raw))


if __name__ == "__main__":
    main()
