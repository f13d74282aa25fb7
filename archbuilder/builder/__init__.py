"""The torch builder: the only part of archbuilder (with the exporters) that imports torch."""

from archbuilder.builder.build import DEFAULT_MAX_PARAM_BYTES, build, build_from_ir
from archbuilder.builder.modules import ArchModel, ModelOutputs, ParallelBlock

__all__ = ["DEFAULT_MAX_PARAM_BYTES", "ArchModel", "ModelOutputs", "ParallelBlock", "build", "build_from_ir"]
