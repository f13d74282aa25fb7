"""Batch-1 latency of each precision path for the Inception lineage, next to each spec's twin.

    python bench/precision.py --spec inception-v3 bn-inception inception-v4 inception-resnet-v2 \
        xception inception-next-tiny [--batch 1] [--repeats 10] [--no-compile] [--no-int8]
        [--no-compile-twin]

One table per spec (its own input size, batch 1 unless ``--batch``): the twin from
torchvision / timm / pretrainedmodels in fp32 (the baseline) and channels-last under bf16
autocast, eagerly and compiled (the peers; ``--no-compile-twin`` leaves the compiled one out,
which halves the compiling); ours in bf16 eagerly and with ``compile_frozen``,
and int8 (``quantize``). Weights are random (no downloads) with batch-norm statistics taken
from data, both models alike; latency does not depend on the values. The contenders take
turns call by call after warm-up; medians, then the repeats.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import torch
from benchlib import ROOT, median, print_repeats, table, time_interleaved

import archbuilder
from archbuilder.builder.precision import compile_frozen
from archbuilder.builder.quantize import quantize


def _timm(name: str) -> Callable[[], torch.nn.Module]:
    def make() -> torch.nn.Module:
        import timm

        return timm.create_model(name, pretrained=False)

    return make


def _torchvision_inception_v3() -> torch.nn.Module:
    import torchvision

    return torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=True)


def _bninception() -> torch.nn.Module:
    import pretrainedmodels

    return pretrainedmodels.bninception(pretrained=None)


TWINS: dict[str, tuple[str, Callable[[], torch.nn.Module]]] = {  # spec -> (twin's name, factory)
    "inception-v3": ("torchvision inception_v3", _torchvision_inception_v3),
    "bn-inception": ("pretrainedmodels bninception", _bninception),
    "inception-v4": ("timm inception_v4", _timm("inception_v4")),
    "inception-resnet-v2": ("timm inception_resnet_v2", _timm("inception_resnet_v2")),
    "xception": ("timm legacy_xception", _timm("legacy_xception")),
    "inception-next-tiny": ("timm inception_next_tiny", _timm("inception_next_tiny")),
}
SPECS = tuple(TWINS)


def calibrate_batch_norm(model: torch.nn.Module, images: torch.Tensor) -> None:
    """Batch-norm running statistics from ``images``, as training leaves them."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None
    model.train()
    with torch.no_grad():
        for batch in images.split(4):
            model(batch)
    model.eval()


def _autocast(model: Callable) -> Callable:
    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return model(x.contiguous(memory_format=torch.channels_last))

    return run


def contenders(name: str, args) -> tuple[dict[str, Callable], tuple[int, ...]]:
    """The runs for spec ``name``, and its input shape at the first batch size."""
    torch.manual_seed(0)
    model = archbuilder.build(ROOT / "specs" / f"{name}.yaml", aux=False, max_param_bytes=1 << 40)
    spec = model.spec
    shape = (spec.input.channels, spec.input.height, spec.input.width)
    data = torch.randn(8, *shape, generator=torch.Generator().manual_seed(1))
    calibrate_batch_norm(model, data)
    twin_name, make = TWINS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        twin = make().eval()
    calibrate_batch_norm(twin, data)
    twin_cl = twin.to(memory_format=torch.channels_last)
    runs: dict[str, Callable] = {
        f"{twin_name} fp32": lambda x: twin(x.contiguous()),
        f"{twin_name} CL + bf16 autocast": _autocast(twin_cl),
    }
    if not args.no_compile and not args.no_compile_twin:
        runs[f"torch.compile({twin_name} CL + bf16 autocast)"] = _autocast(torch.compile(twin_cl))
    input_shape = (args.batch[0], *shape)
    runs["optimize_for_inference bf16"] = archbuilder.optimize_for_inference(
        model, dtype="bf16", input_shape=input_shape
    )
    if not args.no_compile:
        plain = archbuilder.optimize_for_inference(model, dtype="bf16", fuse_activations=False)
        runs["optimize_for_inference bf16, compile_frozen"] = compile_frozen(plain)
    if not args.no_int8:
        try:
            runs["quantize int8"] = quantize(model, list(data.split(4)))
        except Exception as error:  # a spec the PT2E flow cannot take: say so, time the rest
            print(f"{name}: int8 left out: {type(error).__name__}: {str(error).splitlines()[0][:200]}")
    return runs, shape


def latency(args) -> None:
    """One table per spec in ``args.spec``: each path's time per batch against the twin."""
    for name in args.spec:
        runs, shape = contenders(name, args)
        start = time.perf_counter()
        with torch.inference_mode():
            for batch in args.batch:
                for label, run in list(runs.items()):
                    try:
                        run(torch.randn(batch, *shape))
                    except Exception as error:  # e.g. inductor failing to compile it: say so, time the rest
                        first = str(error).strip().splitlines()[-1][:200]
                        print(
                            f"{name}: {label} left out (its first call failed: {type(error).__name__}: {first})"
                        )
                        del runs[label]
        print(f"{name} ({'×'.join(map(str, shape))}): first calls (compiling, packing) took "
              f"{time.perf_counter() - start:.0f} s")  # fmt: skip
        for batch in args.batch:
            x = torch.randn(batch, *shape)
            with torch.inference_mode():
                times = time_interleaved(
                    {n: (lambda r=r, x=x: r(x)) for n, r in runs.items()}, repeats=args.repeats
                )
            print(f"{name}, batch {batch}:")
            print(table(*_rows(times, batch)))
            print_repeats({f"{name}, batch {batch}, {n}": v for n, v in times.items()})
            print()


def _rows(times: dict[str, list[float]], batch: int) -> tuple[list[str], list[list[str]]]:
    seconds = {name: median(values) for name, values in times.items()}
    base = next(iter(seconds.values()))  # the twin in fp32
    peer = min(s for name, s in seconds.items() if "autocast" in name)
    ours = seconds["optimize_for_inference bf16"]
    body = [
        [name, f"{value * 1e3:.1f}", f"{batch / value:.1f}", f"{base / value:.2f}×", f"{peer / value:.2f}×",
         f"{ours / value:.2f}×"]
        for name, value in seconds.items()
    ]  # fmt: skip
    return ["model", "ms / batch", "images / s", "vs twin fp32", "vs best peer", "vs our bf16"], body
