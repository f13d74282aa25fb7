"""torch.export programs (``.pt2``), saved without this machine's stack traces."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from archbuilder.analysis.limits import DEFAULT_MAX_ACTIVATION_BYTES
from archbuilder.core.files import write_atomic
from archbuilder.export.prepare import batch_dim, eval_mode, prepared, require
from archbuilder.spec import ArchSpec

if TYPE_CHECKING:
    import torch

__all__ = ["export_program", "export_pt2"]


def export_program(
    model_or_spec: torch.nn.Module | ArchSpec | str | Path,
    *,
    num_classes: int | None = None,
    max_activation_bytes: int = DEFAULT_MAX_ACTIVATION_BYTES,
    dtype: str = "fp32",
    calibration: Sequence[torch.Tensor] | None = None,
) -> torch.export.ExportedProgram:
    """The eval-mode model as a ``torch.export.ExportedProgram`` with a dynamic batch dimension."""
    require("torch", needed_for="torch.export")
    import torch

    model, example = prepared(model_or_spec, num_classes, max_activation_bytes, dtype, calibration)
    with eval_mode(model):
        return torch.export.export(model, (example,), dynamic_shapes=({0: batch_dim()},))


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
    require("torch", needed_for=".pt2 export")
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


def _drop_stack_traces(program: torch.export.ExportedProgram) -> None:
    """Each node's recorded stack trace names this machine's folders: not in a shared file."""
    import torch

    for module in program.graph_module.modules():
        if isinstance(module, torch.fx.GraphModule):
            for node in module.graph.nodes:
                node.meta.pop("stack_trace", None)
