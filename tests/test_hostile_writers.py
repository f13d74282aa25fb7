"""Every writer of text that comes from a spec or an imported file, fed hostile text.

Whatever a name, description, comment or file name holds, it stays text in what archbuilder
writes: no markup in an SVG or a page, no second script element, no YAML line after a header
comment, no control character on a terminal. Truths: stdlib parsers read what was written
(``xml.etree`` for SVG, ``html.parser`` and ``json`` for the page, ``yaml.safe_load`` and
``load_spec`` for YAML), Graphviz itself reads the DOT, headless Chromium opens the page, and
the bytes a terminal would receive are counted.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

import archbuilder
from archbuilder.catalog import new_spec_text, shipped_spec_text
from archbuilder.catalog.variants import VARIANTS, emit_yaml
from archbuilder.cli.main import main
from archbuilder.core.escaping import for_terminal
from archbuilder.core.files import shown_path
from archbuilder.importers.result import ImportResult
from archbuilder.render import diagram, render_diagram
from archbuilder.render.graph import Diagram
from archbuilder.render.style import record_label, text_label

from .conftest import GOOGLENET, ROOT
from .test_interactive import CHROMEDRIVER, CHROMIUM, browser  # noqa: F401 (a fixture)

# Every class at once: markup, a comment opener, script ends, terminal controls, quotes,
# backslashes (Graphviz's \\N escape), entities, and every line break YAML readers know before
# a key that must never be read.
HOSTILE = (
    '<a href="javascript:alert(1)">x</a> <!-- </script> <SCRIPT> \x1b[31m\x07'
    " \"q\" 's' \\N \\ &amp; &#27; & \r\n\x85\u2028\u2029description: injected"
)
# Under the graphviz package's quoting, this graph name ended the graph early: a graph of its
# own with a javascript: link, and the diagram's c1 relabelled.
DOT_BREAKER = (
    '<x> {label=<<table href="javascript:alert(1)"><tr><td>pwned</td></tr></table>>; '
    "c1 [label=gone]} digraph <y>"
)
NAMES = pytest.mark.parametrize("name", [HOSTILE, DOT_BREAKER], ids=["hostile", "dot-breaker"])
# Markup in raw YAML: a comment cannot hold a line break or control character (the reader refuses them).
RAW = "<!-- <script> </SCRIPT > <!--<script>"
SVG = "{http://www.w3.org/2000/svg}"
HAS_DOT = shutil.which("dot") is not None
ENGINES = [
    pytest.param("system", marks=pytest.mark.skipif(not HAS_DOT, reason="system Graphviz is not installed")),
    "embedded",
]


def spec_text(name: str, description: str = "d") -> str:
    """A small spec; JSON strings are YAML double-quoted scalars, so any text gets in."""
    return (
        f"name: {json.dumps(name)}\ndescription: {json.dumps(description)}\n"
        "input: {channels: 3, height: 8, width: 8}\nblocks:\n"
        f"  - {{name: c1, kind: conv, out: 4, kernel: 3, padding: 1}}  # {RAW}\n"
        "  - {kind: flatten}\n"
    )


def write_spec(folder: Path, name: str, *, file: str = "spec.yaml", description: str = "d") -> Path:
    path = folder / file
    path.write_text(spec_text(name, description), encoding="utf-8")
    return path


# -- the rule of each output language --------------------------------------------------------
def assert_svg_keeps_text(svg: bytes, *texts: str) -> None:
    """One well-formed SVG whose only markup is Graphviz's: ``texts`` shown as text, c1 kept."""
    root = ET.fromstring(svg)  # raises on a second document or a character XML forbids
    tags = {element.tag.removeprefix(SVG) for element in root.iter()}
    assert not tags & {"a", "script", "foreignObject", "iframe"}, tags
    values = [value for element in root.iter() for value in element.attrib.values()]
    assert not [value for value in values if "javascript" in value.lower()]
    shown = [element.text.strip("\xa0") for element in root.iter(f"{SVG}text") if element.text]
    for text in texts:
        assert for_terminal(text) in shown
    assert "c1" in shown and "pwned" not in shown and "gone" not in shown


def assert_terminal_safe(data: bytes) -> None:
    """No byte a terminal obeys: C0 controls but LF and tab, DEL, and the C1 controls."""
    text = data.decode()
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]", text), text


