"""PNG and PDF diagrams with pip alone: the embedded Graphviz's SVG rasterized and converted."""

from __future__ import annotations

import base64
import contextlib
import io
import re
import zlib

import pytest
from PIL import Image

from archbuilder import render_diagram
from archbuilder.cli import main
from archbuilder.render.raster import svg_to_png

from .conftest import GOOGLENET


@pytest.fixture
def no_dot(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no `dot` anywhere
    return tmp_path


def _svg_size_pt(svg: bytes) -> tuple[float, float]:
    width, height = re.search(rb'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg).groups()
    return float(width), float(height)


def _dark_pixels(png: bytes) -> int:
    image = Image.open(io.BytesIO(png)).convert("L")
    return sum(count for value, count in enumerate(image.histogram()) if value < 128)


def test_png_without_system_graphviz_is_the_svg_at_the_asked_resolution(no_dot):
    svg = render_diagram(GOOGLENET, no_dot / "g.svg", detail="blocks").read_bytes()
    width_pt, height_pt = _svg_size_pt(svg)
    for dpi in (72, 144):
        png = render_diagram(GOOGLENET, no_dot / f"g{dpi}.png", detail="blocks", dpi=dpi).read_bytes()
        image = Image.open(io.BytesIO(png))
        assert image.format == "PNG"
        # points are 1/72 inch: the raster is the drawing's size at that resolution
        assert abs(image.width - width_pt * dpi / 72) <= 2 and abs(image.height - height_pt * dpi / 72) <= 2


def test_png_text_is_drawn(no_dot):
    """The labels are rendered, not dropped for want of a font: removing every <text> element
    removes a large share of the dark pixels."""
    svg = render_diagram(GOOGLENET, no_dot / "g.svg", detail="blocks").read_bytes()
    without_text = re.sub(rb"<text[^>]*>.*?</text>", b"", svg, flags=re.DOTALL)
    with_labels, without_labels = _dark_pixels(svg_to_png(svg)), _dark_pixels(svg_to_png(without_text))
    assert with_labels > 1.5 * without_labels


def _pdf_text(pdf: bytes) -> str:
    """The page content streams, decoded (ReportLab writes them ASCII85 over Flate)."""
    streams = re.findall(rb"stream\r?\n(.*?)endstream", pdf, flags=re.DOTALL)
    decoded = []
    for stream in streams:
        data = stream.strip()
        if data.endswith(b"~>"):
            data = base64.a85decode(data.removesuffix(b"~>"))
        with contextlib.suppress(zlib.error):  # an uncompressed stream
            data = zlib.decompress(data)
        decoded.append(data.decode("latin-1"))
    return "\n".join(decoded)


def test_pdf_without_system_graphviz_is_vector_with_the_labels(no_dot):
    svg = render_diagram(GOOGLENET, no_dot / "g.svg").read_bytes()
    pdf = render_diagram(GOOGLENET, no_dot / "g.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-")
    width, height = (
        float(size) for size in re.search(rb"/MediaBox \[ 0 0 ([\d.]+) ([\d.]+) \]", pdf).groups()
    )
    svg_width, svg_height = _svg_size_pt(svg)
    assert abs(width - svg_width) <= 1 and abs(height - svg_height) <= 1  # one page, the drawing's size
    content = _pdf_text(pdf)
    for label in ("3a", "Inception", "aux1", "164,432 params"):  # text, not a picture of it
        assert label in content, label
    assert render_diagram(GOOGLENET, no_dot / "again.pdf").read_bytes() == pdf  # reproducible


def test_cli_writes_png_and_pdf_without_system_graphviz(no_dot, capsys):
    for suffix, magic in ((".png", b"\x89PNG\r\n\x1a\n"), (".pdf", b"%PDF-")):
        output = no_dot / f"googlenet{suffix}"
        assert main(["render", "googlenet", "-o", str(output)]) == 0
        assert output.read_bytes().startswith(magic)
    assert main(["render", "googlenet", "-o", str(no_dot / "x.png"), "--dpi", "0"]) == 2
    assert "--dpi must be above 0" in capsys.readouterr().err
