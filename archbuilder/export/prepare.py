"""What every exporter shares: its errors, the packages it needs, and the model to trace
(in eval mode, in the dtype asked for) with an example input of its spec's shape."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from archbuilder.core.extras import MissingExtra, check
from archbuilder.ir import as_spec
from archbuilder.spec import ArchSpec

if TYPE_CHECKING:
    import torch

__all__ = [
    "EXAMPLE_BATCH",
    "ExportError",
    "NoiseCalibrationWarning",
    "batch_dim",
    "eval_mode",
    "prepared",
    "require",
]

EXAMPLE_BATCH = 2  # torch.export specializes a dimension traced at size 1; 2 stays symbolic
NOISE_CALIBRATION = (
    "int8 export without calibration: activation ranges are calibrated on 64 uniform-noise images, "
    "not on real inputs; pass batches of real images as calibration=[...]"
)


class ExportError(Exception):
    """An export that cannot be done here: a missing package or a model too large for the format."""


class NoiseCalibrationWarning(UserWarning):
    """An int8 export calibrated on uniform noise, for want of calibration images."""


class MissingPackage(MissingExtra, ExportError):
    """A package the format needs is not installed: a MissingExtra that is also an ExportError."""


def require(*packages: str, needed_for: str) -> None:
    """MissingPackage naming the packages not installed, before any work."""
    try:
        check(*packages, needed_for=needed_for)
    except MissingExtra as exc:
        raise MissingPackage(exc.modules, needed_for=exc.needed_for, reason=exc.reason) from exc


def prepared(
    model_or_spec,
    num_classes: int | None,
    max_activation_bytes: int,
    dtype: str = "fp32",
    calibration: Sequence[torch.Tensor] | None = None,
) -> tuple[torch.nn.Module, torch.Tensor]:
    """The model to export (in ``dtype``) and a float example input for its spec's input shape."""
    if dtype == "int8":
        require("torchao", needed_for="int8 export")  # before the model is built
    import torch

    if isinstance(model_or_spec, torch.nn.Module):
        if num_classes is not None:
            raise ValueError("num_classes applies to a spec; a built model keeps its own classifier")
        model = model_or_spec
        spec = getattr(model, "spec", None)
        if not isinstance(spec, ArchSpec):
            raise ValueError(
                "the model has no .spec to take its input shape from; build it with archbuilder.build"
            )
    else:
        from archbuilder.builder import build

        spec = as_spec(model_or_spec)
        model = build(spec, aux=False, num_classes=num_classes, max_activation_bytes=max_activation_bytes)
    from archbuilder.analysis.limits import check_activations
    from archbuilder.ir import lower

    # The trace runs the example batch: refuse it before torch asks for the memory.
    check_activations(lower(spec), batch=EXAMPLE_BATCH, max_bytes=max_activation_bytes)
    if dtype == "int8" and calibration is None:
        warnings.warn(NOISE_CALIBRATION, NoiseCalibrationWarning, stacklevel=_caller_level())
    if dtype != "fp32":
        from archbuilder.builder.precision_export import for_export

        model = for_export(model, dtype, calibration)  # takes float32 input
    shape = (EXAMPLE_BATCH, spec.input.channels, spec.input.height, spec.input.width)
    first = next(model.parameters(), None)
    if dtype != "fp32" and first is not None:
        return model, torch.randn(shape, device=first.device)  # the example lives where the weights do
    if first is None:
        return model, torch.randn(shape)
    return model, torch.randn(shape, dtype=first.dtype, device=first.device)


def _caller_level() -> int:
    """The ``stacklevel`` that points a warning raised inside the exporters at the first frame
    outside this package: the user's call of an exporter."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and str(frame.f_globals.get("__name__", "")).startswith(__package__ or ""):
        level, frame = level + 1, frame.f_back
    return level


def batch_dim():
    """torch.export's dynamic batch dimension."""
    import torch

    return torch.export.Dim("batch", min=1)


@contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """The model in eval mode for the block, then back in the mode it was in."""
    training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(training)
