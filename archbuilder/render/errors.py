"""What rendering raises."""

from __future__ import annotations

__all__ = ["RenderError", "UnsupportedFormat"]


class RenderError(Exception):
    """A diagram could not be produced; the message says why and what to do."""


class UnsupportedFormat(RenderError, ValueError):
    """The output file's extension names no format archbuilder writes."""
