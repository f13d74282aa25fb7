"""The file formats archbuilder writes and reads, by extension: the one table that
``render``, ``export`` and ``import`` look a file's format up in. No torch."""

from __future__ import annotations

from pathlib import Path

__all__ = ["FORMATS_BY_USE", "extensions", "format_of"]

# what the files are for -> extension -> format
FORMATS_BY_USE: dict[str, dict[str, str]] = {
    "diagram": {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"},
    "page": {".html": "html"},
    "export": {".onnx": "onnx", ".pt2": "pt2"},
    "import": {".prototxt": "caffe", ".onnx": "onnx"},
}


def format_of(path: str | Path, use: str) -> str | None:
    """The format ``path``'s extension (any case) names among those for ``use``, else None."""
    return FORMATS_BY_USE[use].get(Path(path).suffix.lower())


def extensions(use: str) -> tuple[str, ...]:
    """The extensions for ``use``, in the order error messages list them."""
    return tuple(FORMATS_BY_USE[use])
