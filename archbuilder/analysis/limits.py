"""Limits that keep untrusted specs from exhausting the machine (shared by the builder and the CLI).

A spec's fields each have a range, but a valid spec can still ask for more memory than any
machine has: a 3×16384×16384 input, or a padding of 65,536, has few parameters and huge
feature maps. The builder and exporter therefore refuse, before allocating anything, a
model whose float32 parameters or whose activations (the peak of one eval-mode forward
pass, estimated from the IR by :mod:`archbuilder.ir.memory`) exceed a limit.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from archbuilder.core.errors import Problem, SpecError

if TYPE_CHECKING:
    from archbuilder.ir.graph import IR

__all__ = [
    "DEFAULT_MAX_ACTIVATION_BYTES",
    "DEFAULT_MAX_PARAM_BYTES",
    "check_activations",
    "check_limit",
    "format_bytes",
]

DEFAULT_MAX_PARAM_BYTES = 4 << 30  # refuse to allocate more than 4 GiB of float32 parameters
DEFAULT_MAX_ACTIVATION_BYTES = 4 << 30  # nor a forward pass whose float32 activations peak above 4 GiB


def check_limit(name: str, value: Any) -> int:
    """``value`` as a byte count, when it is a usable limit: a finite number above 0.

    ``nan``, ``inf``, zero, negatives, booleans and non-numbers are a ValueError: a limit
    is never silently turned off.
    """
    usable = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not usable or not math.isfinite(value) or value <= 0 or value >= 2**63:
        raise ValueError(f"{name} must be a finite number of bytes above 0, not {value!r}")
    return int(value)


def format_bytes(count: int) -> str:
    """``count`` bytes in the largest binary unit that keeps it at least 1."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} bytes"


def check_activations(ir: IR, *, batch: int, max_bytes: int, file: str | None = None) -> int:
    """The peak activation bytes of an eval forward pass of ``batch`` samples; SpecError above ``max_bytes``."""
    from archbuilder.ir.memory import activation_bytes

    limit = check_limit("max_activation_bytes", max_bytes)
    peak = activation_bytes(ir, batch=batch)
    if peak > limit:
        samples = f"a batch of {batch}" if batch != 1 else "one sample"
        message = (
            f"a forward pass of {samples} needs about {format_bytes(peak)} of float32 activations, "
            f"over the limit of {format_bytes(limit)}; shrink the input or the feature maps, or raise "
            "max_activation_bytes (archbuild --max-activation-gib) to go ahead anyway"
        )
        raise SpecError([Problem((), message, file)])
    return peak
