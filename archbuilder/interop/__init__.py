"""Weights from reference implementations (torchvision, timm, pretrainedmodels) into spec-built models.

:func:`load_weights` pairs a reference's state dict with a model built from the matching
spec by a *weight layout*: data (``archbuilder/interop/layouts/*.yaml``, format in
docs/python-api.md) naming the reference and its rename rules. Loading is strict and all or
nothing (:mod:`archbuilder.interop.strict`): :class:`InteropError` lists what is missing,
left over or different, and how to fix it.

| module | job |
|---|---|
| ``rules`` | the rename-rule engine (templates with fields, passes, both directions) |
| ``layout`` | reading layout files, finding the layout for a model |
| ``strict`` | the strict loader and its diagnostics |
| ``torchvision`` | torchvision's ``transform_input`` |
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

from torch import Tensor, nn

from archbuilder.interop.layout import Layout, layout_for, load_layout, shipped_layouts
from archbuilder.interop.strict import InteropError, load_strict
from archbuilder.interop.torchvision import torchvision_input_transform, warn_if_transform_input

__all__ = [
    "GOOGLENET_RULES",
    "INCEPTION_V3_RULES",
    "InteropError",
    "Layout",
    "load_layout",
    "load_torchvision_googlenet",
    "load_torchvision_inception_v3",
    "load_weights",
    "shipped_layouts",
    "torchvision_input_transform",
]

M = TypeVar("M", bound=nn.Module)


def load_weights(
    model: M, source: nn.Module | Mapping[str, Tensor], layout: Layout | str | Path | None = None
) -> M:
    """Load a reference model's weights (the module or its state dict) into ``model``, in place.

    ``layout`` is a :class:`Layout`, a shipped layout's name (``timm-inception-v4``; see
    :func:`shipped_layouts`) or the path of a layout file; unset, it is the shipped layout
    for the spec ``model`` was built from (``model.spec.name``). Returns ``model``. Raises
    :class:`InteropError`, before changing anything, when a tensor is left over on either side
    or differs in shape, or (for a module source) a paired conv or batch norm has other settings.
    A source with ``transform_input=True`` (torchvision) gets a warning: feed the model
    :func:`torchvision_input_transform` ``(x)``.
    """
    if not isinstance(source, nn.Module | Mapping):
        chosen = _resolve(layout, model, ())
        return load_strict(model, source, chosen)  # raises TypeError naming the reference
    names = source.state_dict().keys() if isinstance(source, nn.Module) else source.keys()
    chosen = _resolve(layout, model, names)
    load_strict(model, source, chosen)
    warn_if_transform_input(source, chosen.reference)
    return model


def _resolve(layout: Layout | str | Path | None, model: nn.Module, names) -> Layout:
    if isinstance(layout, Layout):
        return layout
    if layout is not None:
        return load_layout(layout)
    spec = getattr(model, "spec", None)
    if spec is None:
        raise ValueError("the model has no .spec (not built by archbuilder.build): pass layout=")
    return layout_for(spec.name, names)


def load_torchvision_googlenet(model: M, source: nn.Module | Mapping[str, Tensor]) -> M:
    """Load a torchvision ``GoogLeNet`` (the module or its state dict) into ``model``, in place:
    :func:`load_weights` with the ``torchvision-googlenet`` layout.

    ``model`` is built from ``specs/googlenet-torchvision.yaml``, with ``aux=False`` when the
    source has no aux heads (``aux_logits=False``). A state dict does not record
    ``transform_input``: torchvision's ImageNet weights set it.
    """
    return load_weights(model, source, "torchvision-googlenet")


def load_torchvision_inception_v3(model: M, source: nn.Module | Mapping[str, Tensor]) -> M:
    """Load a torchvision ``Inception3`` (``torchvision.models.inception_v3``; the module or its
    state dict) into ``model``, built from ``specs/inception-v3.yaml``, in place:
    :func:`load_weights` with the ``torchvision-inception-v3`` layout (``aux=False`` for a
    source without its aux head; torchvision's ImageNet weights set ``transform_input``)."""
    return load_weights(model, source, "torchvision-inception-v3")


def __getattr__(name: str) -> tuple[tuple[str, str], ...]:
    # The rules, now data in the layout files, as the tuples this module used to define.
    layouts = {"GOOGLENET_RULES": "torchvision-googlenet", "INCEPTION_V3_RULES": "torchvision-inception-v3"}
    if name in layouts:
        return tuple(tuple(rule) for rule in load_layout(layouts[name]).passes[0].rules)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
