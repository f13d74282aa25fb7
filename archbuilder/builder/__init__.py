"""The torch builder: the only part of archbuilder (with the exporters) that imports torch."""

# ruff: noqa: E402 (torch is checked before the modules that import it are)
from archbuilder.core.extras import require

# Where torch is not installed (the spec-only install), one line naming the extra, not a traceback.
require("torch", needed_for="building models (archbuilder.builder)")

from archbuilder.builder.build import DEFAULT_MAX_PARAM_BYTES, build, build_from_ir
from archbuilder.builder.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from archbuilder.builder.features import FeatureModel
from archbuilder.builder.finetune import classifier_layers, reset_classifier
from archbuilder.builder.modules import ArchModel, ModelOutputs, ParallelBlock
from archbuilder.builder.optimize import InferenceModel, optimize_for_inference
from archbuilder.builder.quantize import QuantizedModel, calibration_batches, quantize
from archbuilder.builder.training import TrainingModel, optimize_for_training

__all__ = [
    "DEFAULT_MAX_PARAM_BYTES",
    "ArchModel",
    "Checkpoint",
    "CheckpointError",
    "FeatureModel",
    "InferenceModel",
    "ModelOutputs",
    "ParallelBlock",
    "QuantizedModel",
    "TrainingModel",
    "build",
    "build_from_ir",
    "calibration_batches",
    "classifier_layers",
    "load_checkpoint",
    "optimize_for_inference",
    "optimize_for_training",
    "quantize",
    "reset_classifier",
    "save_checkpoint",
]
