"""Fine-tuning: new classifier layers for another class count, every other weight kept."""

from __future__ import annotations

from archbuilder.builder.classifier import classifier_layers
from archbuilder.builder.modules import ArchModel

__all__ = ["classifier_layers", "reset_classifier"]


def reset_classifier(model: ArchModel, num_classes: int) -> ArchModel:
    """Replace the layers of ``model`` that depend on the class count (see
    :func:`classifier_layers`) by freshly initialized ones for ``num_classes``, in place.

    Every other parameter and buffer is kept. The new layers are initialized as ``build``
    does, on the device and dtype of the model, in its training mode; ``model.spec`` gets the
    new ``num_classes``. Returns ``model``. Make the optimizer afterwards.
    """
    if not isinstance(model, ArchModel):
        raise TypeError("reset_classifier needs a model made by archbuilder.build (an ArchModel with .spec)")
    model.reset_classifier(num_classes)
    return model
