"""Exporting built models: ONNX (``.onnx``) and torch.export programs (``.pt2``).

The exported graph is the model in eval mode (the aux heads never run there), with a
dynamic batch dimension: one input ``input`` of shape (batch, C, H, W) and one output
``logits`` of shape (batch, num_classes). Files are written atomically.

torch is imported on first use, so this package (and its ``ExportError``) is cheap to import.

| module | job |
|---|---|
| ``prepare`` | the errors, the packages a format needs, the model and its example input |
| ``to_onnx`` | :func:`export_onnx` |
| ``to_program`` | :func:`export_program` and :func:`export_pt2` |
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from archbuilder.analysis.limits import DEFAULT_MAX_ACTIVATION_BYTES
from archbuilder.core.formats import FORMATS_BY_USE, extensions, format_of
from archbuilder.export.prepare import ExportError, NoiseCalibrationWarning, require
from archbuilder.export.to_onnx import DEFAULT_OPSET, ONNX_PACKAGES, OPSETS, export_onnx
from archbuilder.export.to_program import export_program, export_pt2
from archbuilder.spec import ArchSpec

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEFAULT_OPSET",
    "FORMATS",
    "OPSETS",
    "ExportError",
    "NoiseCalibrationWarning",
    "check_packages",
    "export_model",
    "export_onnx",
    "export_program",
    "export_pt2",
    "format_for",
]

FORMATS = FORMATS_BY_USE["export"]


def format_for(path: str | Path) -> str:
    """``"onnx"`` or ``"pt2"``, from the file's extension (any case); ValueError for others."""
    found = format_of(path, "export")
    if found is None:
        suffix, known = Path(path).suffix.lower(), ", ".join(extensions("export"))
        raise ValueError(f"{path}: unsupported extension {suffix or '(none)'!r}; use {known}")
    return found


def check_packages(format: str, dtype: str = "fp32") -> None:
    """ExportError (also a :class:`~archbuilder.core.extras.MissingExtra`) naming what an export to
    ``format`` ("onnx", "pt2") in ``dtype`` needs and is not installed: onnx and onnxscript for
    ONNX, torchao for int8. The command line asks first, before the spec is loaded and built."""
    onnx, int8 = format == "onnx", dtype == "int8"
    packages = ("torch", *(ONNX_PACKAGES if onnx else ()), *(("torchao",) if int8 else ()))
    what = " ".join(word for word, used in (("int8", int8), ("ONNX", onnx)) if used)
    require(*packages, needed_for=f"{what or '.pt2'} export")


def export_model(
    model_or_spec: torch.nn.Module | ArchSpec | str | Path,
    path: str | Path,
    *,
    num_classes: int | None = None,
    opset: int = DEFAULT_OPSET,
    max_activation_bytes: int = DEFAULT_MAX_ACTIVATION_BYTES,
    dtype: str = "fp32",
    calibration: Sequence[torch.Tensor] | None = None,
    optimize: bool = True,
) -> Path:
    """Write the eval-mode model to ``path`` as ONNX (``.onnx``) or a torch.export program (``.pt2``).

    ``model_or_spec`` is a built model (exported as it is, weights included) or a spec, a
    spec file or YAML text (built fresh, without aux heads; ``num_classes`` replaces the
    spec's). ``opset`` applies to ONNX only. A model whose trace (a batch of 2) would need
    more than ``max_activation_bytes`` of activations is refused with a SpecError first.
    ``dtype`` "bf16" (``.pt2`` only) or "int8" (QDQ, calibrated on ``calibration`` batches;
    without them on uniform noise, with a :class:`NoiseCalibrationWarning`) exports the
    reduced-precision model (:mod:`archbuilder.builder.precision_export`). ``optimize`` (ONNX
    only): see :func:`export_onnx`.
    """
    limit = max_activation_bytes
    if format_for(path) == "onnx":
        return export_onnx(
            model_or_spec,
            path,
            num_classes=num_classes,
            opset=opset,
            max_activation_bytes=limit,
            dtype=dtype,
            calibration=calibration,
            optimize=optimize,
        )
    return export_pt2(
        model_or_spec,
        path,
        num_classes=num_classes,
        max_activation_bytes=limit,
        dtype=dtype,
        calibration=calibration,
    )
