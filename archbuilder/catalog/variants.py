"""GoogLeNet v1 variants and the naive Inception, emitted as new specs.

Each variant is a pure function from spec data to spec data. ``v1``, ``v1-bn`` and
``torchvision`` set the layout of one published model whatever variant they start from
(so each can be emitted from any other); ``naive`` and ``factorized`` change the Inception
blocks' structure. Stem layout is found by role: the stem's first max pool, its last conv,
the last max pool among the blocks.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from archbuilder.core.errors import Problem, SpecError
from archbuilder.core.escaping import yaml_header
from archbuilder.ir.lower import lower
from archbuilder.spec import ArchSpec
from archbuilder.spec.compose import walk_layers

__all__ = ["VARIANTS", "Variant", "emit", "emit_yaml"]

Data = dict[str, Any]


@dataclass(frozen=True)
class Variant:
    name: str
    summary: str  # one line: what the variant is
    transform: Callable[[Data], None]  # edits spec data in place


def _layers(data: Data, *sections: str) -> list[Data]:
    return [layer for section in sections for layer in data.get(section, [])]


def _inceptions(data: Data) -> list[Data]:
    return [layer for layer in _layers(data, "stem", "blocks", "head") if layer["kind"] == "inception"]


def _set_conv_defaults(data: Data, **settings: Any) -> None:
    """Make every conv follow ``settings`` (None removes a setting): set them as defaults, drop overrides."""
    merged = {**data.get("defaults", {}).get("conv", {}), **settings}
    data.setdefault("defaults", {})["conv"] = {
        key: value for key, value in merged.items() if value is not None
    }

    for layer in walk_layers(data):
        overrides = layer if layer["kind"] == "conv" else layer.get("conv") or {}
        for key in settings:
            overrides.pop(key, None)
        if layer.get("conv") == {}:
            del layer["conv"]


def _stem_lrn(data: Data, *, lrn: bool) -> None:
    """Remove every LRN; with ``lrn``, put one after the stem's first max pool and its last conv."""
    stem = [layer for layer in data.get("stem", []) if layer["kind"] != "lrn"]
    data["blocks"] = [layer for layer in data["blocks"] if layer["kind"] != "lrn"]
    first_pool = next((i for i, layer in enumerate(stem) if layer["kind"] == "maxpool"), None)
    last_conv = max((i for i, layer in enumerate(stem) if layer["kind"] == "conv"), default=None)
    norm = {"kind": "lrn", "size": 5, "alpha": 1e-4, "beta": 0.75}
    data["stem"] = []
    for index, layer in enumerate(stem):
        data["stem"].append(layer)
        if lrn and index == first_pool:
            data["stem"].append({"name": "norm1", **norm})
        if lrn and index == last_conv:
            data["stem"].append({"name": "norm2", **norm})


def _maxpools(
    data: Data, *, padding: int, ceil_mode: bool, last_block_pool: tuple[int, int] = (3, 2)
) -> None:
    pools = [layer for layer in _layers(data, "stem", "blocks") if layer["kind"] == "maxpool"]
    for layer in pools:
        layer.update(kernel=3, stride=2, padding=padding)
        layer.pop("ceil_mode", None)
        if ceil_mode:
            layer["ceil_mode"] = True
    block_pools = [layer for layer in data["blocks"] if layer["kind"] == "maxpool"]
    if block_pools:
        block_pools[-1].update(kernel=last_block_pool[0], stride=last_block_pool[1])


def _dropouts(data: Data, main: float, aux: float) -> None:
    for layer in data.get("head", []):
        if layer["kind"] == "dropout":
            layer["p"] = main
    for head in data.get("aux_heads", []):
        for layer in head["layers"]:
            if layer["kind"] == "dropout":
                layer["p"] = aux


def _aux_pool(data: Data, pool: Data) -> None:
    for head in data.get("aux_heads", []):
        first = head["layers"][0]
        if first["kind"] in ("adaptive_avgpool", "avgpool"):
            head["layers"][0] = {"name": first.get("name", "pool"), **pool}


def _inceptions_as(data: Data, *, kernel_5x5: int, pool_ceil_mode: bool) -> None:
    for block in _inceptions(data):
        block.pop("kernel_5x5", None)
        if kernel_5x5 != 5:
            block["kernel_5x5"] = kernel_5x5
            block.pop("factorize_5x5", None)
        pool = block.setdefault("pool", {})
        pool.pop("ceil_mode", None)
        if pool_ceil_mode:
            pool["ceil_mode"] = True
        if not pool:
            del block["pool"]


def _v1(data: Data) -> None:
    _set_conv_defaults(data, norm="none", activation="relu", bias=True, bn_eps=None, bn_momentum=None)
    _stem_lrn(data, lrn=True)
    _maxpools(data, padding=0, ceil_mode=True)
    _inceptions_as(data, kernel_5x5=5, pool_ceil_mode=False)
    _aux_pool(data, {"kind": "avgpool", "kernel": 5, "stride": 3})
    _dropouts(data, main=0.4, aux=0.7)


def _v1_bn(data: Data) -> None:
    _set_conv_defaults(data, norm="batch", activation="relu", bias=True, bn_eps=1e-5, bn_momentum=None)
    _stem_lrn(data, lrn=False)
    _maxpools(data, padding=1, ceil_mode=False)
    _inceptions_as(data, kernel_5x5=5, pool_ceil_mode=False)
    _aux_pool(data, {"kind": "adaptive_avgpool", "output": 4})
    _dropouts(data, main=0.4, aux=0.7)


