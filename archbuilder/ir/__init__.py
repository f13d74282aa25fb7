"""The graph IR: ops with inferred shapes, parameters and MACs, grouped by block."""

from __future__ import annotations

from pathlib import Path

from archbuilder.ir.graph import IR, AuxHeadIR, Op, Parallel, Sequence, Shape, TopLevel
from archbuilder.ir.load import as_spec, load_lowered, load_spec, load_spec_text
from archbuilder.ir.lower import lower
from archbuilder.spec import ArchSpec

__all__ = [
    "IR",
    "AuxHeadIR",
    "Op",
    "Parallel",
    "Sequence",
    "Shape",
    "TopLevel",
    "as_ir",
    "as_spec",
    "load_lowered",
    "load_spec",
    "load_spec_text",
    "lower",
]


def as_ir(spec: ArchSpec | IR | str | Path) -> IR:
    """``spec`` itself when it is an :class:`IR`, else the IR of the spec (loaded from a path
    or YAML text when it is not an :class:`ArchSpec`): the one place the public functions
    that take any of these turn it into an IR."""
    if isinstance(spec, IR):
        return spec
    return lower(spec) if isinstance(spec, ArchSpec) else load_lowered(spec)[1]
