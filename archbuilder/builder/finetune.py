"""Fine-tuning: new classifier layers for another class count, every other weight kept."""

from __future__ import annotations

from archbuilder.builder.init import made_initialized
from archbuilder.builder.modules import ArchModel
from archbuilder.builder.ops import module_for
from archbuilder.ir import lower
from archbuilder.spec import ArchSpec

__all__ = ["classifier_layers", "reset_classifier"]

_NO_MODULE = frozenset({"input", "concat", "add"})


def classifier_layers(spec: ArchSpec) -> list[str]:
    """Ids of the layers whose settings depend on ``num_classes``: the spec's ``out: num_classes``
    layers and any layer sized by them, in the main head and the aux heads."""
    from archbuilder.builder.build import _with_num_classes

    if spec.num_classes is None:
        raise ValueError(
            "the spec sets no num_classes, so no layer is known to be the classifier; "
            "write `num_classes: N` and `out: num_classes` on the classifier layers"
        )
    # Lower at two class counts: exactly the layers that depend on num_classes differ.
    first = lower(_with_num_classes(spec, spec.num_classes))
    second = lower(_with_num_classes(spec, spec.num_classes + 1))
    return [op.id for op in first.ops() if op.kind not in _NO_MODULE and op.attrs != second.op(op.id).attrs]


def reset_classifier(model: ArchModel, num_classes: int) -> ArchModel:
    """Replace the layers of ``model`` that depend on the class count (see
    :func:`classifier_layers`) by freshly initialized ones for ``num_classes``, in place.

    Every other parameter and buffer is kept. The new layers are initialized as ``build``
    does, on the device and dtype of the model, in its training mode; ``model.spec`` gets the
    new ``num_classes``. Returns ``model``. Make the optimizer afterwards.
    """
    from archbuilder.builder.build import _with_num_classes

    spec = getattr(model, "spec", None)
    if not isinstance(model, ArchModel) or not isinstance(spec, ArchSpec):
        raise TypeError("reset_classifier needs a model made by archbuilder.build (an ArchModel with .spec)")
    new_spec = _with_num_classes(spec, num_classes)
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
    model.spec = new_spec
    return model