def assert_yaml_header_holds(text: str, *hostile: str) -> None:
    """The comment lines stay comments: the YAML reads as the spec alone, the text kept in them."""
    header = _header(text)
    data = yaml.safe_load(text)
    assert set(data) <= set(archbuilder.ArchSpec.model_fields) and data.get("description") != "injected"
    assert archbuilder.load_spec(text).description != "injected"
    assert not re.search("[\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]", header)
    for line in hostile:
        assert for_terminal(line) in header


def _header(text: str) -> str:
    lines = text.split("\n")
    count = next(index for index, line in enumerate(lines) if not line.startswith("#"))
    return "\n".join(lines[:count])


class _Scripts(HTMLParser):
    """The page as an HTML parser splits it: each script element's type and text."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[list[str]] = []
        self.tags: list[str] = []
        self.title = ""
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in = tag
        if tag == "script":
            self.scripts.append([dict(attrs).get("type", ""), ""])

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in == "script":
            self.scripts[-1][1] += data
        elif self._in == "title":
            self.title += data


def assert_page_keeps_text(page: str, name: str) -> dict:
    """Two script elements whatever the data holds, the JSON block parsing to the data."""
    parser = _Scripts()
    parser.feed(page)
    assert [kind for kind, _ in parser.scripts] == ["application/json", ""]
    for _, content in parser.scripts:
        # HTML's restrictions on script content: nothing that opens a comment or a script
        # (which changes where the browser ends the element), no line separator
        assert not re.search(r"<!--|</?script", content, re.IGNORECASE)
        assert "\u2028" not in content and "\u2029" not in content
    assert not {"a", "iframe", "img", "object"} & set(parser.tags)
    assert parser.title == for_terminal(name)
    return json.loads(parser.scripts[0][1])


# -- SVG and DOT -----------------------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
@NAMES
def test_a_graph_name_is_text_in_the_svg(tmp_path, engine, name):
    path = render_diagram(spec_text(name), tmp_path / "d.svg", engine=engine)
    assert_svg_keeps_text(path.read_bytes(), name)


@pytest.mark.parametrize("engine", ENGINES)
def test_node_names_and_labels_are_text_whatever_they_hold(tmp_path, engine):
    # Spec names are plain, but the IR's node ids and labels reach DOT from other importers too.
    graph = Diagram("g")
    graph.node(HOSTILE, record_label([HOSTILE, "c1"], "TB"), shape="Mrecord")
    graph.node("c1:port", text_label(DOT_BREAKER, HOSTILE), shape="box")
    graph.node("legend", HOSTILE, shape="box")  # plain text given as a label
    graph.edge(HOSTILE, "c1:port", label=DOT_BREAKER)
    svg = archbuilder.render.output.render_source(graph.source, "svg", engine=engine)
    assert_svg_keeps_text(svg, HOSTILE, DOT_BREAKER)
    root = ET.fromstring(svg)
    nodes = [g for g in root.iter(f"{SVG}g") if g.get("class") == "node"]
    assert len(nodes) == 3  # "c1:port" is one node, not node c1's port


@pytest.mark.skipif(not HAS_DOT, reason="system Graphviz is not installed")
@NAMES
def test_the_dot_source_is_one_graph_graphviz_reads_back(name):
    source = diagram(spec_text(name)).source
    result = subprocess.run(["dot", "-Tjson"], input=source.encode(), capture_output=True, check=True)
    graph = json.loads(result.stdout)  # one graph: a second would be a second JSON document
    labels = [node.get("label", "") for node in graph["objects"]]
    assert any("c1" in label for label in labels) and "gone" not in labels
    assert "pwned" not in result.stdout.decode() or "pwned" in graph["label"]
    assert not graph["label"].startswith("<")  # a string label, not an HTML-like one


def test_svg_on_standard_output_is_well_formed(tmp_path, capsysbinary):
    spec = write_spec(tmp_path, "bell\x07 escape\x1b[2J nul-ish\x01 end")
    assert main(["render", str(spec), "-o", "-"]) == 0
    out = capsysbinary.readouterr().out
    assert b"\x1b" not in out and b"\x07" not in out
    assert_svg_keeps_text(out, "bell\x07 escape\x1b[2J nul-ish\x01 end")


# -- the page --------------------------------------------------------------------------------
def test_the_page_keeps_two_scripts_whatever_the_spec_holds(tmp_path):
    spec = write_spec(tmp_path, HOSTILE, file="<!--x<script>.yaml", description=HOSTILE)
    page = render_diagram(spec, tmp_path / "page.html").read_text(encoding="utf-8")
    data = assert_page_keeps_text(page, HOSTILE)
    assert data["name"] == HOSTILE and data["files"] == [shown_path(spec)]
    assert any(RAW in line for line in data["lines"]["0"].values())  # the YAML panel's text


def test_a_compare_page_keeps_the_old_name_as_data(tmp_path):
    old = write_spec(tmp_path, HOSTILE, file="old.yaml")
    new = write_spec(tmp_path, "new", file="new.yaml")
    page = render_diagram(new, tmp_path / "page.html", compare=old).read_text(encoding="utf-8")
    assert assert_page_keeps_text(page, "new")["compare"] == HOSTILE


def test_the_yaml_panel_reads_only_a_regular_file(tmp_path):
    # The page reads spec lines again after loading: a file swapped for a FIFO must not block.
    spec_path = write_spec(tmp_path, "fifo")
    spec = archbuilder.load_spec(spec_path)
    spec_path.unlink()
    os.mkfifo(spec_path)
    threading.Thread(target=_unblock, args=(spec_path, 5.0), daemon=True).start()
    start = time.monotonic()
    page = archbuilder.render.html.page_html(archbuilder.ir.lower(spec), spec)
    assert time.monotonic() - start < 4, "waited on the FIFO"
    assert assert_page_keeps_text(page, "fifo")["lines"] == {}


def _unblock(fifo: Path, after: float) -> None:
    """A reader blocked on ``fifo`` gets end-of-file after ``after`` seconds (none: nothing)."""
    time.sleep(after)
    with contextlib.suppress(OSError):  # ENXIO: nobody is reading
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="chromium and chromedriver are not installed")
def test_chromium_shows_the_hostile_text_as_text(browser, tmp_path):  # noqa: F811
    spec = write_spec(tmp_path, HOSTILE, file="<!--x<script>.yaml", description=HOSTILE)
    browser.get(render_diagram(spec, tmp_path / "page.html").resolve().as_uri())
    assert [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")] == []
    found = browser.execute_script(
        "return [document.scripts.length, document.querySelectorAll('a, iframe, img').length,"
        " JSON.parse(document.getElementById('arch-data').textContent).name,"
        " document.getElementById('title').textContent]"
    )
    assert found == [2, 0, HOSTILE, HOSTILE]


# -- YAML headers ----------------------------------------------------------------------------
INJECTION = "x\ndescription: injected\r# \x85description: injected\u2028description: injected\u2029z"


def test_an_import_header_stays_comments(tmp_path):
    spec = archbuilder.load_spec(spec_text("imported"))
    result = ImportResult(
        spec, source=INJECTION, sha256="0" * 64, format="onnx", notes=(INJECTION,), stopped=INJECTION
    )
    assert_yaml_header_holds(result.to_yaml(), f"source: {json.dumps(INJECTION, ensure_ascii=False)}")
    written = result.write(tmp_path / "i.yaml").read_text(encoding="utf-8")
    assert archbuilder.load_spec(tmp_path / "i.yaml").description == "d" and written == result.to_yaml()
    assert f"# note: {for_terminal(INJECTION)}" in written


def test_new_and_show_schema_lines_stay_comments(tmp_path):
    shown = shipped_spec_text("googlenet", schema=INJECTION)
    assert_yaml_header_holds(shown, f"yaml-language-server: $schema={INJECTION}")
    started = new_spec_text(tmp_path / f"{INJECTION}.yaml", "googlenet", schema=INJECTION)
    assert_yaml_header_holds(started, f"yaml-language-server: $schema={INJECTION}", f"{INJECTION}: started")


def test_an_emitted_variant_header_stays_comments():
    spec = archbuilder.load_spec(GOOGLENET)
    emitted = emit_yaml(spec, next(iter(VARIANTS)), source=INJECTION, schema=INJECTION)
    assert_yaml_header_holds(emitted, f"yaml-language-server: $schema={INJECTION}")


# -- the terminal ----------------------------------------------------------------------------
TERMINAL = "t\x1b]0;pwned\x07\x1b[2J\rforged\x9b\x85\u2028"


def test_diff_shows_control_characters_as_escapes(tmp_path, capfdbinary):
    old = write_spec(tmp_path, "old", file="a.yaml", description="before")
    new = write_spec(tmp_path, TERMINAL, file="b.yaml", description=TERMINAL)
    assert main(["diff", str(old), str(new)]) == 0
    out, err = capfdbinary.readouterr()
    assert_terminal_safe(out + err)
    assert for_terminal(TERMINAL).encode() in out


PROTOTXT = """name: "net"
input: "data"
input_shape {{ dim: 1 dim: 3 dim: 8 dim: 8 }}
layer {{ name: {conv} type: "Convolution" bottom: "data" top: "c"
  convolution_param {{ num_output: 4 kernel_size: 3 }} }}
