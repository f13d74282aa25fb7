"""What an import gives back: the spec, its weights, and where it came from (the header)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archbuilder.escaping import yaml_header
from archbuilder.files import shown_path, write_atomic
from archbuilder.spec import ArchSpec

if TYPE_CHECKING:
    import torch

__all__ = ["IMPORTER_VERSION", "ImportResult"]

IMPORTER_VERSION = "1"


@dataclass(frozen=True)
class ImportResult:
    """An imported network. ``weights`` maps the built model's ``state_dict`` keys to numpy
    arrays (None when the source holds no weights, as a prototxt); ``stopped`` says where a
    partial import stopped."""

    spec: ArchSpec
    source: str
    sha256: str
    format: str
    weights: dict[str, Any] | None = None
    notes: tuple[str, ...] = ()
    stopped: str | None = None

    def header(self) -> str:
        """Comment lines naming the source file (as :func:`~archbuilder.files.shown_path` shows
        it), its sha256 and the importer version (each one line whatever the names hold:
        :func:`~archbuilder.escaping.yaml_header`)."""
        from archbuilder import __version__

        lines = [
            f"imported by archbuilder {__version__} (importer {IMPORTER_VERSION}) from {self.format} file",
            f"source: {json.dumps(shown_path(self.source), ensure_ascii=False)}",  # quoted: any name stays one line
            f"sha256: {self.sha256}",
        ]
        if self.stopped:
            lines.append(f"partial: stopped before {self.stopped}")
        lines += [f"note: {note}" for note in self.notes]
        return yaml_header(lines)

    def to_yaml(self) -> str:
        """The spec as YAML, after the header."""
        return self.header() + self.spec.to_yaml()

    def write(self, path: str | Path) -> Path:
        """Write :meth:`to_yaml` to ``path`` atomically."""
        return write_atomic(path, self.to_yaml().encode())

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The weights as a ``state_dict`` that ``build(result.spec)`` loads (strictly)."""
        import numpy as np
        import torch

        from archbuilder.builder import build

        if self.weights is None:
            raise ValueError(f"{self.source}: a {self.format} file holds no weights")
        model = build(self.spec, max_param_bytes=1 << 40)
        state = model.state_dict()
        missing = [
            key for key in state if key not in self.weights and not key.endswith("num_batches_tracked")
        ]
        unused = [key for key in self.weights if key not in state]
        if missing or unused:
            raise ValueError(f"weights do not match the spec: missing {missing[:5]}, unused {unused[:5]}")
        for key, value in self.weights.items():
            tensor = torch.tensor(np.array(value), dtype=state[key].dtype)
            if tuple(tensor.shape) != tuple(state[key].shape):
                tensor = tensor.reshape(state[key].shape)  # e.g. a Gemm's bias written as 1×N
            state[key] = tensor.clone()
        return state

    def save_weights(self, path: str | Path) -> Path:
        """Write :meth:`state_dict` with ``torch.save`` (atomically)."""
        import io

        import torch

        buffer = io.BytesIO()
        torch.save(self.state_dict(), buffer)
        return write_atomic(path, buffer.getvalue())
