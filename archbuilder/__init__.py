"""archbuilder: convolutional architectures as data.

YAML spec → validated :class:`ArchSpec` → graph :class:`~archbuilder.ir.IR` with inferred
shapes → ``torch.nn.Module``. Importing archbuilder is cheap: each name below loads its module
on first use (PEP 562), so ``archbuild --version`` reads no spec model, and nothing imports
torch until ``build``, the model classes or the exporters are used.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

from archbuilder.core.lazy import homes_by_name, lazy_attributes
from archbuilder.core.version import __version__ as __version__  # re-exported

if TYPE_CHECKING:
    from archbuilder.analysis.features import FeatureInfo, FeatureMap, feature_info
    from archbuilder.analysis.summary import Summary, summarize
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
    from archbuilder.builder.profile import Profile, profile
    from archbuilder.catalog import ShippedSpec, list_specs
    from archbuilder.core.errors import Problem, SpecError, UnsupportedOnThisCPU
    from archbuilder.core.extras import MissingExtra
    from archbuilder.diff import SpecDiff, diff
    from archbuilder.export import ExportError, export_model, export_onnx, export_program, export_pt2
    from archbuilder.importers import ImportFailure, ImportResult, import_model, import_module
    from archbuilder.ir import IR, load_spec, lower
    from archbuilder.render import RenderError, UnsupportedFormat, diagram, render_diagram
    from archbuilder.space import SearchSpace, load_space
    from archbuilder.spec import ArchSpec

# Where each public name lives; ``archbuilder.X`` imports that module the first time it is asked for.
_HOMES = {
    "archbuilder.analysis.features": ("FeatureInfo", "FeatureMap", "feature_info"),
    "archbuilder.analysis.summary": ("Summary", "summarize"),
    "archbuilder.builder": (
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
    ),
    "archbuilder.builder.profile": ("Profile", "profile"),
    "archbuilder.catalog": ("ShippedSpec", "list_specs"),
    "archbuilder.core.errors": ("Problem", "SpecError", "UnsupportedOnThisCPU"),
    "archbuilder.core.extras": ("MissingExtra",),
    "archbuilder.diff": ("SpecDiff", "diff"),
    "archbuilder.export": ("ExportError", "export_model", "export_onnx", "export_program", "export_pt2"),
    "archbuilder.importers": ("ImportFailure", "ImportResult", "import_model", "import_module"),
    "archbuilder.ir": ("IR", "load_spec", "lower"),
    "archbuilder.render": ("RenderError", "UnsupportedFormat", "diagram", "render_diagram"),
    "archbuilder.space": ("SearchSpace", "load_space"),
    "archbuilder.spec": ("ArchSpec",),
}
_HOME_OF = homes_by_name(_HOMES)

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
    "Profile",
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
    "profile",
    "quantize",
    "render_diagram",
    "reset_classifier",
    "save_checkpoint",
    "summarize",
]


__getattr__, __dir__ = lazy_attributes(__name__, _HOME_OF, globals())


class _Facade(types.ModuleType):
    """The package, keeping ``archbuilder.diff`` the function: importing the subpackage
    ``archbuilder.diff`` would otherwise rebind the package's attribute to that module."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _HOME_OF and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Facade
