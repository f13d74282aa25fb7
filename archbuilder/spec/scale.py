"""Apply a spec's ``scale`` (width and depth multipliers) to get the spec that is built."""

from __future__ import annotations

import math

from pydantic import ValidationError

from archbuilder.errors import Problem, SpecError
from archbuilder.spec.model import ArchSpec
from archbuilder.spec.source import Source
from archbuilder.spec.walk import walk_layers

__all__ = ["apply_scale", "make_divisible"]

_INCEPTION_WIDTHS = ("ch1x1", "ch3x3red", "ch3x3", "ch5x5red", "ch5x5", "pool_proj")


def make_divisible(value: float, divisor: int) -> int:
    """Round to the nearest multiple of ``divisor`` (at least ``divisor``), as timm does;
    round up instead where rounding down would lose more than 10%."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _scaled(problem: Problem, depth: float) -> Problem:
    """A validation problem of the scaled spec, saying that scaling made it."""
    message = f"after scale: {problem.message}"
    if problem.path and problem.path[-1] == "repeat":
        message = f"scale.depth {depth:g} makes this repeat too large: {problem.message}; lower the repeat or the depth"
    return Problem(problem.path, message, problem.file, problem.line, problem.column)


def apply_scale(spec: ArchSpec) -> ArchSpec:
    """``spec`` with its scale applied and removed (the spec itself when it has none)."""
    scale = spec.scale
    if scale is None:
        return spec
    data = spec.to_dict()
    del data["scale"]

    def width(value: int) -> int:
        return value if scale.width == 1 else make_divisible(value * scale.width, scale.divisor)

    for layer in walk_layers(data):
        if layer.get("repeat", 1) > 1:
            layer["repeat"] = max(1, math.floor(layer["repeat"] * scale.depth + 0.5))  # halves round up
        if layer["kind"] in ("conv", "separable") and "out" in layer:  # a depthwise conv may have none
            layer["out"] = width(layer["out"])
        for branch in layer.get("branches", []) if layer.get("split") else ():
            if isinstance(branch.get("channels"), int):  # a count; ratios and rest follow the input
                branch["channels"] = width(branch["channels"])
        for key in _INCEPTION_WIDTHS if layer["kind"] == "inception" else ():
            if key in layer:
                layer[key] = width(layer[key])
    try:
        scaled = ArchSpec.model_validate(data)
    except ValidationError as exc:  # e.g. depth 16 takes a repeat of 1000 past its limit
        from archbuilder.spec.validate import problems_from_validation

        found = problems_from_validation(exc, data, spec.source or Source())
        raise SpecError([_scaled(problem, scale.depth) for problem in found]) from None
    scaled._source = spec.source
    return scaled
