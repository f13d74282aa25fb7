"""The Inception pattern: a four-branch concat block written with GoogLeNet's role names.

Branches, in concat order: 1×1 conv | [1×1 reduce] → 3×3 | [1×1 reduce] → k×k (or two 3×3) |
pool (stride 1) → [1×1 projection]; every conv stride 1, undilated, ungrouped, and all with
the same conv settings. Anything else stays a ``branches`` block.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CONV_SETTINGS", "as_inception"]

CONV_SETTINGS = ("norm", "activation", "bias", "bn_eps", "bn_momentum")
Layer = dict[str, Any]


def _conv(layer: Any, kernel: int | None = None) -> bool:
    """A plain size-preserving k×k conv (any odd k when ``kernel`` is None)."""
    if not isinstance(layer, dict) or layer.get("kind") != "conv":
        return False
    k = layer["kernel"]
    if k[0] != k[1] or (kernel is not None and k[0] != kernel):
        return False
    return (
        layer["stride"] == (1, 1)
        and layer["dilation"] == (1, 1)
        and layer["groups"] == 1
        and layer["padding"] == (k[0] // 2, k[0] // 2)
    )


def _reduced(branch: list, kernel: int | None) -> tuple[int | None, list] | None:
    """(reduction width or None, the convs after it) if ``branch`` is [1×1]? + k×k convs."""
    if len(branch) >= 2 and _conv(branch[0], 1) and all(_conv(layer, kernel) for layer in branch[1:]):
        return branch[0]["out"], branch[1:]
    if branch and all(_conv(layer, kernel) for layer in branch):
        return None, branch
    return None


def _pool(branch: list) -> tuple[dict[str, Any], int | None] | None:
    if not branch or not isinstance(branch[0], dict) or branch[0].get("kind") not in ("maxpool", "avgpool"):
        return None
    pool = branch[0]
    if pool["stride"] != (1, 1) or (pool["kind"] == "avgpool" and not pool.get("count_include_pad", True)):
        return None
    rest = branch[1:]
    if len(rest) > 1 or (rest and not _conv(rest[0], 1)):
        return None
    kernel = pool["kernel"]
    written: dict[str, Any] = {}
    if pool["kind"] == "avgpool":
        written["kind"] = "avg"
    if kernel != (3, 3):
        written["kernel"] = kernel[0] if kernel[0] == kernel[1] else list(kernel)
    if pool["padding"] != (kernel[0] // 2, kernel[1] // 2):
        written["padding"] = list(pool["padding"])
    if pool["ceil_mode"]:
        written["ceil_mode"] = True
    return written, (rest[0]["out"] if rest else None)


def as_inception(branches: list[list[Any]]) -> tuple[Layer, list[list[str]]] | None:
    """The ``kind: inception`` fields (conv settings included) of four concatenated branches,
    and the role names of each branch's layers; None when they are not an Inception module."""
    if len(branches) != 4:
        return None
    one, three, five, pool = branches
    if len(one) != 1 or not _conv(one[0], 1):
        return None
    b3, b5, bp = _reduced(three, 3), _reduced(five, None), _pool(pool)
    if b3 is None or b5 is None or bp is None or len(b3[1]) != 1 or len(b5[1]) > 2:
        return None
    convs = [layer for branch in branches for layer in branch if layer.get("kind") == "conv"]
    settings = {tuple(layer[key] for key in CONV_SETTINGS) for layer in convs}
    if len(settings) != 1:
        return None
    factorized = len(b5[1]) == 2
    kernel = b5[1][0]["kernel"][0]
    if factorized and (kernel != 3 or b5[1][0]["out"] != b5[1][1]["out"]):
        return None
    fields: Layer = {"kind": "inception", "ch1x1": one[0]["out"]}
    fields.update(ch3x3red=b3[0], ch3x3=b3[1][0]["out"], ch5x5red=b5[0], ch5x5=b5[1][0]["out"])
    if factorized:
        fields["factorize_5x5"] = True
    elif kernel != 5:
        fields["kernel_5x5"] = kernel
    if bp[0]:
        fields["pool"] = bp[0]
    fields["pool_proj"] = bp[1]
    fields = {key: value for key, value in fields.items() if value is not None}
    roles = [
        ["conv"],
        ["reduce", "conv"] if b3[0] is not None else ["conv"],
        (["reduce"] if b5[0] is not None else []) + ["conv", "conv2"][: len(b5[1])],
        ["pool", "proj"][: len(pool)],
    ]
    settings_of = dict(zip(CONV_SETTINGS, settings.pop()))
    return {**fields, "conv": settings_of}, roles
