"""Whether this CPU accelerates bf16 and int8 inference, and a one-time warning when not.

oneDNN runs bf16 convs fast on AVX-512 BF16 or AMX, and int8 convs on VNNI (AVX-512 or AVX)
or AMX; elsewhere it converts and runs them more slowly than float32. The paths still work:
they warn once per kind that they are not accelerated here.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import torch

__all__ = [
    "ACCELERATING_FLAGS",
    "NotAcceleratedWarning",
    "accelerated",
    "cpu_flags",
    "warn_if_not_accelerated",
]

# /proc/cpuinfo flags, any one of which accelerates the kind.
ACCELERATING_FLAGS = {
    "bf16": frozenset({"avx512_bf16", "amx_bf16"}),
    "int8": frozenset({"avx512_vnni", "avx_vnni", "amx_int8"}),
}
# torch.backends.cpu.get_cpu_capability() values below which neither is used.
_VECTOR_CAPABILITIES = {"AVX512", "AMX", "AVX512_BF16", "AVX512_VNNI"}
_warned: set[str] = set()


class NotAcceleratedWarning(UserWarning):
    """A reduced-precision path runs on a CPU without the instructions that make it fast."""


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def _torch_probe(kind: str) -> bool:
    """PyTorch's own cpuinfo probes (private, so each is optional)."""
    probes = {
        "bf16": ("_is_avx512_bf16_supported", "_is_amx_tile_supported"),
        "int8": ("_is_vnni_supported",),
    }
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes[kind])


def accelerated(kind: str) -> bool:
    """Whether ``kind`` ("bf16" or "int8") has hardware support here: the capability PyTorch
    dispatches to, then the CPU's flags (or PyTorch's probes where /proc/cpuinfo is missing)."""
    if kind not in ACCELERATING_FLAGS:
        raise ValueError(f"kind must be 'bf16' or 'int8', not {kind!r}")
    capability = torch.backends.cpu.get_cpu_capability()
    if capability not in _VECTOR_CAPABILITIES and not (kind == "int8" and capability == "AVX2"):
        return False  # AVX2 machines may have AVX-VNNI, never AVX-512 BF16
    flags = cpu_flags()
    return bool(flags & ACCELERATING_FLAGS[kind]) if flags else _torch_probe(kind)


def warn_if_not_accelerated(kind: str, device: torch.device | str = "cpu") -> None:
    """Warn (once per kind and process) that ``kind`` runs here without hardware support."""
    if torch.device(device).type != "cpu" or kind in _warned or accelerated(kind):
        return
    _warned.add(kind)
    needs = " or ".join(sorted(ACCELERATING_FLAGS[kind]))
    warnings.warn(
        f"{kind} inference works on this CPU but is not accelerated: it lacks {needs} "
        f"(PyTorch's CPU capability: {torch.backends.cpu.get_cpu_capability()}); "
        "expect it to be slower than float32",
        NotAcceleratedWarning,
        stacklevel=3,
    )
