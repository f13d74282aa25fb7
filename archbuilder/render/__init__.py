"""Architecture diagrams from the IR: ``diagram`` for notebooks, ``render_diagram`` for files."""

from __future__ import annotations

from pathlib import Path

import graphviz

from archbuilder.files import write_atomic
from archbuilder.ir import IR, lower
from archbuilder.render.graph import DETAILS, RANKDIRS, to_digraph
from archbuilder.render.output import (
    ENGINES,
    FORMATS,
    RenderError,
    UnsupportedFormat,
    format_for,
    render_source,
)
from archbuilder.render.raster import DEFAULT_DPI
from archbuilder.spec import ArchSpec, load_spec

__all__ = [
    "DETAILS",
    "ENGINES",
    "FORMATS",
    "RANKDIRS",
    "RenderError",
    "UnsupportedFormat",
    "diagram",
    "render_diagram",
]


def _ir(spec: ArchSpec | IR | str | Path) -> IR:
    if isinstance(spec, IR):
        return spec
    return lower(spec if isinstance(spec, ArchSpec) else load_spec(spec))


def diagram(
    spec: ArchSpec | IR | str | Path, *, detail: str = "branches", shapes: bool = True, rankdir: str = "TB"
) -> graphviz.Digraph:
    """The diagram as a ``graphviz.Digraph`` (shown inline in Jupyter).

    ``detail`` is ``blocks``, ``branches`` or ``layers``; ``shapes`` puts tensor shapes on
    edges; ``rankdir`` is ``TB`` (top to bottom) or ``LR``.
    """
    return to_digraph(_ir(spec), detail=detail, shapes=shapes, rankdir=rankdir)


def render_diagram(
    spec: ArchSpec | IR | str | Path,
    output: str | Path,
    *,
    detail: str = "branches",
    shapes: bool = True,
    rankdir: str = "TB",
    engine: str = "auto",
    dpi: float = DEFAULT_DPI,
) -> Path:
    """Draw ``spec`` into ``output``; the format follows its extension (.svg, .png, .pdf, .dot).

    ``engine``: ``system`` Graphviz, ``embedded`` (installed with archbuilder: its SVG,
    rasterized to PNG or converted to PDF by pip-installed libraries), or ``auto`` (system
    when ``dot`` is on PATH, else embedded). ``dpi`` sets a PNG's resolution. Raises
    RenderError when the format cannot be produced here, SpecError for an invalid spec.
    """
    fmt = format_for(output)
    source = diagram(spec, detail=detail, shapes=shapes, rankdir=rankdir).source
    return write_atomic(output, render_source(source, fmt, engine=engine, dpi=dpi))
