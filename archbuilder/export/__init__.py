"""Exporting built models: ONNX (``.onnx``) and torch.export programs (``.pt2``).

The exported graph is the model in eval mode (the aux heads never run there), with a
dynamic batch dimension: one input ``input`` of shape (batch, C, H, W) and one output
``logits`` of shape (batch, num_classes). Files are written atomically.

torch is imported on first use, so this module (and its ``ExportError``) is cheap to import.
"""

from __future__ import annotations

import io
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from archbuilder.analysis.limits import DEFAULT_MAX_ACTIVATION_BYTES
from archbuilder.core.extras import MissingExtra, check
from archbuilder.core.files import write_atomic
from archbuilder.core.formats import FORMATS_BY_USE, extensions, format_of
from archbuilder.spec import ArchSpec, as_spec

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
DEFAULT_OPSET = 20  # torch.onnx's default: run by onnxruntime 1.17 (2024) and later
OPSETS = range(18, 24)  # what torch.onnx's exporter writes
ONNX_PACKAGES = ("onnx", "onnxscript")
ONNX_SIZE_LIMIT = 2**31  # protobuf: one .onnx file holds at most 2 GiB
EXAMPLE_BATCH = 2  # torch.export specializes a dimension traced at size 1; 2 stays symbolic
INPUT_NAME, OUTPUT_NAME = "input", "logits"


class ExportError(Exception):
    """An export that cannot be done here: a missing package or a model too large for the format."""


class NoiseCalibrationWarning(UserWarning):
    """An int8 export calibrated on uniform noise, for want of calibration images."""


class _MissingPackage(MissingExtra, ExportError):
    """A package the format needs is not installed: a MissingExtra that is also an ExportError."""


NOISE_CALIBRATION = (
    "int8 export without calibration: activation ranges are calibrated on 64 uniform-noise images, "
    "not on real inputs; pass batches of real images as calibration=[...]"
)


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
    packages = (ONNX_PACKAGES if onnx else ()) + (("torchao",) if int8 else ())
    what = " ".join(word for word, used in (("int8", int8), ("ONNX", onnx)) if used)
    _require(*packages, needed_for=f"{what} export")


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


def export_onnx(
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
    """Write the eval-mode model as an ONNX file with a dynamic batch dimension.

    ``optimize`` runs onnxscript's optimizer (torch.onnx's default), which folds each batch
    norm into its conv and drops all-zero biases: the file for deployment. ``optimize=False``
    writes the graph as traced, every parameter an initializer and every batch norm kept, so
    that ``archbuilder.import_model`` gives back the same spec, parameters included. Needs the
    ``onnx`` and ``onnxscript`` packages (``pip install 'archbuilder[onnx]'``); raises
    ExportError (also a :class:`~archbuilder.core.extras.MissingExtra`) naming what is missing.
    """
    if opset not in OPSETS:
        raise ValueError(f"opset must be {OPSETS.start} to {OPSETS.stop - 1}, not {opset!r}")
    _require(*ONNX_PACKAGES, needed_for="ONNX export")  # torch.onnx's exporter raises its own ImportError
    if dtype == "bf16":
        from archbuilder.builder.precision_export import BF16_ONNX_REASON

        raise ExportError(BF16_ONNX_REASON)
    import torch

    model, example = _prepared(model_or_spec, num_classes, max_activation_bytes, dtype, calibration)
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    if size >= ONNX_SIZE_LIMIT:
        message = f"the model's weights ({size / 2**30:.1f} GiB) do not fit in one .onnx file (2 GiB at most)"
        raise ExportError(f"{message}; export to .pt2 instead")
    with _eval(model):
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            dynamic_shapes=({0: _batch_dim()},),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=opset,
            external_data=False,
            optimize=optimize,
            verbose=False,
        )
    return write_atomic(path, _without_stack_traces(program.model_proto).SerializeToString())


def export_program(
    model_or_spec: torch.nn.Module | ArchSpec | str | Path,
    *,
    num_classes: int | None = None,
    max_activation_bytes: int = DEFAULT_MAX_ACTIVATION_BYTES,
    dtype: str = "fp32",
    calibration: Sequence[torch.Tensor] | None = None,
) -> torch.export.ExportedProgram:
    """The eval-mode model as a ``torch.export.ExportedProgram`` with a dynamic batch dimension."""
    import torch

    model, example = _prepared(model_or_spec, num_classes, max_activation_bytes, dtype, calibration)
    with _eval(model):
        return torch.export.export(model, (example,), dynamic_shapes=({0: _batch_dim()},))


def export_pt2(
    model_or_spec: torch.nn.Module | ArchSpec | str | Path,
    path: str | Path,
    *,
    num_classes: int | None = None,
    max_activation_bytes: int = DEFAULT_MAX_ACTIVATION_BYTES,
    dtype: str = "fp32",
    calibration: Sequence[torch.Tensor] | None = None,
) -> Path:
    """Write :func:`export_program`'s program with ``torch.export.save``; ``torch.export.load`` reads it."""
    import torch

    buffer = io.BytesIO()
    program = export_program(
        model_or_spec,
        num_classes=num_classes,
        max_activation_bytes=max_activation_bytes,
        dtype=dtype,
        calibration=calibration,
    )
    _drop_stack_traces(program)
    torch.export.save(program, buffer)
    return write_atomic(path, buffer.getvalue())


# The exporters record each op's Python stack trace, whose file names are this machine's
# folders (site-packages, the checkout): a shared model file must not carry them.
_ONNX_STACK_TRACE = "pkg.torch.onnx.stack_trace"


def _without_stack_traces(model):  # an onnx.ModelProto, changed in place
    def strip(nodes) -> None:
        for node in nodes:
            kept = [prop for prop in node.metadata_props if prop.key != _ONNX_STACK_TRACE]
            del node.metadata_props[:]
            node.metadata_props.extend(kept)
            for attribute in node.attribute:
                for graph in [*([attribute.g] if attribute.HasField("g") else []), *attribute.graphs]:
                    strip(graph.node)

    strip(model.graph.node)
    for function in model.functions:
        strip(function.node)
    return model


def _drop_stack_traces(program: torch.export.ExportedProgram) -> None:
    import torch

    for module in program.graph_module.modules():
        if isinstance(module, torch.fx.GraphModule):
            for node in module.graph.nodes:
                node.meta.pop("stack_trace", None)


def _require(*packages: str, needed_for: str) -> None:
    """ExportError (a MissingExtra too) naming the packages not installed, before any work."""
    try:
        check(*packages, needed_for=needed_for)
    except MissingExtra as exc:
        raise _MissingPackage(exc.modules, needed_for=exc.needed_for, reason=exc.reason) from exc


def _prepared(
    model_or_spec, num_classes: int | None, max_activation_bytes: int, dtype: str = "fp32", calibration=None
) -> tuple[torch.nn.Module, torch.Tensor]:
    """The model to export (in ``dtype``) and a float example input for its spec's input shape."""
    if dtype == "int8":
        _require("torchao", needed_for="int8 export")  # before the model is built
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
    """The ``stacklevel`` that points a warning raised by this function's caller at the first
    frame outside this module: the user's call of an exporter."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        level, frame = level + 1, frame.f_back
    return level


def _batch_dim():
    import torch

    return torch.export.Dim("batch", min=1)


@contextmanager
def _eval(model: torch.nn.Module) -> Iterator[None]:
    """The model in eval mode for the block, then back in the mode it was in."""
    training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(training)
