"""``build``: spec (or its file) → IR → ``ArchModel``."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from torch import nn

from archbuilder.builder.init import init_weights
from archbuilder.builder.modules import ArchModel, ParallelBlock
from archbuilder.builder.ops import module_for
from archbuilder.errors import Problem, SpecError
from archbuilder.ir import IR, Parallel, Sequence, lower
from archbuilder.ir.graph import Item
from archbuilder.limits import DEFAULT_MAX_PARAM_BYTES
from archbuilder.spec import ArchSpec, load_spec

__all__ = ["DEFAULT_MAX_PARAM_BYTES", "build", "build_from_ir"]


def build(
    spec: ArchSpec | str | Path,
    *,
    aux: bool = True,
    num_classes: int | None = None,
    max_param_bytes: int = DEFAULT_MAX_PARAM_BYTES,
) -> ArchModel:
    """A freshly initialized model for ``spec`` (a loaded spec, a file path or YAML text).

    ``aux=False`` leaves out the aux heads; ``num_classes`` replaces the spec's. The build is
    refused (SpecError) when the float32 parameters would exceed ``max_param_bytes``.
    """
    if not isinstance(spec, ArchSpec):
        spec = load_spec(spec)
    if num_classes is not None:
        spec = _with_num_classes(spec, num_classes)
    ir = lower(spec)
    params, _ = ir.total(aux=aux)
    if params * 4 > max_param_bytes:
        message = (
            f"the model has {params:,} parameters ({_bytes(params * 4)} as float32), over the "
            f"limit of {_bytes(max_param_bytes)}; raise max_param_bytes to build it anyway"
        )
        raise SpecError([Problem((), message, spec.source.file if spec.source else None)])
    model = build_from_ir(ir, aux=aux)
    model.spec = spec
    return model


def build_from_ir(ir: IR, *, aux: bool = True) -> ArchModel:
    """Assemble and initialize the modules of a lowered spec."""
    body = [_item(ir, item) for item in ir.body.items]
    heads = [(h.name, h.tap, h.loss_weight, _sequence(ir, h.layers)) for h in ir.aux_heads] if aux else []
    model = ArchModel(body, heads)
    init_weights(model)
    return model


def _item(ir: IR, item: Item) -> tuple[str, nn.Module]:
    if isinstance(item, Parallel):
        branches = [(name, _sequence(ir, sequence)) for name, sequence in item.branches]
        return item.name, ParallelBlock(branches, ir.op(item.merge).kind)
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


def _with_num_classes(spec: ArchSpec, num_classes: int) -> ArchSpec:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, not {num_classes!r}")
    updated = ArchSpec.model_validate({**spec.to_dict(), "num_classes": num_classes})
    updated._source = spec.source
    return updated
