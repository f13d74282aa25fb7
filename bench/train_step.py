"""Training-step speed and peak memory: spec-built GoogLeNets against hand-written ones.

    python bench/train_step.py [--batch 8] [--repeats 10] [--device cpu|cuda]

A step is forward, the loss with both aux heads weighted 0.3, backward, and an SGD step with
momentum. Two pairs, each computing the same function:

* ``specs/googlenet-torchvision.yaml`` against ``torchvision.models.googlenet``;
* ``specs/googlenet.yaml`` (the article's batch-norm design) against ``ArticleGoogLeNet``, a
  plain hand-written ``nn.Module`` of the same design (bench/article_googlenet.py).

Time: the contenders take turns step by step in one process, after warm-up; median. Peak
memory: on a GPU, ``torch.cuda.max_memory_allocated`` over one step; on the CPU, the growth
of the process's peak resident memory over one step, each contender in a fresh process with
glibc returning large blocks to the system at once (so resident memory follows live tensors).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import torchvision
from article_googlenet import ArticleGoogLeNet
from benchlib import ROOT, machine, median, print_repeats, table, time_interleaved
from torch.nn import functional as F

import archbuilder

CONTENDERS = (
    "torchvision",
    "archbuilder (torchvision layout)",
    "hand-written article model",
    "archbuilder (article)",
)
AUX_WEIGHT = 0.3


def make_model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if name == "torchvision":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torchvision.models.googlenet(
                weights=None, aux_logits=True, init_weights=True, transform_input=False
            )
    if name == "hand-written article model":
        return ArticleGoogLeNet()
    spec = "googlenet-torchvision.yaml" if "torchvision" in name else "googlenet.yaml"
    return archbuilder.build(ROOT / "specs" / spec)


def make_step(
    name: str, model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor
) -> Callable[[], float]:
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def loss_of(outputs) -> torch.Tensor:
        if isinstance(model, archbuilder.ArchModel):
            return model.compute_loss(outputs, target)  # weights from the spec: 0.3 each
        logits, *aux = outputs  # torchvision: (logits, aux2, aux1); article: (logits, aux1, aux2)
        return F.cross_entropy(logits, target) + sum(AUX_WEIGHT * F.cross_entropy(a, target) for a in aux)

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_of(model(x))
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--memory-of", help=argparse.SUPPRESS)  # child process: one contender's peak
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(1)
    x = torch.randn(args.batch, 3, 224, 224, device=device)
    target = torch.randint(0, 1000, (args.batch,), device=device)

    if args.memory_of:
        print(json.dumps({"peak_bytes": _peak_of_one_step(args.memory_of, x, target, device)}))
        return

    steps = {name: make_step(name, make_model(name).to(device), x, target) for name in CONTENDERS}
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times = time_interleaved(steps, repeats=args.repeats, sync=sync)
    peaks = {name: _peak_in_fresh_process(name, args) for name in CONTENDERS}

    print(f"Machine: {machine(args.device)}")
    print(f"Batch {args.batch}, fp32; time: median of {args.repeats} interleaved steps after warm-up\n")
    rows = []
    for name in CONTENDERS:
        peer = "torchvision" if "torchvision" in name else "hand-written article model"
        rows.append(
            [
                name,
                f"{median(times[name]) * 1e3:.1f}",
                f"{median(times[peer]) / median(times[name]):.2f}×",
                f"{peaks[name] / 2**20:,.0f}",
                f"{(peaks[name] / peaks[peer] - 1) * 100:+.1f}%",
            ]
        )
    print(table(["model", "ms / step", "speed vs peer", "peak MiB", "memory vs peer"], rows))
    print("\nPeers: the archbuilder rows compare with the hand-written row above them.")
    print_repeats(times)


def _peak_of_one_step(name: str, x: torch.Tensor, target: torch.Tensor, device: torch.device) -> int:
    model = make_model(name).to(device)
    step = make_step(name, model, x, target)
    step()  # momentum buffers and gradients exist from here on, as in every later step
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    before = _resident_bytes("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current size
    step()
    return _resident_bytes("VmHWM") - before


def _peak_in_fresh_process(name: str, args: argparse.Namespace) -> int:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    command = [
        sys.executable,
        __file__,
        "--memory-of",
        name,
        "--batch",
        str(args.batch),
        "--device",
        args.device,
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["peak_bytes"]


def _resident_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


if __name__ == "__main__":
    main()
