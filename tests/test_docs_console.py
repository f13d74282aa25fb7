"""The ```console blocks of the reference pages print what the pages show.

Each `$ archbuild ...` line runs (as ``python -m archbuilder``) in a folder of its page
holding a copy of specs/ and schema/ (and the BVLC deploy fixture), in page order; its
output (stdout, then stderr) must be the lines under it, where a line ``...`` (or ``…``)
stands for any number of lines, and a ``…`` inside a line for any text; ``| head -N`` keeps the first N lines. ``$ echo $?``
checks the exit status of the command before it; ``$ head -N FILE`` shows a file written
by an earlier command. The yaml files the blocks read are the pages' own: a yaml block
under a line that names it ("`base.yaml`:") is written as that file, and the few files
spec.md describes in prose are written as it describes them (DESCRIBED). A block that needs
what the test machine lacks or has (no Graphviz, no onnxscript, a downloaded file) is
listed in NOT_RUN with the reason, so every other block of these pages is checked.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT
from .test_docs import DOCS, Fence, fences
from .test_import_caffe import DEPLOY

PAGES = ("cli.md", "diagrams.md", "variants.md", "import.md", "spec.md")

# (page, the block's first command) -> why the test does not run it
NOT_RUN = {
    ("cli.md", "archbuild render specs/googlenet.yaml -o googlenet.png --engine system"): "shows no dot",
    ("cli.md", "archbuild export specs/googlenet.yaml"): "shows a machine without onnxscript",
    ("cli.md", "archbuild export specs/googlenet.yaml --num-classes 10"): "three exports: test_export",
    ("cli.md", "archbuild bench specs/googlenet-torchvision.yaml --batch 8 --dtype bf16"): "timings",
    ("cli.md", "archbuild bench googlenet --batch 8"): "timings: test_bench_reference",
    ("diagrams.md", "archbuild render model.dot -o model.dot"): "reads model.dot, from elsewhere",
    ("diagrams.md", "python -m tools.docs diagrams"): "a tool, not archbuild",
    ("variants.md", "archbuild emit specs/googlenet.yaml --variant naive -o specs/googlenet-naive.yaml"): (
        "the shipped variants' commands, no output shown"
    ),
    ("import.md", "archbuild export specs/googlenet-v1-original.yaml -o v1.onnx"): "test_import_onnx",
}


# The files spec.md's blocks read. A yaml block is written under the name the line before it
# gives ("... `base.yaml`:"). The rest the page describes in prose, written here as it says:
# file -> (the `name:` of the page's yaml block it is, and an edit) or its whole text.
DESCRIBED: dict[str, tuple[str, tuple[str, str] | None] | str] = {
    # "With `paddin: 1` for `padding: 1` in the 3×3 conv above"
    "templated.yaml": ("templated", ("padding: 1}", "paddin: 1}")),
    "deep.yaml": ("deep", None),
    "unclosed.yaml": ("unclosed", None),
    "mini.yaml": ("mini-inception", None),
    # "`tiny.yaml` as `extends: base.yaml` and `input: {height: 1, width: 1}`"
    "tiny.yaml": "extends: base.yaml\ninput: {height: 1, width: 1}\n",
    # "A missing file, and a cycle (`a.yaml` extends `b.yaml`, which extends `a.yaml`)"
    "m.yaml": "extends: models/base.yaml\n",
    "a.yaml": "extends: b.yaml\n",
    "b.yaml": "extends: a.yaml\n",
}
LABEL = re.compile(r"`([\w.-]+\.yaml)`\)?:$")


def page_files(page: str) -> dict[str, str]:
    """The yaml files a page's console blocks read, by name: its labelled yaml blocks, and
    (on spec.md) the files its prose describes."""
    lines = (DOCS / page).read_text(encoding="utf-8").splitlines()
    files, by_spec_name = {}, {}
    for block in fences(DOCS / page):
        if block.lang != "yaml":
            continue
        before = next((line for line in reversed(lines[: block.line - 1]) if line.strip()), "")
        if label := LABEL.search(before):
            files[label[1]] = block.text
        if spec_name := re.search(r"^name: (\S+)$", block.text, re.MULTILINE):
            by_spec_name[spec_name[1]] = block.text
    if page == "spec.md":
        for name, source in DESCRIBED.items():
            if isinstance(source, str):
                files[name] = source
            else:
                text = by_spec_name[source[0]]
                if source[1]:
                    assert source[1][0] in text, f"{name}: the block no longer has {source[1][0]!r}"
                    text = text.replace(*source[1], 1)
                files[name] = text
    return files


def blocks() -> list[Fence]:
    return [b for page in PAGES for b in fences(DOCS / page) if b.lang == "console"]


def key(block: Fence) -> tuple[str, str]:
    return block.file, block.text.split("\n", 1)[0].removeprefix("$ ")


def commands(block: Fence) -> list[tuple[str, list[str]]]:
    """(command, the lines shown under it) for each `$ ` line of the block."""
    found: list[tuple[str, list[str]]] = []
    for line in block.text.rstrip("\n").split("\n"):
        if line.startswith("$ "):
            found.append((line[2:], []))
        else:
            assert found, f"{block.id}: output before any command"
            found[-1][1].append(line)
    return found


def matches(got: list[str], want: list[str]) -> bool:
    """``want`` line by line, where ``...`` stands for any run of lines (none included)."""
    if not want:
        return not got
    if want[0].strip() in ("...", "…"):
        return any(matches(got[i:], want[1:]) for i in range(len(got) + 1))
    return bool(got) and same_line(got[0], want[0]) and matches(got[1:], want[1:])


def same_line(got: str, want: str) -> bool:
    """Equal, where a ``…`` inside the shown line stands for any text (a path, or the
    cut-off a diff itself marks with ``…``)."""
    pattern = ".*".join(re.escape(part) for part in want.rstrip().split("…"))
    return re.fullmatch(pattern, got.rstrip()) is not None


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """One folder per page, shared by its blocks in page order (a block may read what an
    earlier one wrote), holding specs/, schema/, an empty diagrams/, the BVLC fixture and
    the yaml files of :func:`page_files` (spec.md's, which other pages cite, and its own)."""
    made: dict[str, Path] = {}
    for page in PAGES:
        folder = made[page] = tmp_path_factory.mktemp(page.removesuffix(".md"))
        for name in ("specs", "schema"):
            shutil.copytree(ROOT / name, folder / name)
        (folder / "diagrams").mkdir()  # cli.md renders into diagrams/
        for name, text in (page_files("spec.md") | page_files(page)).items():  # spec.md's are for all
            (folder / name).write_text(text, encoding="utf-8")
        shutil.copy(DEPLOY, folder)
    return made


def run(command: str, folder: Path) -> tuple[int, list[str]]:
    """The exit status and the output lines of one command of a block."""
    command, _, pipe = command.partition(" | ")
    args = shlex.split(command)
    if args[0] == "head":
        return 0, (folder / args[2]).read_text(encoding="utf-8").splitlines()[: int(args[1][1:])]
    assert args[0] == "archbuild", f"{command!r} is not archbuild (add its block to NOT_RUN)"
    result = subprocess.run(
        [sys.executable, "-m", "archbuilder", *args[1:]], cwd=folder, capture_output=True, text=True
    )
    lines = (result.stdout + result.stderr).rstrip("\n").split("\n")
    if pipe:
        head, count = shlex.split(pipe)
        assert head == "head", pipe
        lines = result.stdout.splitlines()[: int(count[1:])]
    return result.returncode, lines


@pytest.mark.slow  # a subprocess per command: about 2 min for the pages on 2 cores
@pytest.mark.parametrize("block", [b for b in blocks() if key(b) not in NOT_RUN], ids=lambda b: b.id)
def test_the_block_prints_what_the_page_shows(block, folders):
    folder, status = folders[block.file], None
    for command, want in commands(block):
        if command == "echo $?":
            assert want == [str(status)], f"{block.id}: the page shows exit status {want}; it was {status}"
            continue
        status, got = run(command, folder)
        shown, printed = "\n".join(want), "\n".join(got)
        assert matches(got, want), (
            f"{block.id}: $ {command}\nthe page shows:\n{shown}\nit printed:\n{printed}"
        )


def test_not_run_names_real_blocks():
    keys = {key(b) for b in blocks()}
    assert sorted(set(NOT_RUN) - keys) == []


def test_the_wildcard_matches_only_what_it_should():
    assert matches(["a", "b", "c"], ["a", "...", "c"]) and matches(["a", "c"], ["a", "...", "c"])
    assert not matches(["a", "b"], ["a", "...", "c"]) and not matches(["a", "x"], ["a", "b"])
