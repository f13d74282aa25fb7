"""How ops look in a diagram: one colour per family of op kinds, and short labels."""

from __future__ import annotations

from dataclasses import dataclass

from archbuilder.core.escaping import DotLabel, for_dot_record, for_dot_text
from archbuilder.ir.graph import IR, Op, Parallel, Shape
from archbuilder.spec.activations import display_name

__all__ = [
    "FAMILIES",
    "STATUS_COLOURS",
    "THEMES",
    "Family",
    "Theme",
    "describe",
    "describe_block",
    "family_of",
    "record_label",
    "shape_text",
    "text_label",
]


@dataclass(frozen=True)
class Family:
    """A group of op kinds drawn alike."""

    name: str
    fill: str
    line: str


# Light fills with matching dark outlines, one per family. The five a reader must tell apart
# (block, aux head, conv, pool, merge) step down in luminance (0.92, 0.77, 0.64, 0.50, 0.40),
# so they stay apart in greyscale print; black text keeps at least 9:1 on each.
FAMILIES: dict[str, Family] = {
    "input": Family("input / output", "#ffffff", "#333333"),
    "conv": Family("convolution", "#bcd4ee", "#2f5f96"),
    "pool": Family("pooling", "#f2ae6f", "#a0521b"),
    "norm": Family("normalization", "#e6e6e6", "#6e6e6e"),
    "activation": Family("activation", "#e3efc9", "#6b8e23"),
    "se": Family("squeeze-excite", "#f3d9f0", "#8e3b86"),
    "layer_scale": Family("layer scale", "#f0ead2", "#857a3a"),
    "shuffle": Family("channel shuffle", "#fff1b8", "#9a7b12"),
    "drop_path": Family("drop path", "#f7f7f7", "#8a8a8a"),
    "dropout": Family("dropout", "#f7f7f7", "#a0a0a0"),
    "reshape": Family("flatten", "#f3ebe0", "#8a6d4b"),
    "slice": Family("channel slice", "#fff6d5", "#9a7b12"),
    "linear": Family("linear", "#ddd3f0", "#5e4b8b"),
    "merge": Family("merge", "#5fb8aa", "#1d6f65"),
    "block": Family("block", "#f3f6fa", "#5b7fa8"),
    "aux": Family("auxiliary head", "#f9dcdc", "#b5474b"),
}

# The paper theme: greys only, the same luminance steps, thin dark outlines.
PAPER_FAMILIES: dict[str, Family] = {
    key: Family(family.name, fill, "#333333")
    for (key, family), fill in zip(
        FAMILIES.items(),
        (
            "#ffffff",  # input
            "#cfcfcf",  # conv
            "#b3b3b3",  # pool
            "#ebebeb",  # norm
            "#e0e0e0",  # activation
            "#d8d8d8",  # se
            "#ededed",  # layer scale
            "#e8e8e8",  # shuffle
            "#f4f4f4",  # drop path
            "#f4f4f4",  # dropout
            "#eeeeee",  # flatten
            "#eeeeee",  # slice
            "#dcdcdc",  # linear
            "#959595",  # merge
            "#f7f7f7",  # block
            "#e4e4e4",  # aux
        ),
        strict=True,
    )
}

# Outlines of what a compare diagram marks: hues no family uses.
STATUS_COLOURS = {
    "added": "#00a651",
    "changed": "#e6007e",
    "renamed": "#0096c7",
    "affected": "#8c8c8c",
}


@dataclass(frozen=True)
class Theme:
    """How a static diagram looks: fonts, fills, lines."""

    name: str
    font: str
    families: dict[str, Family]
    section_fill: str  # the stem and head boxes
    section_line: str
    edge: str
    edge_label: str
    background: str

    def family(self, kind: str) -> Family:
        return self.families[_FAMILY_OF_KIND.get(kind, "block")]


THEMES = {
    "default": Theme("default", "Helvetica", FAMILIES, "#f7f7f7", "#cccccc", "#555555", "#444444", ""),
    # for a paper: white, greys, a serif like the body text's, nothing but outlines in colour
    "paper": Theme(
        "paper", "Times-Roman", PAPER_FAMILIES, "#ffffff", "#999999", "#333333", "#222222", "white"
    ),
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
    "layer_scale": "layer_scale",
    "drop_path": "drop_path",
    "slice": "slice",
    "channel_shuffle": "shuffle",
    "activation": "activation",
    "dropout": "dropout",
    "flatten": "reshape",
    "linear": "linear",
    "concat": "merge",
    "add": "merge",
    "mul": "merge",
    "inception": "block",
    "branches": "block",
    "se": "se",
    "inverted_residual": "block",
    "aux_head": "aux",
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
                display_name(a["activation"]) if a["activation"] != "none" else "",
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
        return display_name(a["function"]) if a["function"] != "none" else "identity"
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
        return f"SE {a['channels']}→{a['squeeze']}→{a['channels']} · {display_name(a['gate'])}"
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
    Each line is text, never record syntax or markup (:func:`~archbuilder.core.escaping.for_dot_record`).
    """
    # Non-breaking spaces pad each line: Graphviz builds without font files (the embedded one)
    # estimate text a little narrower than browsers draw it.
    pad = "\u00a0" * 3
    fields = "|".join(f"{pad}{for_dot_record(line)}{pad}" for line in lines if line)
    return DotLabel(f"{{{fields}}}" if rankdir == "TB" else fields)


def text_label(*lines: str, pad: int = 2) -> DotLabel:
    """A plain multi-line label (graph title, clusters), each line padded like record labels
    and kept as text (:func:`~archbuilder.core.escaping.for_dot_text`)."""
    space = "\u00a0" * pad
    return DotLabel("\n".join(f"{space}{for_dot_text(line)}{space}" for line in lines if line))


def describe_block(ir: IR, block: Parallel) -> str:
    """What a block is, read from its structure: ``Inception``, ``bottleneck``, ``dense layer``…"""
    if block.kind == "inception":
        return "Inception"
    if block.kind == "inverted_residual":
        return "inverted residual"
    merge = ir.op(block.merge)
    branches = [branch for _, branch in block.branches]
    full = [branch for branch in branches if branch.items]
    nested = any(isinstance(item, Parallel) for branch in branches for item in branch.items)
    if merge.kind == "concat":
        if merge.attrs.get("shuffle"):
            return "shuffle unit"
        if len(full) == 1 < len(branches):
            return "dense layer"  # the input, and what one branch adds to it
        return "Inception" if len(full) >= 3 else "parallel branches"
    if merge.kind == "add":
        if nested:
            return "Inception-ResNet"
        main = max(full, key=lambda branch: len(branch.items), default=None)
        kernels = [
            tuple(ir.op(item).attrs["kernel"])
            for item in (main.items if main else ())
            if isinstance(item, str) and ir.op(item).kind == "conv"
        ]
        if len(kernels) == 3 and kernels[0] == kernels[2] == (1, 1) != kernels[1]:
            return "bottleneck"
        return "residual"
    if merge.kind == "mul":
        return "gated"
    return block.kind