def _torchvision(data: Data) -> None:
    _set_conv_defaults(data, norm="batch", activation="relu", bias=False, bn_eps=1e-3, bn_momentum=None)
    _stem_lrn(data, lrn=False)
    _maxpools(data, padding=0, ceil_mode=True, last_block_pool=(2, 2))
    # torchvision's documented deviation: a 3×3 conv in the "5×5" branch, kept for its weights.
    _inceptions_as(data, kernel_5x5=3, pool_ceil_mode=True)
    _aux_pool(data, {"kind": "adaptive_avgpool", "output": 4})
    _dropouts(data, main=0.2, aux=0.7)


def _naive(data: Data) -> None:
    for block in _inceptions(data):
        for key in ("ch3x3red", "ch5x5red", "pool_proj"):
            block.pop(key, None)


def _factorized(data: Data) -> None:
    for block in _inceptions(data):
        if block.get("kernel_5x5", 5) == 5:
            block["factorize_5x5"] = True

    def split(layers: list[Data]) -> list[Data]:
        result = []
        for layer in layers:
            for branch in layer.get("branches", []):
                branch["layers"] = split(branch.get("layers", []))
            if _is_plain_5x5(layer):
                name = layer.get("name")
                first = {**layer, "kernel": 3, "padding": 1}
                second = {
                    **{k: v for k, v in layer.items() if k not in ("stride", "name")},
                    "kernel": 3,
                    "padding": 1,
                }
                if name:
                    first["name"], second["name"] = f"{name}_a", f"{name}_b"
                result += [first, second]
            else:
                result.append(layer)
        return result

    for section in ("stem", "blocks", "head"):
        if section in data:
            data[section] = split(data[section])


def _is_plain_5x5(layer: Data) -> bool:
    return (
        layer["kind"] == "conv"
        and layer["kernel"] in (5, [5, 5])
        and layer.get("dilation", 1) in (1, [1, 1])
        and layer.get("padding", 0) in (2, [2, 2], "same")
    )


VARIANTS: dict[str, Variant] = {
    variant.name: variant
    for variant in (
        Variant(
            "naive",
            "naive Inception: no 1×1 reductions or pool projections, so 3×3 and 5×5 convs read the "
            "block input and the pool branch passes its channels through; widths compound block by block",
            _naive,
        ),
        Variant(
            "v1",
            "GoogLeNet v1 as in the paper and its Caffe model: no batch norm, conv bias, LRN after the "
            "first max pool and the 3×3 stem conv, ceil-mode pooling, 5×5/3 average-pool aux heads",
            _v1,
        ),
        Variant(
            "v1-bn",
            "GoogLeNet v1 with batch norm after every conv (conv bias kept), true 5×5 convs, "
            "3×3/2 max pools with padding 1, aux heads after 4a and 4d",
            _v1_bn,
        ),
        Variant(
            "torchvision",
            "torchvision's GoogLeNet layout: batch norm (eps 1e-3) without conv bias, a 3×3 conv in the "
            "5×5 branch (torchvision's deviation, kept for its weights), ceil-mode pools, 2×2/2 pool "
            "before block 5, dropout 0.2",
            _torchvision,
        ),
        Variant(
            "factorized",
            "every 5×5 conv replaced by two stacked 3×3 convs (Inception-v2 style): the same receptive "
            "field, and deeper; fewer weights only where a branch's input and output widths are close",
            _factorized,
        ),
    )
}


def _base_name(name: str) -> str:
    for variant in sorted(VARIANTS, key=len, reverse=True):
        if name.endswith(f"-{variant}"):
            return name[: -len(variant) - 1]
    return name


def emit(spec: ArchSpec, variant: str) -> ArchSpec:
    """The ``variant`` of ``spec`` as a new, validated spec.

    Raises SpecError for a spec with no ``kind: inception`` blocks: there is nothing the
    GoogLeNet variants know how to rewrite.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; variants: {', '.join(VARIANTS)}")
    data = copy.deepcopy(spec.to_dict())
    if not _inceptions(data):
        message = (
            f"variant '{variant}' rewrites GoogLeNet-style specs, built of kind: inception blocks; "
            f"'{spec.name}' has none, so there is nothing to rewrite"
        )
        raise SpecError([Problem(("blocks",), message, spec.source.file if spec.source else None)])
    data.pop("templates", None)  # already expanded into the blocks; the variant rewrites those
    VARIANTS[variant].transform(data)
    data["name"] = f"{_base_name(spec.name)}-{variant}"
    data["description"] = VARIANTS[variant].summary[0].upper() + VARIANTS[variant].summary[1:] + "."
    emitted = ArchSpec.model_validate(data)
    lower(emitted)  # shape-checked too: an emitted spec always builds
    return emitted


def emit_yaml(spec: ArchSpec, variant: str, *, source: str, schema: str | None = None) -> str:
    """The emitted spec as YAML, under a header that says where it came from and how.

    ``schema``, when given, is the JSON Schema reference (a path relative to the written file,
    or a URL) that the first line names for editors: ``# yaml-language-server: $schema=...``.
    """
    emitted = emit(spec, variant)
    # Names, commands and schema references are data: one escaped line each, never a live YAML line.
    header = [f"yaml-language-server: $schema={schema}"] if schema else []
    header += [
        f"{emitted.name}: emitted by `archbuild emit {source} --variant {variant}`.",
        "Regenerate it with that command rather than editing it by hand.",
    ]
    return yaml_header(header) + emitted.to_yaml()
