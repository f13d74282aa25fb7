"""The op budget: how many IR ops spec data expands to, counted before anything is expanded.

Each field has a range, but ranges multiply: a ``branches`` block with ``repeat: 1000``
holding another one holding a layer with ``repeat: 1000`` is one line of YAML and 10⁹ ops.
:func:`count_ops` walks the data once (repeats, ``scale.depth`` and nesting multiply, they
are never unrolled) and :func:`check_budget` refuses a spec over ``max_ops``, naming the
outermost multiplier of its largest part. It runs on raw data, before validation, so it
reads any value defensively (a value of the wrong type counts as validation will treat it:
not at all, or once).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from archbuilder.core.errors import KeyPath, SpecError
from archbuilder.spec.rounding import scaled_depth

if TYPE_CHECKING:  # the YAML reader is not needed for DEFAULT_MAX_OPS (the CLI's start-up)
    from archbuilder.spec.source import Source

__all__ = ["DEFAULT_MAX_OPS", "OpCount", "check_budget", "check_max_ops", "count_ops"]

DEFAULT_MAX_OPS = 100_000  # the largest shipped spec has 133 ops; 100,000 lower in seconds


@dataclass(frozen=True)
class OpCount:
    """The ops a spec expands to, and where the outermost multiplier of its largest part is."""

    total: int
    multiplier: KeyPath | None  # path of the `repeat` (or None when nothing repeats)


def _rounding(data: dict[str, Any]) -> str:
    scale = data.get("scale")
    return "ceil" if isinstance(scale, dict) and scale.get("depth_rounding") == "ceil" else "round"


def _depth(data: dict[str, Any]) -> float:
    scale = data.get("scale")
    depth = scale.get("depth", 1) if isinstance(scale, dict) else 1
    ok = isinstance(depth, (int, float)) and not isinstance(depth, bool) and math.isfinite(depth)
    return float(depth) if ok and 0 < depth <= 16 else 1.0


def _repeat(layer: dict[str, Any], depth: float, rounding: str = "round") -> int:
    repeat = layer.get("repeat", 1)
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        return 1
    if depth == 1 or (repeat == 1 and layer.get("kind") != "inverted_residual"):
        return repeat  # an inverted residual is a stage: its repeat scales even at 1 (as apply_scale)
    return scaled_depth(repeat, depth, rounding)


class _Counter:
    def __init__(self, depth: float, rounding: str = "round"):
        self.depth = depth
        self.rounding = rounding

    def layers(self, layers: Any, path: KeyPath) -> tuple[int, KeyPath | None, int]:
        """(ops of a layer list, its largest part's outermost multiplier, that part's ops)."""
        total, where, largest = 0, None, -1
        for index, layer in enumerate(layers if isinstance(layers, list) else []):
            ops, inner = self.layer(layer, (*path, index))
            total += ops
            if ops > largest:
                where, largest = inner, ops
        return total, where, largest

    def layer(self, layer: Any, path: KeyPath) -> tuple[int, KeyPath | None]:
        if not isinstance(layer, dict):
            return 1, None
        once, inner = 1, None
        if layer.get("kind") == "inception":
            once = _inception_ops(layer)
        if layer.get("kind") == "inverted_residual":
            once = _inverted_residual_ops(layer)
        branches = layer.get("branches")
        if isinstance(branches, list):
            largest = -1
            if layer.get("split") is True:  # each branch starts with the slice op it reads
                once += len(branches)
            for index, branch in enumerate(branches):
                layers = branch.get("layers") if isinstance(branch, dict) else None
                ops, where, _ = self.layers(layers, (*path, "branches", index, "layers"))
                once += ops
                if ops > largest:
                    inner, largest = where, ops
        repeat = _repeat(layer, self.depth, self.rounding)
        return once * repeat, ((*path, "repeat") if repeat > 1 else inner)


def _inception_ops(layer: dict[str, Any]) -> int:
    """1×1, 3×3 and k×k convs (two when factorized), the pool and the concat, plus the
    reductions and the projection that are there."""
    optional = sum(layer.get(key) is not None for key in ("ch3x3red", "ch5x5red", "pool_proj"))
    return 5 + optional + (layer.get("factorize_5x5") is True)


def _inverted_residual_ops(layer: dict[str, Any]) -> int:
    """Depthwise and project convs and the merge, plus the expand conv, the SE gate and the
    drop path when they may be there: an upper bound, as the input width decides the expand
    conv and the shortcut (hence the drop path)."""
    return 4 + (layer.get("se") is not None) + (layer.get("drop_path") is True)


def count_ops(data: Any) -> OpCount:
    """The IR ops ``data`` (a spec mapping, templates expanded) lowers to, at most: the input,
    every layer times its repeats (scaled by ``scale.depth``), branch merges, aux heads."""
    if not isinstance(data, dict):
        return OpCount(0, None)
    counter = _Counter(_depth(data), _rounding(data))
    total, where, largest = 1, None, -1  # the input op
    parts: list[tuple[Any, KeyPath]] = [(data.get(key), (key,)) for key in ("stem", "blocks", "head")]
    heads = data.get("aux_heads")
    for index, head in enumerate(heads if isinstance(heads, list) else []):
        parts.append((head.get("layers") if isinstance(head, dict) else None, ("aux_heads", index, "layers")))
    for layers, path in parts:
        ops, inner, biggest = counter.layers(layers, path)
        total += ops
        if biggest > largest:
            where, largest = inner, biggest
    return OpCount(total, where)


def check_max_ops(max_ops: Any) -> int:
    """``max_ops`` itself, when it is a usable budget (an integer ≥ 1); ValueError otherwise."""
    if isinstance(max_ops, bool) or not isinstance(max_ops, int) or max_ops < 1:
        raise ValueError(f"max_ops must be an integer of at least 1, not {max_ops!r}")
    return max_ops


def check_budget(data: Any, source: Source, max_ops: int) -> None:
    """Raise SpecError when ``data`` expands to more than ``max_ops`` ops."""
    count = count_ops(data)
    if count.total <= max_ops:
        return
    message = f"the spec expands to {_count(count.total)} ops, over the budget of {max_ops:,}"
    if count.multiplier is not None:
        message += "; the outermost multiplier of its largest part is this repeat"
        if _depth(data) != 1:
            message += f" (times scale.depth {_depth(data):g})"
    message += "; lower the repeats, or raise the budget with max_ops= (archbuild --max-ops N)"
    raise SpecError([source.problem(count.multiplier or (), message)])


def _count(total: int) -> str:
    return f"{total:,}" if total < 10**15 else f"about 10^{int(total.bit_length() * math.log10(2))}"
