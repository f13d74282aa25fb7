"""One self-contained HTML page per spec: the page model, the script and the styles inlined.

The page makes no network request: no CDN, no fonts, no images from elsewhere. Layouts are
computed in the page by its own series-parallel layout (assets/page.js), so every fold state
is drawn at once without shipping a Graphviz build.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from archbuilder.analysis.overlay import Overlay
from archbuilder.core.escaping import for_html, for_html_document, for_script_json
from archbuilder.ir import IR
from archbuilder.render.page import page_model
from archbuilder.spec import ArchSpec

__all__ = ["InteractiveDiagram", "page_document", "page_html"]

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'{connect}">
<title>{title}</title>
<style>{css}</style>
</head>
<body{body}>
<header>
  <h1 id="title"></h1><span id="totals"></span><span id="compare" hidden></span>
  <div class="tools">
    <input id="find" type="search" placeholder="find a block or layer ( / )" autocomplete="off"
      aria-label="find a block or layer">
    <ul id="hits" hidden></ul>
    <button id="expand-all">expand all</button><button id="collapse-all">collapse all</button>
    <button id="fit">fit</button><button id="zoom-100">100%</button>
  </div>
  <ul id="legend"></ul>
</header>
<svg id="canvas" xmlns="http://www.w3.org/2000/svg">
  <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7"
    orient="auto-start-reverse"><path d="M0,1 L10,5 L0,9 z" fill="#777"/></marker></defs>
  <g id="view"></g>
</svg>
<aside id="inspect"><h2>Inspect</h2><p class="hint">Click a block to unfold it (and its title to
fold it again); hover or click any node to see its shapes, parameters, MACs and the spec lines
that wrote it. Drag to pan, scroll to zoom, <kbd>/</kbd> to find.</p></aside>
<script type="application/json" id="arch-data">{data}</script>
<script>{script}</script>
</body>
</html>
"""


def _asset(name: str) -> str:
    return resources.files("archbuilder.render").joinpath("assets", name).read_text(encoding="utf-8")


def page_html(
    ir: IR, spec: ArchSpec | None, marks: dict[str, Any] | None = None, overlay: Overlay | None = None
) -> str:
    """The interactive page for ``ir`` (``spec`` gives the YAML lines and template groups;
    ``overlay`` colours the nodes by its values)."""
    return page_document(page_model(ir, spec, marks, overlay))


def page_document(model: dict[str, Any], *, live: bool = False) -> str:
    """The page for a page model. ``live``: served by ``archbuild serve``, the page follows its
    server's ``events`` stream and fetches ``model.json`` (the only requests it may make)."""
    return _TEMPLATE.format(
        title=for_html(model["name"]),
        css=_asset("page.css"),
        data=for_script_json(model),
        script=_asset("page.js"),
        connect="; connect-src 'self'" if live else "",
        body=' class="live"' if live else "",
    )


class InteractiveDiagram:
    """The page, shown inline in Jupyter (in an iframe, so its script and styles stay apart)."""

    def __init__(self, page: str, height: int = 640):
        self.html = page
        self.height = height

    def _repr_html_(self) -> str:
        return (
            f'<iframe srcdoc="{for_html_document(self.html)}" '
            f'style="width:100%;height:{self.height}px;border:1px solid #ddd" '
            'sandbox="allow-scripts"></iframe>'
        )
