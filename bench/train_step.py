"""Training-step speed and peak memory: ``optimize_for_training`` against torchvision's recipes.

    python bench/train_step.py [--model googlenet|inception-v3|resnet50] [--batch 8 32]
                               [--repeats 10] [--ablation] [--compile] [--no-memory]
    python bench/train_step.py --memory-sweep [--checkpoint-blocks 3a:5b] [--sweep-batches 16 32 48]

A step is forward, the loss (aux losses weighted as the spec says: 0.3 for GoogLeNet's two,
0.4 for Inception-v3's), backward, and SGD with momentum. The spec-built model
(specs/googlenet-torchvision.yaml, specs/inception-v3.yaml or specs/resnet50.yaml) gets
torchvision's weights through the interop loader, so both compute the same function.
Contenders:

* torchvision's model eager; in channels-last; in channels-last under bf16 autocast (with
  ``--compile``, each of these under ``torch.compile`` too);
* the plain build; ``optimize_for_training`` in fp32 and bf16 (with ``--compile``, both under
  ``torch.compile``); with ``--ablation``, one row per step of it.

Time: the contenders take turns step by step in one process, after two warm-up steps (which
compile the compiled ones); median. Peak memory: how much the process's peak resident memory
grows over one step (after one step has made the gradients and momentum buffers), each eager
contender in a fresh process with glibc returning large blocks to the system at once, so that
resident memory follows live tensors. ``--memory-sweep`` measures that peak for GoogLeNet at
several batch sizes with and without activation checkpointing of ``--checkpoint-blocks``; the
budget is the peak without it at the first batch size.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from benchlib import ROOT, machine, median, print_repeats, table, time_interleaved
from torch.nn import functional as F

import archbuilder
from archbuilder.interop import load_torchvision_googlenet, load_torchvision_inception_v3, load_weights


@dataclass(frozen=True)
class Pair:
    """A shipped spec, the torchvision model it equals, and the loader between them."""

    spec: Path
    torchvision: Callable[[], torch.nn.Module]
    load: Callable[[torch.nn.Module, torch.nn.Module], object]
    size: int


def _googlenet() -> torch.nn.Module:
    return torchvision.models.googlenet(
        weights=None, aux_logits=True, init_weights=True, transform_input=False
    )


def _inception_v3() -> torch.nn.Module:
    return torchvision.models.inception_v3(
        weights=None, aux_logits=True, init_weights=True, transform_input=False
    )


PAIRS = {
    "googlenet": Pair(
        ROOT / "specs" / "googlenet-torchvision.yaml", _googlenet, load_torchvision_googlenet, 224
    ),
    "inception-v3": Pair(
        ROOT / "specs" / "inception-v3.yaml", _inception_v3, load_torchvision_inception_v3, 299
    ),
    "resnet50": Pair(
        ROOT / "specs" / "resnet50.yaml",
        lambda: torchvision.models.resnet50(weights=None),
        lambda model, source: load_weights(model, source, "torchvision-resnet50"),
        224,
    ),
}


@dataclass(frozen=True)
class Contender:
    """How one row trains: whose model, in which layout and precision, compiled or not."""

    ours: bool  # the spec-built model (else torchvision's)
    channels_last: bool = False
    bf16: bool = False
    compiled: bool = False
    optimize: dict | None = None  # optimize_for_training's arguments (None: the plain build)


TORCHVISION = {
    "torchvision": Contender(ours=False),
    "torchvision, channels_last": Contender(ours=False, channels_last=True),
    "torchvision, channels_last + bf16 autocast": Contender(ours=False, channels_last=True, bf16=True),
}
OURS = {
    "archbuilder (plain build)": Contender(ours=True),
    "optimize_for_training": Contender(ours=True, optimize={}),
    "optimize_for_training bf16": Contender(ours=True, optimize={"dtype": "bf16"}),
}
ABLATION = {  # each is optimize_for_training without fuse_siblings, the row after it with it
    "+ channels_last": Contender(ours=True, optimize={"fuse_siblings": False}),
    "+ channels_last, bf16": Contender(ours=True, optimize={"fuse_siblings": False, "dtype": "bf16"}),
}
LEAN = "optimize_for_training, recompute_pools"
COMPILED = ("torchvision", "torchvision, channels_last", "torchvision, channels_last + bf16 autocast")
COMPILED_OURS = ("optimize_for_training", "optimize_for_training bf16")


def contenders(args: argparse.Namespace) -> dict[str, Contender]:
    chosen = {**TORCHVISION, "archbuilder (plain build)": OURS["archbuilder (plain build)"]}
    for ablated, optimized in (
        ("+ channels_last", "optimize_for_training"),
        ("+ channels_last, bf16", "optimize_for_training bf16"),
    ):
        if args.ablation:
            chosen[ablated] = ABLATION[ablated]
        chosen[optimized] = OURS[optimized]
    if args.recompute_pools:
        chosen[LEAN] = Contender(ours=True, optimize={"recompute_pools": True})
    if args.compile:
        for name in COMPILED:
            chosen[f"torch.compile({name})"] = Contender(**{**TORCHVISION[name].__dict__, "compiled": True})
        for name in COMPILED_OURS:
            chosen[f"torch.compile({name})"] = Contender(**{**OURS[name].__dict__, "compiled": True})
    return chosen


def make_model(pair: Pair, contender: Contender) -> torch.nn.Module:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = pair.torchvision()
    if not contender.ours:
        return reference
    model = archbuilder.build(pair.spec, max_param_bytes=1 << 40)
    pair.load(model, reference)
    if contender.optimize is not None:
        model = archbuilder.optimize_for_training(model, **contender.optimize)
    return model


def make_step(
    model: torch.nn.Module,
    contender: Contender,
    x: torch.Tensor,
    target: torch.Tensor,
    aux: tuple[float, ...],
) -> Callable[[], float]:
    model.train()
    if contender.channels_last:  # the input is converted at each step, as from a data loader
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    forward = torch.compile(model, dynamic=False) if contender.compiled else model
    autocast = (
        (lambda: torch.autocast(x.device.type, dtype=torch.bfloat16))
        if contender.bf16 and not contender.ours
        else contextlib.nullcontext
    )

    def loss_of(outputs) -> torch.Tensor:
        if isinstance(outputs, torch.Tensor):
            return F.cross_entropy(outputs.float(), target)
        logits, *heads = outputs  # ours: (logits, aux in tap order); torchvision: (logits, aux ...)
        if isinstance(heads[0], tuple):
            heads = list(heads[0])
        loss = F.cross_entropy(logits.float(), target)
        for weight, head in zip(aux, heads):
            loss = loss + weight * F.cross_entropy(head.float(), target)
        return loss

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = loss_of(
                forward(x.contiguous(memory_format=torch.channels_last) if contender.channels_last else x)
            )
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", choices=list(PAIRS), default="googlenet")
    parser.add_argument("--batch", type=int, nargs="+", default=[8])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--ablation", action="store_true", help="one row per step of optimize_for_training")
    parser.add_argument("--compile", action="store_true", help="add the torch.compile contenders (slow)")
    parser.add_argument(
        "--recompute-pools", action="store_true", help="add optimize_for_training(recompute_pools=True)"
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    parser.add_argument("--memory-sweep", action="store_true", help="peak memory against batch size")
    parser.add_argument("--checkpoint-blocks", default="3a:5b", help="for --memory-sweep (%(default)s)")
    parser.add_argument("--sweep-batches", type=int, nargs="+", default=[16, 20, 24, 28, 32, 40, 48])
    parser.add_argument("--memory-of", help=argparse.SUPPRESS)  # child process: one contender's peak
    parser.add_argument("--sweep-of", help=argparse.SUPPRESS)  # child process: one sweep row
    args = parser.parse_args()
    pair = PAIRS[args.model]
    if args.memory_of:
        print(
            json.dumps(
                {"peak_bytes": _peak_of_one_step(pair, contenders(args)[args.memory_of], args.batch[0])}
            )
        )
        return
    if args.sweep_of is not None:
        print(json.dumps(_sweep_row(pair, args.sweep_of, args.sweep_batches)))
        return
    print(f"Machine: {machine()}")
    if args.memory_sweep:
        _memory_sweep(args)
        return
    chosen = contenders(args)
    aux = _aux_weights(pair)
    for batch in args.batch:
        torch.manual_seed(1)
        x = torch.randn(batch, 3, pair.size, pair.size)
        target = torch.randint(0, 1000, (batch,))
        steps = {name: make_step(make_model(pair, c), c, x, target, aux) for name, c in chosen.items()}
        times = time_interleaved(steps, repeats=args.repeats)
        del steps
        gc.collect()
        peaks = {} if args.no_memory else {
            name: _peak_in_fresh_process(name, args, batch) for name, c in chosen.items() if not c.compiled
        }  # fmt: skip
        _report(args, batch, chosen, times, peaks)


def _report(args, batch, chosen, times, peaks) -> None:
    tv, tv_cl = median(times["torchvision"]), median(times["torchvision, channels_last"])
    best_tv = min(median(times[name]) for name in chosen if not chosen[name].ours)
    rows = []
    for name in chosen:
        seconds = median(times[name])
        peak = peaks.get(name)
        rows.append(
            [
                name,
                f"{seconds * 1e3:.1f}",
                f"{batch / seconds:.1f}",
                f"{tv / seconds:.2f}×",
                f"{tv_cl / seconds:.2f}×",
                f"{best_tv / seconds:.2f}×",
                f"{peak / 2**20:,.0f}" if peak is not None else "not measured",
                f"{(peak / peaks['torchvision'] - 1) * 100:+.1f}%" if peak is not None else "",
            ]
        )
    print(
        f"\n{args.model}, batch {batch}, {PAIRS[args.model].size}²: median of {args.repeats} interleaved steps"
    )
    headers = [
        "model",
        "ms / step",
        "images / s",
        "vs torchvision",
        "vs torchvision CL",
        "vs best torchvision",
    ]
    print(table([*headers, "peak MiB", "memory vs torchvision"], rows))
    print_repeats(times)


def _peak_of_one_step(pair: Pair, contender: Contender, batch: int) -> int:
    torch.manual_seed(1)
    x = torch.randn(batch, 3, pair.size, pair.size)
    target = torch.randint(0, 1000, (batch,))
    step = make_step(make_model(pair, contender), contender, x, target, _aux_weights(pair))
    step()  # momentum buffers and gradients exist from here on, as in every later step
    return _peak_growth(step)


def _aux_weights(pair: Pair) -> tuple[float, ...]:
    """The aux losses' weights, as the spec gives them (torchvision's heads run in the same order)."""
    return archbuilder.build(pair.spec, max_param_bytes=1 << 40).aux_weights


def _peak_growth(step: Callable[[], object]) -> int:
    gc.collect()
    before = _resident_bytes("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current size
    step()
    return _resident_bytes("VmHWM") - before


def _child(args: list[str]) -> dict:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    command = [sys.executable, __file__, *args]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _peak_in_fresh_process(name: str, args: argparse.Namespace, batch: int) -> int:
    flags = (["--ablation"] if args.ablation else []) + (
        ["--recompute-pools"] if args.recompute_pools else []
    )
    return _child(["--memory-of", name, "--model", args.model, "--batch", str(batch), *flags])["peak_bytes"]


SWEEP = {  # row -> optimize_for_training's arguments, given --checkpoint-blocks
    "torchvision, channels_last": None,
    "optimize_for_training": lambda blocks: {},
    "optimize_for_training, checkpoint_blocks": lambda blocks: {"checkpoint_blocks": blocks},
    LEAN: lambda blocks: {"recompute_pools": True},
}


def _sweep_row(pair: Pair, row: str, batches: list[int]) -> dict[str, int]:
    """Peak growth over one step at each batch size, smallest first, in this process."""
    name, _, blocks = row.partition("=")
    if SWEEP[name] is None:
        contender = TORCHVISION[name]
    else:
        contender = Contender(ours=True, channels_last=False, optimize=SWEEP[name](blocks or None))
    model = make_model(pair, contender)
    aux = _aux_weights(pair)
    peaks = {}
    for batch in batches:
        torch.manual_seed(1)
        x = torch.randn(batch, 3, pair.size, pair.size)
        target = torch.randint(0, 1000, (batch,))
        step = make_step(model, contender, x, target, aux)
        step()
        peaks[str(batch)] = _peak_growth(step)
        del step
    return peaks


def _memory_sweep(args: argparse.Namespace) -> None:
    sweep = ["--sweep-batches", *map(str, args.sweep_batches)]
    peaks = {
        name: _child(
            [
                "--sweep-of",
                f"{name}={args.checkpoint_blocks}",
                "--model",
                args.model,
                *sweep,
            ]
        )
        for name in SWEEP
    }
    print(
        f"\nPeak MiB per step, {args.model} at {PAIRS[args.model].size}², checkpoint_blocks={args.checkpoint_blocks!r}:"
    )
    rows = [[str(b), *(f"{peaks[name][str(b)] / 2**20:,.0f}" for name in SWEEP)] for b in args.sweep_batches]
    print(table(["batch", *SWEEP], rows))
    budget_batch = args.sweep_batches[0]
    budget = peaks["optimize_for_training"][str(budget_batch)]
    fits = {
        name: max((b for b in args.sweep_batches if peaks[name][str(b)] <= budget), default=0)
        for name in SWEEP
    }
    print(
        f"\nBudget: {budget / 2**20:,.0f} MiB (optimize_for_training's peak at batch {budget_batch}); "
        "the largest measured batch within it:"
    )
    rows = [[name, str(fits[name]), f"{fits[name] / budget_batch:.2f}×"] for name in SWEEP]
    print(table(["model", "largest batch", "vs optimize_for_training"], rows))


def _resident_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


if __name__ == "__main__":
    main()
