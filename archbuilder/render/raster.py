"""SVG to PNG and PDF with pip-installed libraries, for machines without system Graphviz.

PNG: resvg (``resvg-py``), a maintained Rust renderer with no system libraries. PDF: svglib
and ReportLab, which write vector PDF with the standard Helvetica (nothing to embed). Both
read the SVG of the embedded Graphviz. Text in the PNG is DejaVu Sans where the machine has
it (most Linux systems: it has every glyph the diagrams use, × and → included), else the
Bitstream Vera Sans that ReportLab ships, so a machine without fonts still gets legible labels;
the paper theme's serif is Liberation Serif (Times' widths) where the machine has it.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from archbuilder.core.errors import RenderError

__all__ = ["DEFAULT_DPI", "svg_to_pdf", "svg_to_png"]

DEFAULT_DPI = 144.0  # twice Graphviz's 72 points per inch: sharp on high-density screens
_SANS_FAMILY = "DejaVu Sans"
_SERIF_FAMILY = "Liberation Serif"  # the paper theme's Times: the same widths, where the machine has it
_FALLBACK_FAMILY = "Bitstream Vera Sans"
# Graphviz writes the generic family as "sans-Serif", which resvg matches case-sensitively.
_GENERIC_FAMILY = re.compile(rb"(font-family=\"[^\"]*)sans-Serif")


def svg_to_png(svg: bytes, *, dpi: float = DEFAULT_DPI) -> bytes:
    """A PNG of ``svg`` at ``dpi`` dots per inch, on white."""
    try:
        import resvg_py
    except ImportError:
        raise RenderError("PNG output without system Graphviz needs resvg-py: pip install resvg-py") from None
    try:
        return bytes(
            resvg_py.svg_to_bytes(
                svg_string=_GENERIC_FAMILY.sub(rb"\1sans-serif", svg).decode(),
                dpi=float(dpi),
                background="white",
                font_files=_fallback_fonts(),
                font_family=_FALLBACK_FAMILY,
                sans_serif_family=_SANS_FAMILY,
                serif_family=_SERIF_FAMILY,
            )
        )
    except ValueError as exc:
        raise RenderError(f"could not rasterize the diagram: {exc}") from None


def svg_to_pdf(svg: bytes) -> bytes:
    """A vector PDF of ``svg``, one page the size of the drawing."""
    try:
        from reportlab.graphics import renderPDF
        from reportlab.pdfgen.canvas import Canvas
        from svglib.svglib import svg2rlg
    except ImportError:
        raise RenderError("PDF output without system Graphviz needs svglib: pip install svglib") from None
    drawing = svg2rlg(io.BytesIO(svg))
    if drawing is None:
        raise RenderError("could not convert the diagram's SVG to PDF")
    output = io.BytesIO()
    # invariant: no creation date or random id, so the same diagram gives the same bytes
    canvas = Canvas(output, pagesize=(drawing.width, drawing.height), invariant=1)
    renderPDF.draw(drawing, canvas, 0, 0)
    canvas.showPage()
    canvas.save()
    return output.getvalue()


def _fallback_fonts() -> list[str]:
    try:
        import reportlab
    except ImportError:
        return []
    folder = Path(reportlab.__file__).parent / "fonts"
    return [str(path) for path in (folder / "Vera.ttf", folder / "VeraBd.ttf") if path.is_file()]
