"""How ops look in a diagram: one colour per family of op kinds, and short labels."""

from __future__ import annotations

from dataclasses import dataclass

from archbuilder.escaping import DotLabel, for_dot_record, for_dot_text
from archbuilder.ir.graph import Op, Shape

__all__ = ["FAMILIES", "Family", "describe", "family_of", "record_label", "shape_text", "text_label"]


@dataclass(frozen=True)
class Family:
    """A group of op kinds drawn alike."""

    name: str
    fill: str
    line: str


# Colour-blind-friendly fills (light) with matching outlines (dark), one per family.
FAMILIES: dict[str, Family] = {
    "input": Family("input / output", "#ffffff", "#333333"),
    "conv": Family("convolution", "#dbe7f5", "#3b6ea5"),
    "pool": Family("pooling", "#fde3c8", "#c8702a"),
    "norm": Family("normalization", "#ececec", "#7a7a7a"),
    "activation": Family("activation", "#def0d5", "#4c9a4c"),
    "dropout": Family("dropout", "#f7f7f7", "#a0a0a0"),
    "reshape": Family("flatten", "#f3ebe0", "#8a6d4b"),
    "slice": Family("channel slice", "#fff6d5", "#9a7b12"),
    "linear": Family("linear", "#e8dff3", "#6f5a9e"),
    "merge": Family("merge", "#d3efec", "#23897d"),
    "block": Family("block", "#eef3fa", "#3b6ea5"),
    "aux": Family("auxiliary head", "#fbe4e4", "#b5474b"),
}

_FAMILY_OF_KIND = {
    "input": "input",
    "conv": "conv",
    "separable": "conv",
    "maxpool": "pool",
    "avgpool": "pool",
    "adaptive_avgpool": "pool",
    "global_avgpool": "pool",
    "lrn": "norm",
    "batchnorm": "norm",
    "layernorm": "norm",
    "layer_scale": "norm",
    "drop_path": "dropout",
    "slice": "slice",
    "channel_shuffle": "slice",
    "activation": "activation",
    "dropout": "dropout",
    "flatten": "reshape",
    "linear": "linear",
    "concat": "merge",
    "add": "merge",
    "mul": "merge",
    "inception": "block",
    "branches": "block",
    "se": "activation",
    "inverted_residual": "block",
    "aux_head": "aux",
}

_ACTIVATION_NAMES = {
    "relu": "ReLU",
    "relu6": "ReLU6",
    "leaky_relu": "LeakyReLU",
    "gelu": "GELU",
    "silu": "SiLU",
    "hardswish": "Hardswish",
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
    "hardsigmoid": "Hardsigmoid",
}


def family_of(kind: str) -> Family:
    return FAMILIES[_FAMILY_OF_KIND.get(kind, "block")]


def shape_text(shape: Shape) -> str:
    return "×".join(map(str, shape))


def _size(pair: tuple[int, int]) -> str:
    return f"{pair[0]}×{pair[1]}"


def _window(attrs: dict) -> str:
    text = _size(attrs["kernel"])
    if attrs["stride"] != (1, 1):
        text += (
            f" /{attrs['stride'][0]}"
            if attrs["stride"][0] == attrs["stride"][1]
            else f" /{_size(attrs['stride'])}"
        )
    return text


def describe(op: Op, *, with_norm: bool = True) -> str:
    """One line saying what the op does: ``conv 3×3 /2 → 128``, ``maxpool 3×3 /2``."""
    a = dict(op.attrs)
    kind = op.kind
    if kind in ("conv", "separable"):
        depthwise = kind == "conv" and a["groups"] == a["in_channels"] > 1
        name = "separable" if kind == "separable" else "dwconv" if depthwise else "conv"
        text = f"{name} {_window(a)} → {a['out_channels']}"
        if kind == "conv" and 1 < a["groups"] < a["in_channels"]:
            text += f" g{a['groups']}"
        if a["dilation"] != (1, 1):
            dilation = a["dilation"]
            text += f" d{dilation[0]}" if dilation[0] == dilation[1] else f" d{_size(dilation)}"
        if with_norm:
            extras = [
                {"batch": "BN", "layer": "LN"}.get(a["norm"], ""),
                _ACTIVATION_NAMES.get(a["activation"], ""),
            ]
            extras = [extra for extra in extras if extra]
            if a.get("order") == "pre":  # pre-activation: BN · ReLU · conv
                return "".join(f"{extra} · " for extra in extras) + text
            text += "".join(f" · {extra}" for extra in extras)
        return text
    if kind in ("maxpool", "avgpool"):
        excluded = " excl. pad" if not a.get("count_include_pad", True) and any(a["padding"]) else ""
        return f"{kind} {_window(a)}" + (" ceil" if a["ceil_mode"] else "") + excluded
    if kind == "adaptive_avgpool":
        return f"adaptive avgpool → {_size(a['output'])}"
    if kind == "global_avgpool":
        return "global avgpool"
    if kind == "lrn":
        return f"LRN size {a['size']}"
    if kind == "activation":
        return _ACTIVATION_NAMES.get(a["function"], "identity")
    if kind == "dropout":
        return f"dropout {a['p']:g}"
    if kind == "linear":
        return f"linear → {a['out_features']}"
    if kind == "slice":
        return f"channels {a['start']}:{a['start'] + a['channels']}"
    if kind == "layernorm":
        return "LayerNorm"
    if kind == "channel_shuffle":
        return f"channel shuffle g{a['groups']}"
    if kind == "layer_scale":
        return f"layer scale ×{a['init']:g}"
    if kind == "drop_path":
        return f"drop path {a['rate']:.3g}" + (" batch" if a["mode"] == "batch" else "")
    if kind == "se":
        return f"SE {a['channels']}→{a['squeeze']}→{a['channels']} · {_ACTIVATION_NAMES.get(a['gate'], a['gate'])}"
    if kind == "concat":
        return "concat"
    if kind == "add":
        return "add"
    if kind == "mul":
        return "multiply"
    return kind


def record_label(lines: list[str], rankdir: str) -> DotLabel:
    """A rounded-record label: one compartment per line, stacked whatever the rank direction.

    Records, unlike HTML-like labels, render in every Graphviz build (the embedded one too).
    Each line is text, never record syntax or markup (:func:`~archbuilder.escaping.for_dot_record`).
    """
    # Non-breaking spaces pad each line: Graphviz builds without font files (the embedded one)
    # estimate text a little narrower than browsers draw it.
    pad = "\u00a0" * 3
    fields = "|".join(f"{pad}{for_dot_record(line)}{pad}" for line in lines if line)
    return DotLabel(f"{{{fields}}}" if rankdir == "TB" else fields)


def text_label(*lines: str, pad: int = 2) -> DotLabel:
    """A plain multi-line label (graph title, clusters), each line padded like record labels
    and kept as text (:func:`~archbuilder.escaping.for_dot_text`)."""
    space = "\u00a0" * pad
    return DotLabel("\n".join(f"{space}{for_dot_text(line)}{space}" for line in lines if line))
