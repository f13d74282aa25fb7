"""Apply a spec's ``scale`` (width and depth multipliers) to get the spec that is built."""

from __future__ import annotations

from pydantic import ValidationError

from archbuilder.core.errors import Problem, SpecError
from archbuilder.spec.compose import walk_layers
from archbuilder.spec.model import ArchSpec
from archbuilder.spec.rounding import make_divisible, scaled_depth
from archbuilder.spec.source import Source

__all__ = ["apply_scale", "make_divisible"]

_INCEPTION_WIDTHS = ("ch1x1", "ch3x3red", "ch3x3", "ch5x5red", "ch5x5", "pool_proj")


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
        stage = layer["kind"] == "inverted_residual"  # a stage: its repeat scales even at 1
        if layer.get("repeat", 1) > 1 or stage:
            layer["repeat"] = scaled_depth(layer.get("repeat", 1), scale.depth, scale.depth_rounding)
        if layer["kind"] in ("conv", "separable", "inverted_residual") and "out" in layer:
            layer["out"] = width(layer["out"])  # a depthwise conv may have none
        if stage and "expanded" in layer:
            layer["expanded"] = width(layer["expanded"])
        squeeze = layer.get("se") if stage else layer if layer["kind"] == "se" else None
        if isinstance(squeeze, dict) and "squeeze_channels" in squeeze:
            squeeze["squeeze_channels"] = width(squeeze["squeeze_channels"])
        for branch in layer.get("branches", []) if layer.get("split") else ():
            if isinstance(branch.get("channels"), int):  # a count; ratios and rest follow the input
                branch["channels"] = width(branch["channels"])
        for key in _INCEPTION_WIDTHS if layer["kind"] == "inception" else ():
            if key in layer:
                layer[key] = width(layer[key])
    try:
        return ArchSpec.from_data(data, spec.source)
    except ValidationError as exc:  # e.g. depth 16 takes a repeat of 1000 past its limit
        from archbuilder.spec.validate import problems_from_validation

        found = problems_from_validation(exc, data, spec.source or Source())
        raise SpecError([_scaled(problem, scale.depth) for problem in found]) from None
