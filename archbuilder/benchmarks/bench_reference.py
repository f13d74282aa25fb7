"""The torchvision model ``archbuild bench`` times a spec against: its twin, or its nearest reference.

A twin (:data:`~archbuilder.benchmarks.precision_bench.TWINS`) computes the same function as the
spec's model once the spec's weights are copied into it. A spec that torchvision has no twin
of may still have a *nearest reference* (:data:`NEAREST`): the torchvision model it is
closest to, built with random weights of its own (the architectures differ, so the weights
cannot be copied across), and timed in the same interleaved rounds. Its rows are labelled as
the nearest reference and ``archbuild bench`` prints both parameter counts and how the two
models differ, so the ratio is not read as a like-for-like comparison.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from archbuilder.benchmarks.precision_bench import TWINS, Timing, autocast_channels_last, benchmark
from archbuilder.spec import ArchSpec

__all__ = ["NEAREST", "NEAREST_SUFFIX", "Comparison", "Reference", "compare", "reference_for"]

NEAREST_SUFFIX = " (nearest)"  # added to the names of a nearest reference's rows


@dataclass(frozen=True)
class Reference:
    """A torchvision model to time a spec against: ``builder`` in ``torchvision.models``,
    ``exact`` for a twin (same function, weights copied); for a nearest reference, how it
    differs from the spec and ``twin_spec``, the shipped spec that is its twin."""

    builder: str
    exact: bool
    differences: str = ""
    twin_spec: str | None = None

    def make(self) -> nn.Module:
        """The model in eval mode, without aux heads and input transform; a nearest reference
        gets torchvision's own random initialisation (seeded, so runs agree)."""
        import torchvision

        # torchvision initialises from the global generator: seed it inside a fork, so the
        # caller's random state is left as it was.
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            torch.manual_seed(0)
            warnings.simplefilter("ignore")  # torchvision's notes on init_weights
            return getattr(torchvision.models, self.builder)(
                weights=None, aux_logits=False, init_weights=not self.exact, transform_input=False
            ).eval()


# Spec name → the torchvision model nearest to it, where torchvision has no twin.
NEAREST = {
    "googlenet": Reference(
        "googlenet",
        exact=False,
        differences=(
            'a 3×3 conv in the "5×5" branch of every Inception block, no conv bias, batch-norm eps 1e-3, '
            "ceil-mode max pools without padding, a 2×2 pool before 5a, dropout 0.2"
        ),
        twin_spec="googlenet-torchvision",
    ),
}


def reference_for(name: str) -> Reference | None:
    """The twin of the spec named ``name``, else its nearest reference, else None."""
    if name in TWINS:
        return Reference(TWINS[name][0], exact=True)
    return NEAREST.get(name)


@dataclass(frozen=True)
class Comparison:
    """What :func:`compare` timed: every contender's timing and the reference used (None
    where there is none, or with ``twin=False``); for a nearest reference, the parameter
    counts of the spec's model and of the reference (None for a twin: they are equal)."""

    timings: list[Timing]
    reference: Reference | None
    params: tuple[int, int] | None = None


def compare(
    spec: ArchSpec, *, batch: int = 8, dtype: str = "fp32", repeats: int = 10, twin: bool = True
) -> Comparison:
    """:func:`~archbuilder.benchmarks.precision_bench.benchmark` against the spec's twin, or
    against its nearest reference (rows named with :data:`NEAREST_SUFFIX`) where it has one."""
    reference = reference_for(spec.name) if twin else None
    if reference is None or reference.exact:
        timings = benchmark(spec, batch=batch, dtype=dtype, repeats=repeats, twin=twin)
        return Comparison(timings, reference)
    from archbuilder.analysis.summary import summarize

    nearest = reference.make()

    def peers(model: nn.Module) -> dict[str, Callable[[Tensor], Tensor]]:
        contenders: dict[str, Callable[[Tensor], Tensor]] = {f"torchvision fp32{NEAREST_SUFFIX}": nearest}
        if dtype == "bf16":  # as benchmark() times a twin; the same seeded weights
            contenders[f"torchvision channels-last bf16 autocast{NEAREST_SUFFIX}"] = autocast_channels_last(
                reference.make()
            )
        return contenders

    timings = benchmark(spec, batch=batch, dtype=dtype, repeats=repeats, peers=peers)
    return Comparison(timings, reference, (summarize(spec).inference_params, _count(nearest)))


def _count(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())
