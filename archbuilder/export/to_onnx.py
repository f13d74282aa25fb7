"""ONNX export (``.onnx``): torch.onnx's dynamo exporter, without this machine's stack traces."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from archbuilder.analysis.limits import DEFAULT_MAX_ACTIVATION_BYTES
from archbuilder.core.files import write_atomic
from archbuilder.export.prepare import ExportError, batch_dim, eval_mode, prepared, require
from archbuilder.spec import ArchSpec

if TYPE_CHECKING:
    import torch

__all__ = ["DEFAULT_OPSET", "ONNX_PACKAGES", "OPSETS", "export_onnx"]

DEFAULT_OPSET = 20  # torch.onnx's default: run by onnxruntime 1.17 (2024) and later
OPSETS = range(18, 24)  # what torch.onnx's exporter writes
ONNX_PACKAGES = ("onnx", "onnxscript")
ONNX_SIZE_LIMIT = 2**31  # protobuf: one .onnx file holds at most 2 GiB
INPUT_NAME, OUTPUT_NAME = "input", "logits"
# The exporter records each op's Python stack trace, whose file names are this machine's
# folders (site-packages, the checkout): a shared model file must not carry them.
STACK_TRACE = "pkg.torch.onnx.stack_trace"


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
    # torch.onnx's exporter raises its own ImportError
    require("torch", *ONNX_PACKAGES, needed_for="ONNX export")
    if dtype == "bf16":
        from archbuilder.builder.precision_export import BF16_ONNX_REASON

        raise ExportError(BF16_ONNX_REASON)
    import torch

    model, example = prepared(model_or_spec, num_classes, max_activation_bytes, dtype, calibration)
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    if size >= ONNX_SIZE_LIMIT:
        message = f"the model's weights ({size / 2**30:.1f} GiB) do not fit in one .onnx file (2 GiB at most)"
        raise ExportError(f"{message}; export to .pt2 instead")
    with eval_mode(model):
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            dynamic_shapes=({0: batch_dim()},),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=opset,
            external_data=False,
            optimize=optimize,
            verbose=False,
        )
    return write_atomic(path, _without_stack_traces(program.model_proto).SerializeToString())


def _without_stack_traces(model):  # an onnx.ModelProto, changed in place
    def strip(nodes) -> None:
        for node in nodes:
            kept = [prop for prop in node.metadata_props if prop.key != STACK_TRACE]
            del node.metadata_props[:]
            node.metadata_props.extend(kept)
            for attribute in node.attribute:
                for graph in [*([attribute.g] if attribute.HasField("g") else []), *attribute.graphs]:
                    strip(graph.node)

    strip(model.graph.node)
    for function in model.functions:
        strip(function.node)
    return model
