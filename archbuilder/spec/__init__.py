"""The spec language: pydantic models of a network description, read and validated from YAML
(:mod:`archbuilder.spec.load`; ``archbuilder.load_spec``, which also checks the shapes, is
:mod:`archbuilder.ir.load`'s).

Each name loads its module on first use (PEP 562): a submodule such as ``spec.budget`` can be
imported without building the models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archbuilder.core.lazy import homes_by_name, lazy_attributes

if TYPE_CHECKING:
    from archbuilder.spec.blocks import Branch, Branches, Inception, InceptionPool, Layer
    from archbuilder.spec.layers import (
        Activation,
        AdaptiveAvgPool,
        AvgPool,
        BatchNorm,
        ChannelShuffle,
        Conv,
        ConvOptions,
        Dropout,
        DropPath,
        Flatten,
        GlobalAvgPool,
        LayerNorm,
        LayerScale,
        Linear,
        LocalResponseNorm,
        MaxPool,
    )
    from archbuilder.spec.model import ArchSpec, AuxHead, Defaults, InputShape

__all__ = [
    "Activation",
    "AdaptiveAvgPool",
    "ArchSpec",
    "AuxHead",
    "AvgPool",
    "BatchNorm",
    "Branch",
    "Branches",
    "ChannelShuffle",
    "Conv",
    "ConvOptions",
    "Defaults",
    "DropPath",
    "Dropout",
    "Flatten",
    "GlobalAvgPool",
    "Inception",
    "InceptionPool",
    "InputShape",
    "Layer",
    "LayerNorm",
    "LayerScale",
    "Linear",
    "LocalResponseNorm",
    "MaxPool",
]

# Where each name lives; ``archbuilder.spec.X`` imports that module the first time it is asked for.
_HOMES = {
    "archbuilder.spec.blocks": ("Branch", "Branches", "Inception", "InceptionPool", "Layer"),
    "archbuilder.spec.layers": (
        "Activation",
        "AdaptiveAvgPool",
        "AvgPool",
        "BatchNorm",
        "ChannelShuffle",
        "Conv",
        "ConvOptions",
        "Dropout",
        "DropPath",
        "Flatten",
        "GlobalAvgPool",
        "LayerNorm",
        "LayerScale",
        "Linear",
        "LocalResponseNorm",
        "MaxPool",
    ),
    "archbuilder.spec.model": ("ArchSpec", "AuxHead", "Defaults", "InputShape"),
}
_HOME_OF = homes_by_name(_HOMES)


__getattr__, __dir__ = lazy_attributes(__name__, _HOME_OF, globals())
