"""Search-space speed: sample, validate, shape-check and count 1,000 GoogLeNet-sized candidates.

    python bench/space.py [--count 1000]

Three spaces around specs/googlenet.yaml, side by side, with the same budget
(``max_params: 14M``, ``max_macs: 1.7G``): the twelve widths of 3a and 3b as choices of 3
(3^12 = 531,441 combinations), every Inception width (54 decisions) as a choice of 3 (3^54), and every
Inception width as an integer range from half to one and a half times its value (about
10^107 combinations). A candidate costs the same in all three: drawing is one pick per
decision, and the rest (templates, pydantic validation, lowering with every shape inferred,
parameter and MAC counts) depends on the network, not on the space. Nothing imports torch.
For reference, the last row is ``load_spec`` + ``summarize`` of googlenet.yaml itself.
"ms each" is wall time per candidate judged (valid or not); "CPU ms each" is this process's
CPU time, which a loaded machine inflates less.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from benchlib import ROOT, cpu_model, table

import archbuilder

GOOGLENET = ROOT / "specs" / "googlenet.yaml"
WIDTHS = ("ch1x1", "ch3x3red", "ch3x3", "ch5x5red", "ch5x5", "pool_proj")
BUDGET = "constraints: {max_params: 14M, max_macs: 1.7G}\n"


def _choice(value: int) -> str:
    options = sorted({max(1, round(value * f)) for f in (0.75, 1.0, 1.25)})
    return "{choice: [" + ", ".join(map(str, options)) + "]}"


def _range(value: int) -> str:
    return f"{{range: {{low: {max(1, value // 2)}, high: {value + value // 2}}}}}"


def space_text(blocks: int, decision) -> str:
    """A space extending googlenet.yaml with a decision on each width of the first ``blocks``
    Inception blocks."""
    spec = archbuilder.load_spec(GOOGLENET)
    lines = [f"extends: {GOOGLENET}", BUDGET.rstrip(), "blocks:"]
    inception = [block for block in spec.blocks if block.kind == "inception"][:blocks]
    for block in inception:
        fields = ", ".join(f"{key}: {decision(getattr(block, key))}" for key in WIDTHS)
        lines.append(f"  {block.name}: {{{fields}}}")
    return "\n".join(lines) + "\n"


def measure(text: str, count: int) -> list[str]:
    start = time.perf_counter()
    space = archbuilder.load_space(text)
    loaded = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    sample = space.sample(count, seed=0)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    stats = sample.stats
    return [
        f"{len(space.decisions)}",
        f"{space.size:.2e}",
        f"{loaded * 1e3:.0f}",
        f"{len(sample)}",
        f"{stats.evaluated}",
        f"{stats.rejection_rate:.1%}",
        f"{seconds:.2f}",
        f"{seconds / stats.evaluated * 1e3:.2f}",
        f"{cpu / stats.evaluated * 1e3:.2f}",
    ]


def reference(count: int) -> list[str]:
    text = GOOGLENET.read_text()
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        archbuilder.summarize(archbuilder.load_spec(text))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    per = [f"{seconds / count * 1e3:.2f}", f"{cpu / count * 1e3:.2f}"]
    return ["0", "1", "-", "-", f"{count}", "-", f"{seconds:.2f}", *per]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=1000, help="valid candidates per space (1000)")
    args = parser.parse_args()
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"Machine: {cpu_model()}, {os.cpu_count()} logical cores, Python {platform.python_version()}")
    print(f"Load average at start (1, 5, 15 min): {load}\n")
    rows = [
        ["3a and 3b widths, choices of 3", *measure(space_text(2, _choice), args.count)],
        ["all 54 widths, choices of 3", *measure(space_text(9, _choice), args.count)],
        ["all 54 widths, ranges 0.5x-1.5x", *measure(space_text(9, _range), args.count)],
        ["googlenet.yaml: load_spec + summarize", *reference(args.count)],
    ]
    header = [
        "space",
        "decisions",
        "raw size",
        "load ms",
        "valid",
        "judged",
        "rejected",
        "s",
        "ms each",
        "CPU ms each",
    ]
    print(table(header, rows))
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"\nLoad average at end: {load}")


if __name__ == "__main__":
    main()
