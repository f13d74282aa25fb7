"""``build``: spec (or its file) → IR → ``ArchModel``."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, overload

from torch import nn

from archbuilder.analysis.features import feature_info
from archbuilder.analysis.limits import (
    DEFAULT_MAX_ACTIVATION_BYTES,
    DEFAULT_MAX_PARAM_BYTES,
    check_activations,
    check_limit,
)
from archbuilder.builder.features import FeatureModel
from archbuilder.builder.init import made_initialized
from archbuilder.builder.modules import ArchModel, ParallelBlock
from archbuilder.builder.ops import activation_function, module_for
from archbuilder.core.errors import Problem, SpecError
from archbuilder.ir import IR, Parallel, Sequence, load_spec, lower
from archbuilder.ir.graph import Item
from archbuilder.spec import ArchSpec

__all__ = ["DEFAULT_MAX_PARAM_BYTES", "build", "build_from_ir"]


@overload
def build(
    spec: ArchSpec | str | Path,
    *,
    aux: bool = ...,
    num_classes: int | None = ...,
    max_param_bytes: int = ...,
    max_activation_bytes: int = ...,
    features_only: Literal[False] = ...,
) -> ArchModel: ...


@overload
def build(
    spec: ArchSpec | str | Path,
    *,
    max_param_bytes: int = ...,
    max_activation_bytes: int = ...,
    features_only: Literal[True],
    out_names: Iterable[str] | None = ...,
    out_indices: Iterable[int] | None = ...,
) -> FeatureModel: ...


def build(
    spec: ArchSpec | str | Path,
    *,
    aux: bool = True,
    num_classes: int | None = None,
    max_param_bytes: int = DEFAULT_MAX_PARAM_BYTES,
    max_activation_bytes: int = DEFAULT_MAX_ACTIVATION_BYTES,
    features_only: bool = False,
    out_names: Iterable[str] | None = None,
    out_indices: Iterable[int] | None = None,
) -> ArchModel | FeatureModel:
    """A freshly initialized model for ``spec`` (a loaded spec, a file path or YAML text).

    ``aux=False`` leaves out the aux heads; ``num_classes`` replaces the spec's. The build is
    refused (SpecError) when the float32 parameters would exceed ``max_param_bytes``, or the
    activations of a one-sample forward pass ``max_activation_bytes`` (both finite and above 0).
    ``features_only=True`` builds a :class:`FeatureModel` instead: the stem and blocks up to
    the last feature map chosen by ``out_names`` or ``out_indices`` (see
    :func:`archbuilder.analysis.features.feature_info`), without head or aux heads.
    """
    max_param_bytes = check_limit("max_param_bytes", max_param_bytes)
    if not isinstance(spec, ArchSpec):
        spec = load_spec(spec)
    if num_classes is not None:
        spec = spec.with_num_classes(num_classes)
    ir = lower(spec)
    check_activations(
        ir, batch=1, max_bytes=max_activation_bytes, file=spec.source.file if spec.source else None
    )
    if features_only:
        return _build_features(spec, ir, out_names, out_indices, max_param_bytes)
    if out_names is not None or out_indices is not None:
        raise ValueError("out_names and out_indices choose the outputs of a features_only=True build")
    params, _ = ir.total(aux=aux)
    _check_size(spec, params, max_param_bytes)
    model = build_from_ir(ir, aux=aux)
    model.spec = spec
    return model


def _check_size(spec: ArchSpec, params: int, max_param_bytes: int) -> None:
    if params * 4 > max_param_bytes:
        message = (
            f"the model has {params:,} parameters ({_bytes(params * 4)} as float32), over the "
            f"limit of {_bytes(max_param_bytes)}; raise max_param_bytes to build it anyway"
        )
        raise SpecError([Problem((), message, spec.source.file if spec.source else None)])


def _build_features(
    spec: ArchSpec,
    ir: IR,
    out_names: Iterable[str] | None,
    out_indices: Iterable[int] | None,
    max_param_bytes: int,
) -> FeatureModel:
    info = feature_info(ir, out_names=out_names, out_indices=out_indices)
    if not info:
        raise ValueError(f"{spec.name}: no stem or blocks entry outputs a feature map")
    last = max(index for index, item in enumerate(ir.body.items) if _name(item) in set(info.names()))
    items = ir.body.items[: last + 1]
    kept = {_name(item) for item in items}
    _check_size(spec, sum(op.params for op in ir.ops() if op.item in kept), max_param_bytes)
    model = made_initialized(lambda: FeatureModel([_item(ir, item) for item in items], info))
    model.spec = spec
    return model


def _name(item: Item) -> str:
    return item.name if isinstance(item, Parallel) else item


def build_from_ir(ir: IR, *, aux: bool = True) -> ArchModel:
    """Assemble and initialize the modules of a lowered spec."""

    def make() -> ArchModel:
        body = [_item(ir, item) for item in ir.body.items]
        heads = [(h.name, h.tap, h.loss_weight, _sequence(ir, h.layers)) for h in ir.aux_heads] if aux else []
        return ArchModel(body, heads)

    return made_initialized(make)


def _item(ir: IR, item: Item) -> tuple[str, nn.Module]:
    if isinstance(item, Parallel):
        branches = [(name, _sequence(ir, sequence)) for name, sequence in item.branches]
        merge = ir.op(item.merge)
        function = merge.attrs.get("activation")
        post = activation_function(function) if function else None
        shuffle = merge.attrs.get("shuffle")
        return item.name, ParallelBlock(branches, merge.kind, merge.attrs.get("scales"), post, shuffle)
    op = ir.op(item)
    return op.name, module_for(op)


def _sequence(ir: IR, sequence: Sequence) -> nn.Module:
    if not sequence.items:
        return nn.Identity()
    return nn.Sequential(OrderedDict(_item(ir, item) for item in sequence.items))


def _bytes(count: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} bytes"