layer {{ name: {odd} type: "Softmax" bottom: "c" top: "prob" }}
"""


def test_import_notes_show_control_characters_as_escapes(tmp_path, capfdbinary):
    odd = '"' + TERMINAL.replace("\r", "\\r") + '"'  # a prototxt string holds raw controls
    (tmp_path / "n.prototxt").write_text(PROTOTXT.format(conv='"conv1"', odd=odd), encoding="utf-8")
    code = main(["import", str(tmp_path / "n.prototxt"), "-o", str(tmp_path / "n.yaml")])
    out, err = capfdbinary.readouterr()
    assert_terminal_safe(out + err)
    assert code == 0 and b"note: t\\x1b]0;pwned" in err


def test_render_names_its_output_without_control_characters(tmp_path, capfdbinary):
    spec = write_spec(tmp_path, "plain")
    assert main(["render", str(spec), "-o", str(tmp_path / f"{TERMINAL}.dot")]) == 0
    out, err = capfdbinary.readouterr()
    assert_terminal_safe(out + err)


# -- no writer bypasses the rules ------------------------------------------------------------
WRITER_MODULES = [
    *(ROOT / "archbuilder" / "render").glob("*.py"),
    ROOT / "archbuilder" / "importers" / "result.py",
    *(ROOT / "archbuilder" / "catalog").glob("*.py"),  # the variants' emitter among them
]


@pytest.mark.parametrize("path", WRITER_MODULES, ids=lambda path: path.name)
def test_writers_escape_only_through_the_escaping_module(path):
    """No local escaping (html.escape, json into a page, hand-made comments or DOT quoting):
    each rule lives in archbuilder/core/escaping.py, which every writer calls."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    calls = {
        f"{node.func.value.id}.{node.func.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
    }
    local = {"html.escape", "graphviz.escape", "graphviz.nohtml"}
    if path.parent.name == "render":  # data for a page goes through escaping.for_script_json
        local.add("json.dumps")
    assert not calls & local, path
    comments = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("# ")
    ]
    assert comments == [], f"{path}: a YAML comment written by hand; use escaping.yaml_header"


