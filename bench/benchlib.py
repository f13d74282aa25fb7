"""What the benchmarks share: the machine's description, interleaved timing, tables."""

from __future__ import annotations

import os
import platform
import re
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from archbuilder.core.machine import cpu_model  # the one description of a CPU

ROOT = Path(__file__).resolve().parent.parent


def machine(device: str = "cpu") -> str:
    """One line: CPU, cores, threads, Python, torch (and the GPU when ``device`` is cuda)."""
    import torch

    parts = [
        cpu_model(),
        f"{os.cpu_count()} logical cores",
        f"{torch.get_num_threads()} torch threads",
        f"Python {platform.python_version()}",
        f"torch {torch.__version__}",
    ]
    try:
        import torchvision

        parts.append(f"torchvision {torchvision.__version__}")
    except ImportError:
        pass
    if device.startswith("cuda"):
        parts.insert(0, torch.cuda.get_device_name(torch.device(device)))
    return ", ".join(parts)


CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8")


def cpu_flags() -> list[str]:
    """The instruction-set flags that decide which kernels oneDNN picks, as /proc/cpuinfo lists them."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                present = set(line.split(":", 1)[1].split())
                return [flag for flag in CPU_FLAGS if flag in present]
    except OSError:
        pass
    return []


def onednn_version() -> str:
    import torch

    match = re.search(r"MKL-DNN v([0-9.]+)", torch.__config__.show())
    return match.group(1) if match else "unknown"


def print_repeats(times: Mapping[str, Sequence[float]], *, scale: float = 1e3, unit: str = "ms") -> None:
    """The repeats behind each median, in the order they ran, so a reader can check the spread."""
    print(f"\nRepeats ({unit}, in the order run):")
    for name, values in times.items():
        print(f"- {name}: " + " ".join(f"{value * scale:.4g}" for value in values))


def time_interleaved(
    contenders: Mapping[str, Callable[[], object]],
    *,
    repeats: int,
    warmup: int = 2,
    sync: Callable[[], None] = lambda: None,
) -> dict[str, list[float]]:
    """Seconds per call of each contender, taking turns call by call so that drifts in the
    machine's speed (other load, clocks) touch them all alike. Warm-up calls first."""
    for run in contenders.values():
        for _ in range(warmup):
            run()
    sync()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for round_ in range(repeats):
        # Rotate who goes first, so no contender always follows the same one.
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            start = time.perf_counter()
            contenders[name]()
            sync()
            times[name].append(time.perf_counter() - start)
    return times


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; numbers right-aligned."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    numeric = [all(_is_number(r[i]) for r in cells) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        padded = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(("-" * (w + 1) + ":") if num else ("-" * (w + 2)) for w, num in zip(widths, numeric))
        + "|"
    )
    return "\n".join([line(headers), rule, *(line(r) for r in cells)])


def _is_number(text: str) -> bool:
    stripped = text.replace(",", "").replace("×", "").replace("%", "").replace("+", "").strip()
    try:
        float(stripped)
    except ValueError:
        return False
    return True
