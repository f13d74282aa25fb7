"""The layers that depend on the class count, found from the spec, and their replacement."""

from __future__ import annotations

from torch import nn

from archbuilder.builder.init import made_initialized
from archbuilder.builder.ops import module_for
from archbuilder.ir import lower
from archbuilder.spec import ArchSpec

__all__ = ["classifier_layers", "replace_classifier"]

_NO_MODULE = frozenset({"input", "concat", "add", "mul"})


def classifier_layers(spec: ArchSpec) -> list[str]:
    """Ids of the layers whose settings depend on ``num_classes``: the spec's ``out: num_classes``
    layers and any layer sized by them, in the main head and the aux heads."""
    if spec.num_classes is None:
        raise ValueError(
            "the spec sets no num_classes, so no layer is known to be the classifier; "
            "write `num_classes: N` and `out: num_classes` on the classifier layers"
        )
    # Lower at two class counts: exactly the layers that depend on num_classes differ.
    first = lower(spec.with_num_classes(spec.num_classes))
    second = lower(spec.with_num_classes(spec.num_classes + 1))
    return [op.id for op in first.ops() if op.kind not in _NO_MODULE and op.attrs != second.op(op.id).attrs]


def replace_classifier(model: nn.Module, spec: ArchSpec, num_classes: int) -> ArchSpec:
    """Put freshly initialized classifier layers for ``num_classes`` into ``model`` (built from
    ``spec``), in place, on its device and dtype and in its modes; returns the new spec."""
    new_spec = spec.with_num_classes(num_classes)
    ir = lower(new_spec)
    reference = next(iter(model.parameters()), None)
    present = dict(model.named_children())
    for op_id in classifier_layers(spec):
        op = ir.op(op_id)
        if op.item not in present:  # an aux head the model was built without
            continue
        module = made_initialized(
            lambda op=op: module_for(op),
            device=reference.device if reference is not None else "cpu",
            dtype=reference.dtype if reference is not None else None,
        )
        parent_name, _, child = op_id.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        module.train(parent.training)
        setattr(parent, child, module)
    return new_spec
