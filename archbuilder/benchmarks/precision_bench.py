"""``benchmark``: a spec's inference throughput in fp32, bf16 or int8, next to its torchvision twin.

Contenders take turns call by call after warm-up (so a busy machine slows them alike) and
the median is reported. A spec whose name is in :data:`TWINS` is also timed against the
torchvision model it equals, with the spec model's weights copied into it (so both compute
the same function): torchvision in fp32 eager and, for bf16, channels-last under
``torch.autocast("cpu", torch.bfloat16)``, the best a user gets from torchvision eagerly.
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from archbuilder.spec import ArchSpec

__all__ = ["TWINS", "Peers", "Timing", "autocast_channels_last", "benchmark"]

# Spec name → (torchvision builder, archbuilder.interop loader copying the weights across).
TWINS = {
    "googlenet-torchvision": ("googlenet", "load_torchvision_googlenet"),
    "inception-v3": ("inception_v3", "load_torchvision_inception_v3"),
}


@dataclass(frozen=True)
class Timing:
    """One contender's median seconds per batch."""

    name: str
    seconds: float
    batch: int

    @property
    def images_per_second(self) -> float:
        return self.batch / self.seconds


Peers = Callable[[nn.Module], dict[str, Callable[[Tensor], Tensor]]]


def benchmark(
    spec: ArchSpec,
    *,
    batch: int = 8,
    dtype: str = "fp32",
    repeats: int = 10,
    twin: bool = True,
    peers: Peers | None = None,
) -> list[Timing]:
    """Median time per batch of the spec's optimized model in ``dtype`` ("fp32", "bf16",
    "int8"), and of its torchvision twin where it has one (``twin=False`` skips it), or of
    ``peers(model)``'s contenders (named callables) instead, in the same interleaved rounds."""
    from archbuilder.builder.build import build

    with torch.random.fork_rng(devices=[]):  # the same weights every run; the caller's RNG untouched
        torch.manual_seed(0)  # the builder initialises from the global generator
        model = build(spec, aux=False, max_param_bytes=1 << 40).eval()
    shape = (batch, spec.input.channels, spec.input.height, spec.input.width)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    if peers is None:
        peers = lambda model: (  # noqa: E731
            _torchvision(model, spec.name, dtype == "bf16") if twin and spec.name in TWINS else {}
        )
    contenders = {f"archbuilder {dtype}": _ours(model, dtype, x), **peers(model)}
    with torch.inference_mode():
        times = _interleaved(contenders, x, repeats)
    return [Timing(name, statistics.median(seconds), batch) for name, seconds in times.items()]


def _ours(model: nn.Module, dtype: str, x: Tensor) -> Callable[[Tensor], Tensor]:
    from archbuilder.builder.optimize import optimize_for_inference

    if dtype == "int8":
        from archbuilder.builder.quantize import calibration_batches, quantize

        return quantize(model, calibration_batches(model, count=4, batch=len(x)))
    return optimize_for_inference(model, dtype=dtype, input_shape=tuple(x.shape))


def _torchvision(model: nn.Module, name: str, autocast: bool) -> dict[str, Callable[[Tensor], Tensor]]:
    """The twin in fp32 (and channels-last under bf16 autocast), its weights copied into ``model``."""
    import torchvision

    import archbuilder.interop as interop

    builder, loader = TWINS[name]

    def make() -> nn.Module:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torchvision's notes on init_weights
            return getattr(torchvision.models, builder)(
                weights=None, aux_logits=False, init_weights=False, transform_input=False
            ).eval()

    twin = make()
    getattr(interop, loader)(model, twin)  # both now compute the same function
    contenders: dict[str, Callable[[Tensor], Tensor]] = {"torchvision fp32": twin}
    if autocast:
        channels_last = make()
        channels_last.load_state_dict(twin.state_dict())
        contenders["torchvision channels-last bf16 autocast"] = autocast_channels_last(channels_last)
    return contenders


def autocast_channels_last(model: nn.Module) -> Callable[[Tensor], Tensor]:
    """``model`` channels-last under ``torch.autocast("cpu", torch.bfloat16)``: the best bf16 a
    user gets from a torchvision model eagerly."""
    model = model.to(memory_format=torch.channels_last)

    def amp(x: Tensor) -> Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return model(x.contiguous(memory_format=torch.channels_last))

    return amp


def _interleaved(contenders: dict[str, Callable], x: Tensor, repeats: int) -> dict[str, list[float]]:
    for run in contenders.values():  # warm-up: packing, first-call compilation
        run(x)
        run(x)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for round_ in range(repeats):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            start = time.perf_counter()
            contenders[name](x)
            times[name].append(time.perf_counter() - start)
    return times
