"""Architecture diagrams from the IR: ``diagram`` for notebooks, ``render_diagram`` for files."""

from __future__ import annotations

from pathlib import Path

import graphviz

from archbuilder.analysis.overlay import Overlay
from archbuilder.core.files import write_atomic
from archbuilder.core.formats import format_of
from archbuilder.ir import IR, as_ir, as_spec, lower
from archbuilder.render.compare import compare_marks
from archbuilder.render.graph import DETAILS, RANKDIRS, THEMES, to_digraph
from archbuilder.render.html import InteractiveDiagram, page_html
from archbuilder.render.output import (
    ENGINES,
    FORMATS,
    RenderError,
    UnsupportedFormat,
    format_for,
    render_source,
)
from archbuilder.spec import ArchSpec

__all__ = [
    "DETAILS",
    "ENGINES",
    "FORMATS",
    "RANKDIRS",
    "THEMES",
    "InteractiveDiagram",
    "RenderError",
    "UnsupportedFormat",
    "diagram",
    "output_format",
    "render_diagram",
]


def _loaded(spec: ArchSpec | IR | str | Path) -> tuple[IR, ArchSpec | None]:
    """The IR and, unless an IR was given, the spec (its source gives the YAML lines)."""
    if isinstance(spec, IR):
        return spec, None
    loaded = as_spec(spec)
    return lower(loaded), loaded


def output_format(path: str | Path) -> str:
    """The format an output file's extension names: ``html``, or one of :data:`FORMATS`."""
    if format_of(path, "page"):
        return "html"
    try:
        return format_for(path)
    except UnsupportedFormat as exc:
        raise UnsupportedFormat(f"{exc}, .html") from None


def diagram(
    spec: ArchSpec | IR | str | Path,
    *,
    detail: str = "branches",
    shapes: bool = True,
    rankdir: str = "TB",
    interactive: bool = False,
    layout: str = "auto",
    unroll: bool = False,
    theme: str = "default",
) -> graphviz.Digraph | InteractiveDiagram:
    """The diagram as a ``graphviz.Digraph`` (shown inline in Jupyter).

    ``detail`` is ``blocks``, ``branches`` or ``layers``; ``shapes`` puts tensor shapes on
    edges; ``rankdir`` is ``TB`` (top to bottom) or ``LR``; ``layout``, ``unroll`` and ``theme``
    are :func:`render_diagram`'s. ``interactive=True`` gives the
    foldable page instead (an :class:`InteractiveDiagram`; the other options do not apply).
    """
    if interactive:
        return InteractiveDiagram(page_html(*_loaded(spec)))
    return to_digraph(
        as_ir(spec), detail=detail, shapes=shapes, rankdir=rankdir, layout=layout, unroll=unroll, theme=theme
    )


def render_diagram(
    spec: ArchSpec | IR | str | Path,
    output: str | Path,
    *,
    detail: str = "branches",
    shapes: bool = True,
    rankdir: str = "TB",
    engine: str = "auto",
    dpi: float | None = None,
    compare: ArchSpec | str | Path | None = None,
    layout: str = "auto",
    unroll: bool = False,
    theme: str = "default",
    width: int | None = None,
    overlay: Overlay | None = None,
) -> Path:
    """Draw ``spec`` into ``output``; the format follows its extension (.svg, .png, .pdf, .dot,
    or .html for the interactive page, which ignores the other options).

    ``engine``: ``system`` Graphviz, ``embedded`` (installed with archbuilder: its SVG,
    rasterized to PNG or converted to PDF by pip-installed libraries), or ``auto`` (system
    when ``dot`` is on PATH, else embedded). A PNG is ``width`` pixels wide, or drawn at
    ``dpi``; with neither, at most 2400 px on its longer side (:func:`.output.png_dpi`). ``compare``:
    another spec; ``spec`` is then drawn with its entries added, changed or renamed since
    ``compare`` marked (and the removed ones listed). ``layout``: ``tall``, ``compact`` (the
    main chain wrapped into columns) or ``auto`` (columns when one would be thinner than about
    1:2.6 or taller than 30 inches). Copies of one block are drawn once, ``×N``, unless
    ``unroll``. ``theme``: ``default`` or ``paper`` (greys and a serif, for print).
    ``overlay`` (:func:`~archbuilder.analysis.overlay.overlay_for`): every node and block filled
    by its value on one scale, with a colour bar; in the page, the inspector shows the values.
    Raises RenderError when the format cannot be produced here, SpecError for an invalid spec.
    """
    fmt = output_format(output)  # an unsupported extension fails before the spec is read
    ir, loaded = _loaded(spec)
    marks = _compare(compare, loaded) if compare is not None else None
    if fmt == "html":
        return write_atomic(output, page_html(ir, loaded, marks, overlay).encode())
    graph = to_digraph(
        ir,
        detail=detail,
        shapes=shapes,
        rankdir=rankdir,
        marks=marks,
        layout=layout,
        unroll=unroll,
        theme=theme,
        overlay=overlay,
    )
    return write_atomic(output, render_source(graph.source, fmt, engine=engine, dpi=dpi, width=width))


def _compare(old: ArchSpec | str | Path, new: ArchSpec | None) -> dict:
    if new is None:
        raise ValueError("compare needs a spec (a path, YAML text or ArchSpec), not an IR")
    return compare_marks(old, new)
