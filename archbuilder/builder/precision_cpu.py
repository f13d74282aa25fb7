"""What this CPU can do for bf16 and int8 inference, and the one warning when it is not fast.

oneDNN runs bf16 convs natively on AVX-512 BF16 or AMX, and int8 convs on VNNI (AVX-512 or
AVX) or AMX. Below that, the paths still work, differently:

* **bf16** — with AVX-512 (BW, VL, DQ) or AVX-NE-CONVERT, oneDNN has bf16 convs that convert
  to float32 inside. Without them (AVX2 CPUs such as AMD Zen 2/3), torch refuses oneDNN's bf16
  weight packing and its own bf16 conv is several times slower than float32, so each conv
  computes in float32 from the bf16 values (exact products, float32 sums, as oneDNN's bf16
  kernels do) and rounds its output to bf16;
* **int8** — without VNNI, oneDNN sums pairs of u8×s8 products in 16 bits, which saturate for
  8-bit activations, so activations are quantized to 7 bits there (``reduce_range``).

Every decision reads :func:`cpu_support`, the one seam tests replace to run a fallback's real
kernels on any machine. It honours oneDNN's own ``ONEDNN_MAX_CPU_ISA`` (and ``DNNL_MAX_CPU_ISA``)
cap, which torch's bf16 check also obeys: ``ONEDNN_MAX_CPU_ISA=AVX2`` makes an AVX-512 machine
run exactly what an AVX2 machine runs in oneDNN.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import warnings
from pathlib import Path

import torch

from archbuilder.core.errors import UnsupportedOnThisCPU

__all__ = [
    "ACCELERATING_FLAGS",
    "CpuSupport",
    "NotAcceleratedWarning",
    "UnsupportedOnThisCPU",
    "accelerated",
    "cpu_flags",
    "cpu_support",
    "warn_if_not_accelerated",
]

# /proc/cpuinfo flags, any one of which accelerates the kind.
ACCELERATING_FLAGS = {
    "bf16": frozenset({"avx512_bf16", "amx_bf16"}),
    "int8": frozenset({"avx512_vnni", "avx_vnni", "amx_int8"}),
}
# What torch asks of the CPU before it runs oneDNN's bf16 convs (mkldnn_bf16_device_check).
ONEDNN_BF16_FLAGS = (frozenset({"avx512bw", "avx512vl", "avx512dq"}), frozenset({"avx_ne_convert"}))

# oneDNN's ISA names in ascending order (ONEDNN_MAX_CPU_ISA), with the older aliases.
_ONEDNN_ISAS = (
    "SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI",
    "AVX512_CORE_BF16", "AVX10_1_512", "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16",
)  # fmt: skip
_ISA_ALIASES = {
    "AVX512_CORE_FP16": "AVX10_1_512",
    "AVX512_CORE_AMX": "AVX10_1_512_AMX",
    "AVX512_CORE_AMX_FP16": "AVX10_1_512_AMX_FP16",
}
# The lowest oneDNN ISA that uses each flag; a cap below it hides the flag from oneDNN.
_FLAG_ISA = {
    "avx2": "AVX2",
    "avx_vnni": "AVX2_VNNI",
    "avx_ne_convert": "AVX2_VNNI_2",
    "avx512f": "AVX512_CORE",
    "avx512bw": "AVX512_CORE",
    "avx512vl": "AVX512_CORE",
    "avx512dq": "AVX512_CORE",
    "avx512_vnni": "AVX512_CORE_VNNI",
    "avx512_bf16": "AVX512_CORE_BF16",
    "amx_bf16": "AVX10_1_512_AMX",
    "amx_int8": "AVX10_1_512_AMX",
    "amx_tile": "AVX10_1_512_AMX",
}
_warned: set[str] = set()


class NotAcceleratedWarning(UserWarning):
    """A reduced-precision path runs on a CPU without the instructions that make it fast."""


@dataclasses.dataclass(frozen=True)
class CpuSupport:
    """What oneDNN and ATen can use here: ``flags`` are the CPU's, less those above oneDNN's
    ISA cap (``onednn_max_isa``); ``onednn_bf16`` is torch's own answer to whether oneDNN runs
    bf16 convs (weight packing included)."""

    flags: frozenset[str] = dataclasses.field(repr=False)
    aten_capability: str
    onednn_max_isa: str | None
    onednn_bf16: bool

    @property
    def vectorized(self) -> bool:
        """Whether ATen's kernels (pools, casts, concats) are vectorized (not ``DEFAULT``)."""
        return self.aten_capability.upper() != "DEFAULT"

    def accelerated(self, kind: str) -> bool:
        """Whether ``kind`` ("bf16" or "int8") runs on instructions made for it."""
        if kind not in ACCELERATING_FLAGS:
            raise ValueError(f"kind must be 'bf16' or 'int8', not {kind!r}")
        native = bool(self.flags & ACCELERATING_FLAGS[kind])
        return self.vectorized and native and (kind != "bf16" or self.onednn_bf16)

    @property
    def int8_reduce_range(self) -> bool:
        """Whether int8 activations must keep to 7 bits: without VNNI, oneDNN's 16-bit pair sums
        of u8×s8 products saturate for 8-bit activations (255·127·2 > 32767)."""
        return not self.flags & ACCELERATING_FLAGS["int8"]

    def describe(self) -> str:
        """One line for benchmarks and messages: the ISA oneDNN may use and ATen's capability."""
        cap = f"oneDNN capped at {self.onednn_max_isa} (ONEDNN_MAX_CPU_ISA)" if self.onednn_max_isa else ""
        features = [flag for flag in sorted(_FLAG_ISA) if flag in self.flags]
        parts = [", ".join(features) or "no AVX2", f"ATen {self.aten_capability}", cap]
        return "; ".join(part for part in parts if part)


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


