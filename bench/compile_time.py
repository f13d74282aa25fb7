"""torch.compile's compile time on the CPU, each compile in a fresh process, in both orders.

    python bench/compile_time.py [--models torchvision optimized small] [--rounds 2]
                                 [--no-same-process]

The time is that of the first calls of ``torch.compile(model)`` at every batch size (1 and 8),
which is when inductor traces and compiles. The first compile in a process also pays for
importing and warming inductor, so two compiles in one process favour the second. Here:

* **fresh processes:** each compile runs in a process of its own, with an empty inductor
  cache (``TORCHINDUCTOR_CACHE_DIR``), so none reuses another's work. Rounds alternate the
  order of the contenders; the table gives each one's median and every run follows it.
* **one process, both orders** (unless ``--no-same-process``): torchvision's model and the
  optimized one compiled one after the other in one process, once in each order, to show
  the bias of measuring them in one process.

Contenders: torchvision's GoogLeNet (``torchvision``), ``optimize_for_inference`` of the
spec-built one (``optimized``), and the small model of the test suite's torch.compile test
(``small``: tests/test_spec.py's SMALL, batch 2).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import torch
import torchvision
from benchlib import ROOT, machine, median, table

import archbuilder
from archbuilder.interop import load_torchvision_googlenet

CONTENDERS = ("torchvision", "optimized", "small")


def make(name: str) -> tuple[torch.nn.Module, list[torch.Tensor]]:
    """The eval model to compile and the inputs of its first calls."""
    torch.manual_seed(0)
    if name == "small":
        sys.path.insert(0, str(ROOT))
        from tests.test_spec import SMALL

        spec = archbuilder.load_spec(SMALL)
        return archbuilder.build(spec).eval(), [
            torch.randn(2, spec.input.channels, spec.input.height, spec.input.width)
        ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = torchvision.models.googlenet(
            weights=None, aux_logits=True, init_weights=True, transform_input=False
        )
    reference.eval()
    inputs = [torch.randn(batch, 3, 224, 224) for batch in (1, 8)]
    if name == "torchvision":
        return reference, inputs
    model = archbuilder.build(ROOT / "specs" / "googlenet-torchvision.yaml")
    load_torchvision_googlenet(model, reference)
    return archbuilder.optimize_for_inference(model.eval()), inputs


def compile_seconds(name: str) -> float:
    model, inputs = make(name)
    compiled = torch.compile(model, dynamic=False)
    start = time.perf_counter()
    with torch.inference_mode():
        for x in inputs:
            compiled(x)
    return time.perf_counter() - start


def in_child(names: list[str]) -> dict[str, float]:
    """Compile ``names`` one after the other in a fresh process with an empty inductor cache."""
    with tempfile.TemporaryDirectory(prefix="inductor-") as cache:
        env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache)
        command = [sys.executable, __file__, "--child", *names]
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument("--rounds", type=int, default=2, help="fresh-process rounds, alternating order")
    parser.add_argument("--no-same-process", action="store_true", help="skip the one-process runs")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps({name: compile_seconds(name) for name in args.child}))
        return

    print(f"Machine: {machine()}")
    runs: dict[str, list[float]] = {name: [] for name in args.models}
    log = []
    for round_ in range(args.rounds):
        order = args.models if round_ % 2 == 0 else args.models[::-1]
        for name in order:
            seconds = in_child([name])[name]
            runs[name].append(seconds)
            log.append(f"- round {round_ + 1}: {name} {seconds:.2f}")
    print(
        f"Fresh process per compile, empty inductor cache; median of {args.rounds} rounds, alternating order\n"
    )
    rows = [
        [name, f"{median(times):.1f}", f"{min(times):.1f}", f"{max(times):.1f}"]
        for name, times in runs.items()
    ]
    print(table(["model", "compile s", "fastest s", "slowest s"], rows))
    print("\nRepeats (s, in the order run):")
    print("\n".join(log))
    if not args.no_same_process:
        print("\nOne process, empty inductor cache, both orders (compile s):\n")
        rows = []
        for order in (["torchvision", "optimized"], ["optimized", "torchvision"]):
            seconds = in_child(order)
            rows.append(
                [" then ".join(order), f"{seconds['torchvision']:.1f}", f"{seconds['optimized']:.1f}"]
            )
        print(table(["order", "torchvision s", "optimized s"], rows))


if __name__ == "__main__":
    main()
