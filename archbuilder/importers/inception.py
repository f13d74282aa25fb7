"""The Inception pattern: four concatenated branches that an ``inception`` block expands to.

Recognition builds a candidate block from the branches (each layer's width under the role
:data:`~archbuilder.spec.blocks.Inception.ROLES` gives its position, the pool and the k of
the k×k conv as written), expands it with the block's own :meth:`Inception.as_branches` and
compares that expansion with the branches, layer by layer: kinds, widths, kernels, strides,
padding, dilation, groups, the pool's kind, window and rounding, and every conv's settings
(the block has one ``conv``). Equal: the block; anything else stays a ``branches`` block.
"""

from __future__ import annotations

from functools import cache
from itertools import product
from typing import Any

from pydantic import ValidationError

from archbuilder.spec.blocks import Inception

__all__ = ["CONV_SETTINGS", "as_inception"]

CONV_SETTINGS = ("norm", "activation", "bias", "bn_eps", "bn_momentum")
Layer = dict[str, Any]
# Fields written only where the expansion needs them: left out, the block's defaults apply.
_OPTIONAL = ("kernel_5x5", "pool.kind", "pool.kernel", "pool.padding", "pool.ceil_mode")


def _pair(value: Any) -> tuple[int, ...]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _form(layer: Any) -> tuple:
    """What a layer computes, alike for an imported layer (a mapping) and a spec model."""
    get = layer.get if isinstance(layer, dict) else lambda key, default=None: getattr(layer, key, default)
    kind = get("kind")
    if kind == "conv":
        geometry = (get("kernel"), get("stride"), get("padding"), get("dilation"))
        return (kind, get("out"), *map(_pair, geometry), get("groups"))
    if kind in ("maxpool", "avgpool"):
        stride = get("stride")
        geometry = (get("kernel"), get("kernel") if stride is None else stride, get("padding"))
        return (kind, *map(_pair, geometry), get("ceil_mode"), get("count_include_pad", True))
    return (kind,)


@cache
def _layouts() -> tuple[tuple[dict[str, Any], tuple[tuple[str, ...], ...]], ...]:
    """Every shape an Inception block can take (which reductions, projection, factorized k×k),
    as the fields that choose it and the layer names its expansion gives each branch."""
    found = []
    for red3, red5, proj, factorize in product((None, 1), (None, 1), (None, 1), (False, True)):
        fields = dict(kind="inception", ch1x1=1, ch3x3red=red3, ch3x3=1, ch5x5red=red5, ch5x5=1)
        fields.update(pool_proj=proj, factorize_5x5=factorize)
        expansion = Inception.model_validate(fields).as_branches()
        names = tuple(tuple(layer.name for layer in branch.layers) for branch in expansion)
        found.append(({"factorize_5x5": True} if factorize else {}, names))
    return tuple(found)


def _candidate(
    branches: list[list[Layer]], shape: dict[str, Any], names: tuple[tuple[str, ...], ...]
) -> dict[str, Any] | None:
    """The fields of the block of this layout whose widths (and pool) are the branches'."""
    if [len(branch) for branch in branches] != [len(layout) for layout in names]:
        return None
    widths: dict[str, Any] = {}
    layers: dict[str, Layer] = {}
    for branch_name, branch, layout in zip(Inception.BRANCHES, branches, names):
        for layer, name in zip(branch, layout):
            layers[f"{branch_name}.{name}"] = layer
            role = Inception.ROLES[f"{branch_name}.{name}"]
            if role != "pool":
                widths.setdefault(role, layer.get("out"))
    # The pool as written; its stride and count_include_pad are the block's own: a pool that
    # strides (its branch shrinks) or averages without the padding expands to something else.
    pool = layers["branch_pool.pool"]
    kernel = pool.get("kernel", ())
    written_pool = {
        "kind": str(pool.get("kind")).removesuffix("pool"),  # maxpool: max
        "kernel": kernel[0] if len(set(kernel)) == 1 else list(kernel),
        "padding": list(pool.get("padding", ())),
        "ceil_mode": pool.get("ceil_mode"),
    }
    fields: dict[str, Any] = {"kind": "inception", **widths, **shape, "pool": written_pool}
    if not shape:  # the k of the k×k conv (a factorized one is two 3×3 convs)
        fields["kernel_5x5"] = layers["branch5x5.conv"].get("kernel", (0,))[0]
    return {key: fields[key] for key in Inception.model_fields if key in fields}  # the block's order


def _expands_to(fields: dict[str, Any], forms: list[list[tuple]]) -> bool:
    try:
        expansion = Inception.model_validate(fields).as_branches()
    except ValidationError:
        return False
    return [[_form(layer) for layer in branch.layers] for branch in expansion] == forms


def _without(fields: dict[str, Any], key: str) -> dict[str, Any]:
    outer, _, inner = key.partition(".")
    if not inner:
        return {k: v for k, v in fields.items() if k != outer}
    return {**fields, outer: {k: v for k, v in fields[outer].items() if k != inner}}


def as_inception(branches: list[list[Any]]) -> tuple[Layer, list[list[str]]] | None:
    """The ``kind: inception`` fields (conv settings included) of four concatenated branches,
    and the role names of each branch's layers; None when they are not an Inception module."""
    if len(branches) != len(Inception.BRANCHES) or not all(
        isinstance(layer, dict) for branch in branches for layer in branch
    ):
        return None
    convs = [layer for branch in branches for layer in branch if layer.get("kind") == "conv"]
    settings = {tuple(layer.get(key) for key in CONV_SETTINGS) for layer in convs}
    if len(settings) != 1:  # the block has one ``conv`` for all its convs
        return None
    forms = [[_form(layer) for layer in branch] for branch in branches]
    for shape, names in _layouts():
        fields = _candidate(branches, shape, names)
        if fields is None or not _expands_to(fields, forms):
            continue
        for key in _OPTIONAL:
            if _expands_to(_without(fields, key), forms):
                fields = _without(fields, key)
        if not fields["pool"]:
            del fields["pool"]
        roles = [list(layout) for layout in names]
        return {**fields, "conv": dict(zip(CONV_SETTINGS, settings.pop()))}, roles
    return None
