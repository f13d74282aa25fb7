"""The spec language: pydantic models of a network description, and loading from YAML."""

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
from archbuilder.spec.load import as_spec, load_spec
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
    "as_spec",
    "load_spec",
]
