"""Inference speed: a spec-built model against torchvision's, side by side in one process.

    python bench/inference.py [--model googlenet|inception-v3|resnet50] [--batch 1 8] [--repeats 20]
                              [--ablation] [--compile] [--profile]
    python bench/inference.py --device cuda --batch 64 --amp bf16   # on a GPU

The model built from specs/googlenet-torchvision.yaml (or specs/inception-v3.yaml, or
specs/resnet50.yaml) gets torchvision's weights through the interop loader (batch-norm statistics randomized, so
folding them is tested), and every contender's logits are compared with torchvision's. Contenders take turns call by call, after
warm-up; the table gives the median. ``--ablation`` adds one row per step of
``optimize_for_inference``, each on top of the ones before; ``--compile`` adds
``torch.compile`` of torchvision's model and of the optimized one (their compile times,
measured here in one process, would favour whichever compiles second: bench/compile_time.py
measures them each in a fresh process). The repeats behind every median follow the tables,
and the time ``optimize_for_inference`` itself takes, median of 5 calls.
"""

from __future__ import annotations

import argparse
import contextlib
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from benchlib import ROOT, machine, median, print_repeats, table, time_interleaved

import archbuilder
from archbuilder.interop import load_torchvision_googlenet, load_torchvision_inception_v3, load_weights


@dataclass(frozen=True)
class Pair:
    """A shipped spec, the torchvision model it equals, and the loader between them."""

    spec: Path
    torchvision: Callable[..., torch.nn.Module]
    load: Callable[[torch.nn.Module, torch.nn.Module], torch.nn.Module]
    size: int


PAIRS = {
    "googlenet": Pair(
        ROOT / "specs" / "googlenet-torchvision.yaml",
        lambda: torchvision.models.googlenet(
            weights=None, aux_logits=True, init_weights=True, transform_input=False
        ),
        load_torchvision_googlenet,
        224,
    ),
    "inception-v3": Pair(
        ROOT / "specs" / "inception-v3.yaml",
        lambda: torchvision.models.inception_v3(
            weights=None, aux_logits=True, init_weights=True, transform_input=False
        ),
        load_torchvision_inception_v3,
        299,
    ),
    # No sibling convs to fuse: the gain over the default build is batch-norm folding,
    # channels-last and oneDNN's fused conv + ReLU (the residual sums stay separate ops).
    "resnet50": Pair(
        ROOT / "specs" / "resnet50.yaml",
        lambda: torchvision.models.resnet50(weights=None),
        lambda model, source: load_weights(model, source, "torchvision-resnet50"),
        224,
    ),
}
ABLATION = (  # cumulative: each row adds one step
    ("+ channels_last", dict(fold_bn=False, fuse_siblings=False, fuse_activations=False)),
    ("+ fold_bn", dict(fuse_siblings=False, fuse_activations=False)),
    ("+ fuse_siblings", dict(fuse_activations=False)),
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", choices=list(PAIRS), default="googlenet")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", choices=["bf16", "fp16"], help="autocast to this dtype (GPU)")
    parser.add_argument("--ablation", action="store_true", help="one row per optimization step")
    parser.add_argument(
        "--compile", action="store_true", help="add torch.compile contenders (slow to compile)"
    )
    parser.add_argument("--profile", action="store_true", help="where optimize_for_inference's time goes")
    args = parser.parse_args()

    device = torch.device(args.device)
    torch.manual_seed(0)
    pair = PAIRS[args.model]
    reference = _torchvision_model(pair).to(device)
    spec_model = archbuilder.build(pair.spec, max_param_bytes=1 << 40)
    pair.load(spec_model, reference)
    spec_model = spec_model.eval().to(device)

    models: dict[str, Callable] = {"torchvision": reference}
    models["torchvision, channels_last"] = _channels_last(_torchvision_model(pair).to(device), reference)
    models["archbuilder"] = spec_model
    if args.ablation:
        for name, steps in ABLATION:
            models[name] = archbuilder.optimize_for_inference(spec_model, **steps)
    models["optimize_for_inference"] = archbuilder.optimize_for_inference(spec_model)
    optimize_seconds = _optimize_seconds(spec_model)
    if args.compile:
        for name, model in (
            ("torchvision", reference),
            ("optimize_for_inference", models["optimize_for_inference"]),
        ):
            models[f"torch.compile({name})"] = _compiled(model, device, args.batch, pair.size)

    amp = (
        torch.autocast(device.type, dtype=getattr(torch, {"bf16": "bfloat16", "fp16": "float16"}[args.amp]))
        if args.amp
        else contextlib.nullcontext()
    )
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    print(f"Machine: {machine(args.device)}")
    print(f"Precision: {args.amp or 'fp32'}; median of {args.repeats} interleaved runs after warm-up\n")
    for batch in args.batch:
        x = torch.randn(batch, 3, pair.size, pair.size, device=device)
        with torch.inference_mode(), amp:
            expected = reference(x).float()
            errors = {name: _relative_error(model(x).float(), expected) for name, model in models.items()}
            times = time_interleaved(
                {name: (lambda m=model, x=x: m(x)) for name, model in models.items()},
                repeats=args.repeats,
                sync=sync,
            )
        base = median(times["torchvision"])
        rows = []
        for name in models:
            seconds = median(times[name])
            rows.append(
                [
                    name,
                    f"{seconds * 1e3:.2f}",
                    f"{batch / seconds:,.0f}",
                    f"{base / seconds:.2f}×",
                    f"{errors[name]:.1e}",
                ]
            )
        print(f"Batch {batch}, {args.device}:")
        print(table(["model", "ms / batch", "images / s", "vs torchvision", "max rel. error"], rows))
        print_repeats(times)
        print()
    print(
        f"optimize_for_inference took {median(optimize_seconds):.3f} s (median of 5 calls: "
        + " ".join(f"{s:.3f}" for s in optimize_seconds)
        + ")\n"
    )
    if args.profile:
        _print_profile(
            models["optimize_for_inference"],
            torch.randn(max(args.batch), 3, pair.size, pair.size, device=device),
        )


