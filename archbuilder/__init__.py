"""archbuilder: convolutional architectures as data.

YAML spec → validated :class:`ArchSpec` → graph :class:`~archbuilder.ir.IR` with inferred
shapes → ``torch.nn.Module``. Importing archbuilder does not import torch; ``build``, the
model classes and the exporters load it on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from archbuilder.analysis.features import FeatureInfo, FeatureMap, feature_info
from archbuilder.analysis.summary import Summary, summarize
from archbuilder.catalog import ShippedSpec, list_specs
from archbuilder.core.errors import Problem, SpecError, UnsupportedOnThisCPU
from archbuilder.core.extras import MissingExtra
from archbuilder.core.version import __version__ as __version__  # re-exported
from archbuilder.diff import SpecDiff, diff
from archbuilder.export import ExportError, export_model, export_onnx, export_program, export_pt2
from archbuilder.importers import ImportFailure, ImportResult, import_model, import_module
from archbuilder.ir import IR, lower
from archbuilder.render import RenderError, UnsupportedFormat, diagram, render_diagram
from archbuilder.space import SearchSpace, load_space
from archbuilder.spec import ArchSpec, load_spec

if TYPE_CHECKING:
    from archbuilder.builder import (
        ArchModel,
        Checkpoint,
        CheckpointError,
        FeatureModel,
        InferenceModel,
        ModelOutputs,
        TrainingModel,
        build,
        load_checkpoint,
        optimize_for_inference,
        optimize_for_training,
        quantize,
        reset_classifier,
        save_checkpoint,
    )


__all__ = [
    "IR",
    "ArchModel",
    "ArchSpec",
    "Checkpoint",
    "CheckpointError",
    "ExportError",
    "FeatureInfo",
    "FeatureMap",
    "FeatureModel",
    "ImportFailure",
    "ImportResult",
    "InferenceModel",
    "MissingExtra",
    "ModelOutputs",
    "Problem",
    "RenderError",
    "SearchSpace",
    "ShippedSpec",
    "SpecDiff",
    "SpecError",
    "Summary",
    "TrainingModel",
    "UnsupportedFormat",
    "UnsupportedOnThisCPU",
    "build",
    "diagram",
    "diff",
    "export_model",
    "export_onnx",
    "export_program",
    "export_pt2",
    "feature_info",
    "import_model",
    "import_module",
    "list_specs",
    "load_checkpoint",
    "load_space",
    "load_spec",
    "lower",
    "optimize_for_inference",
    "optimize_for_training",
    "quantize",
    "render_diagram",
    "reset_classifier",
    "save_checkpoint",
    "summarize",
]

_TORCH_EXPORTS = {
    "ArchModel",
    "Checkpoint",
    "CheckpointError",
    "FeatureModel",
    "InferenceModel",
    "ModelOutputs",
    "TrainingModel",
    "build",
    "load_checkpoint",
    "optimize_for_inference",
    "optimize_for_training",
    "quantize",
    "reset_classifier",
    "save_checkpoint",
}


def __getattr__(name: str) -> Any:
    if name in _TORCH_EXPORTS:
        from archbuilder import builder

        return getattr(builder, name)
    raise AttributeError(f"module 'archbuilder' has no attribute {name!r}")