def onednn_max_isa() -> str | None:
    """oneDNN's ISA cap from its environment variables, normalized; None when uncapped."""
    value = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or ""
    value = _ISA_ALIASES.get(value.strip().upper(), value.strip().upper())
    return value if value in _ONEDNN_ISAS else None


def _probed_flags() -> frozenset[str]:
    """The flags PyTorch's own cpuinfo probes report (private, so each is optional), for
    machines without /proc/cpuinfo."""
    probes = {
        "_is_avx2_supported": ("avx2",),
        "_is_avx512_supported": ("avx512f", "avx512bw", "avx512vl", "avx512dq"),
        "_is_avx512_bf16_supported": ("avx512_bf16",),
        "_is_amx_tile_supported": ("amx_tile", "amx_bf16", "amx_int8"),
        "_is_vnni_supported": ("avx512_vnni",),
    }
    return frozenset(
        flag for name, flags in probes.items() if getattr(torch.cpu, name, lambda: False)() for flag in flags
    )


def _onednn_bf16(flags: frozenset[str]) -> bool:
    if not torch.backends.mkldnn.is_available():
        return False
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if check is not None:
        return bool(check())
    return any(needed <= flags for needed in ONEDNN_BF16_FLAGS)


@functools.cache
def cpu_support() -> CpuSupport:
    """This machine's :class:`CpuSupport` (read once per process)."""
    flags = cpu_flags() or _probed_flags()
    cap = onednn_max_isa()
    if cap is not None:
        level = _ONEDNN_ISAS.index(cap)
        flags = frozenset(f for f in flags if f not in _FLAG_ISA or _ONEDNN_ISAS.index(_FLAG_ISA[f]) <= level)
    return CpuSupport(flags, torch.backends.cpu.get_cpu_capability(), cap, _onednn_bf16(flags))


def accelerated(kind: str) -> bool:
    """Whether ``kind`` ("bf16" or "int8") has hardware support here (:meth:`CpuSupport.accelerated`)."""
    return cpu_support().accelerated(kind)


def warn_if_not_accelerated(kind: str, device: torch.device | str = "cpu") -> None:
    """Warn (once per kind and process) what ``kind`` runs on here when it is not accelerated."""
    support = cpu_support()
    if torch.device(device).type != "cpu" or kind in _warned or support.accelerated(kind):
        return
    _warned.add(kind)
    warnings.warn(not_accelerated_message(kind, support), NotAcceleratedWarning, stacklevel=3)


def not_accelerated_message(kind: str, support: CpuSupport) -> str:
    """What ``kind`` runs on with ``support``, and what is faster, in one paragraph."""
    lacks = " and ".join(sorted(ACCELERATING_FLAGS[kind]))
    where = f" ({support.describe()})"
    if not support.vectorized:
        return (
            f"{kind} is not accelerated here: ATen's kernels are not vectorized (ATEN_CPU_CAPABILITY="
            f"{support.aten_capability}){where}; expect it to be slower than float32"
        )
    if kind == "bf16" and not support.onednn_bf16:
        return (
            f"bf16 is not accelerated on this CPU: oneDNN has no bf16 convs for it (they need avx512bw, "
            f"avx512vl and avx512dq, or avx_ne_convert){where}. Each conv computes in float32 from the "
            "bf16 values and rounds its output to bf16 (the same arithmetic); pools and concatenations "
            "run in bf16. Expect float32's speed at best: dtype='fp32' is the faster choice here"
        )
    if kind == "bf16":
        return (
            f"bf16 is not accelerated on this CPU: it lacks {lacks}, so oneDNN's bf16 convs convert to "
            f"float32 inside{where}; expect them to be slower than float32"
        )
    return (
        f"int8 is not accelerated on this CPU: it lacks {lacks}, so oneDNN sums u8×s8 products in "
        f"16-bit pairs{where}; activations are quantized to 7 bits (reduce_range) so that those sums "
        "cannot saturate. Expect it to be slower than on a CPU with VNNI"
    )