def _print_profile(model: Callable, x: torch.Tensor, name: str = "optimize_for_inference") -> None:
    """Self time per operator of ``model`` over 5 calls, largest first (a compiled model's
    generated kernels appear by name where inductor's kernel profile is on)."""
    with torch.inference_mode():
        model(x)
        with torch.profiler.profile() as profile:
            for _ in range(5):
                model(x)
    events = sorted(profile.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    rows = [
        [
            e.key if len(e.key) <= 60 else e.key[:57] + "...",
            f"{e.count // 5}",
            f"{e.self_cpu_time_total / 5e3:.1f}",
            f"{e.self_cpu_time_total / total * 100:.1f}%",
        ]
        for e in events[:8]
    ]
    print(f"Where {name}'s time goes (batch {x.shape[0]}, per call):")
    print(table(["operator", "calls", "ms", "share"], rows))


def _torchvision_model(pair: Pair) -> torch.nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = pair.torchvision()
    for module in model.modules():  # trained-looking batch-norm statistics, so folding them shows
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
            torch.nn.init.uniform_(module.bias, -0.2, 0.2)
    return model.eval()


def _channels_last(model: torch.nn.Module, weights_from: torch.nn.Module) -> Callable:
    model.load_state_dict(weights_from.state_dict())
    model = model.eval().to(memory_format=torch.channels_last)
    return lambda x: model(x.contiguous(memory_format=torch.channels_last))


def _compiled(model: torch.nn.Module, device: torch.device, batches: list[int], size: int) -> Callable:
    compiled = torch.compile(model, dynamic=False)
    with torch.inference_mode():
        for batch in batches:  # compile for every batch size before any timing
            compiled(torch.randn(batch, 3, size, size, device=device))
    return compiled


def _optimize_seconds(model: torch.nn.Module) -> list[float]:
    seconds = []
    for _ in range(5):
        start = time.perf_counter()
        archbuilder.optimize_for_inference(model)
        seconds.append(time.perf_counter() - start)
    return seconds


def _relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual - expected).abs().max() / expected.abs().max()).item()


if __name__ == "__main__":
    main()