# -- every writer of user text, one hostile string each ---------------------------------------
def _spec_file(tmp_path: Path, name: str = HOSTILE, **kwargs) -> Path:
    return write_spec(tmp_path, name, description=HOSTILE, **kwargs)


def _cli(*args: str) -> bytes:
    """What one in-process ``archbuild`` run writes to the terminal (stdout and stderr)."""
    result = subprocess.run(
        [sys.executable, "-m", "archbuilder", *args], capture_output=True, timeout=120, cwd=ROOT
    )
    assert result.returncode in (0, 1), result.stderr
    return result.stdout + result.stderr


FILE_SAFE = HOSTILE.replace("/", "|")  # a file name holds anything but "/" and NUL
SPACE = "extends: {spec}\nname: {name}\nblocks: {{c1: {{out: {{choice: [4, 8]}}}}}}\n"


def _space_file(tmp_path: Path) -> Path:
    spec = _spec_file(tmp_path)
    # not "\n": a SPACE argument holding one is read as YAML text, not as a path
    path = tmp_path / f"{FILE_SAFE.replace(chr(10), ' ')}.yaml"
    path.write_text(SPACE.format(spec=json.dumps(spec.name), name=json.dumps(HOSTILE)), encoding="utf-8")
    return path


SLOW_WRITERS = {"build"}  # builds a torch model: seconds of import and allocation
WRITERS = {
    # SVG (the diagram of a spec, a compare view, the SVG on standard output)
    "svg-system": ("svg", lambda t: render_diagram(_spec_file(t), t / "d.svg", engine="system").read_bytes()),
    "svg-embedded": (
        "svg",
        lambda t: render_diagram(_spec_file(t), t / "d.svg", engine="embedded").read_bytes(),
    ),
    "svg-compare": (
        "svg",
        lambda t: render_diagram(
            _spec_file(t, file="b.yaml"), t / "d.svg", compare=_spec_file(t)
        ).read_bytes(),
    ),
    "svg-stdout": (
        "svg",
        lambda t: (
            subprocess.run(
                [sys.executable, "-m", "archbuilder", "render", str(_spec_file(t)), "-o", "-"],
                capture_output=True,
                check=True,
                timeout=120,
            ).stdout
        ),
    ),
    # the page, its YAML panel and file list, and a compare page's title
    "page": (
        "html",
        lambda t: render_diagram(_spec_file(t, file=f"{FILE_SAFE}.yaml"), t / "p.html").read_text(),
    ),
    "page-compare": (
        "html",
        lambda t: render_diagram(
            _spec_file(t, file="b.yaml"), t / "p.html", compare=_spec_file(t)
        ).read_text(),
    ),
    # YAML headers
    "import-header": (
        "yaml",
        lambda t: ImportResult(
            archbuilder.load_spec(spec_text("i")),
            HOSTILE,
            "0" * 64,
            "onnx",
            notes=(HOSTILE,),
            stopped=HOSTILE,
        ).to_yaml(),
    ),
    "show-schema": ("yaml", lambda t: shipped_spec_text("googlenet", schema=HOSTILE)),
    "new-schema": ("yaml", lambda t: new_spec_text(t / f"{FILE_SAFE}.yaml", "googlenet", schema=HOSTILE)),
    "emit-header": (
        "yaml",
        lambda t: emit_yaml(
            archbuilder.load_spec(GOOGLENET), next(iter(VARIANTS)), source=HOSTILE, schema=HOSTILE
        ),
    ),
    "sample-header": (
        "yaml",
        lambda t: (
            _cli("sample", str(_space_file(t)), "-n", "1", "-o", str(t / "out"), "--no-progress"),
            next((t / "out").glob("*.yaml")).read_text(),
        )[1],
    ),
    # the terminal
    "diff": ("terminal", lambda t: _cli("diff", str(_spec_file(t, "a", file="a.yaml")), str(_spec_file(t)))),
    "import-notes": (
        "terminal",
        lambda t: (
            (t / "n.prototxt").write_text(
                PROTOTXT.format(
                    conv='"conv1"',
                    odd='"' + HOSTILE.replace("\r", "\\r").replace("\n", "\\n").replace('"', "'") + '"',
                ),
                encoding="utf-8",
            ),
            _cli("import", str(t / "n.prototxt")),
        )[1],
    ),
    "render-message": (
        "terminal",
        lambda t: _cli("render", str(_spec_file(t)), "-o", str(t / f"{FILE_SAFE}.dot")),
    ),
    "new-message": ("terminal", lambda t: _cli("new", str(t / f"{FILE_SAFE}.yaml"), "--from", "googlenet")),
    "validate": ("terminal", lambda t: _cli("validate", str(_spec_file(t, file=f"{FILE_SAFE}.yaml")))),
    "summary": ("terminal", lambda t: _cli("summary", str(_spec_file(t)))),
    "build": ("terminal", lambda t: _cli("build", str(_spec_file(t)))),
    "emit-message": (
        "terminal",
        lambda t: _cli(
            "emit", str(GOOGLENET), "--variant", next(iter(VARIANTS)), "-o", str(t / f"{FILE_SAFE}.yaml")
        ),
    ),
    "space": ("terminal", lambda t: _cli("space", str(_space_file(t)), "--no-progress")),
    "sample-message": (
        "terminal",
        lambda t: _cli(
            "sample", str(_space_file(t)), "-n", "1", "-o", str(t / f"{FILE_SAFE}"), "--no-progress"
        ),
    ),
}


def _rule(language: str, written, tmp_path: Path) -> None:
    if language == "svg":
        assert_svg_keeps_text(written, HOSTILE)
    elif language == "html":
        data = assert_page_keeps_text(written, _page_name(written))
        assert HOSTILE in (data["name"], data["compare"])
    elif language == "yaml":
        assert_yaml_header_holds(written)
    else:
        assert_terminal_safe(written)


def _page_name(page: str) -> str:
    parser = _Scripts()
    parser.feed(page)
    return json.loads(parser.scripts[0][1])["name"]


@pytest.mark.parametrize(
    "writer", [pytest.param(w, marks=pytest.mark.slow) if w in SLOW_WRITERS else w for w in WRITERS]
)
def test_every_writer_of_user_text_escapes(tmp_path, writer):
    language, write = WRITERS[writer]
    if writer == "svg-system" and not HAS_DOT:
        pytest.skip("system Graphviz is not installed")
    _rule(language, write(tmp_path), tmp_path)
