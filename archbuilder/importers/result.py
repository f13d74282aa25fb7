"""What an import gives back: the spec, its weights, and where it came from (the header).
Turning the weights into torch tensors is :mod:`.weights`'s, imported when asked for."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archbuilder.core.escaping import yaml_header
from archbuilder.core.extras import importing
from archbuilder.core.files import shown_path, write_atomic
from archbuilder.core.version import __version__
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
        """Comment lines naming the source file (as :func:`~archbuilder.core.files.shown_path` shows
        it), its sha256 and the importer version (each one line whatever the names hold:
        :func:`~archbuilder.core.escaping.yaml_header`)."""
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
        with importing("the weights as a state_dict"):
            from archbuilder.importers.weights import state_dict

        if self.weights is None:
            raise ValueError(f"{self.source}: a {self.format} file holds no weights")
        return state_dict(self.spec, self.weights)

    def save_weights(self, path: str | Path) -> Path:
        """Write :meth:`state_dict` with ``torch.save`` (atomically)."""
        with importing("the weights as a state_dict"):
            from archbuilder.importers.weights import save_state_dict

        return save_state_dict(self.state_dict(), path)
