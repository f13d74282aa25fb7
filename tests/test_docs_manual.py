"""docs/getting-started.md and docs/experiments.md (and python-api.md's examples of the same
features) run as written.

Every ```python block runs, in a fresh namespace, in a folder holding a copy of specs/ and
the getting-started spec saved as my-net.yaml (later blocks of a page may read the files
earlier ones wrote); a block followed by a ```text sample of training lines must print lines
like it. Every ```console block of getting-started.md runs its `$ archbuild`
command and must print exactly what the page shows.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT
from .test_docs import DOCS, Fence, fences

PAGES = ("getting-started.md", "experiments.md")
# python-api.md's examples of the same features (the rest of that page is compiled by test_docs)
API_HEADINGS = (
    "`FeatureModel`",
    "`reset_classifier(model, num_classes) -> ArchModel`",
    "`load_checkpoint(path, *, max_param_bytes=4 GiB) -> Checkpoint`",
)


def blocks(lang: str, page: str | None = None) -> list[Fence]:
    return [b for p in PAGES if page in (None, p) for b in fences(DOCS / p) if b.lang == lang]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("manual")
    shutil.copytree(ROOT / "specs", folder / "specs")
    (folder / "my-net.yaml").write_text(my_net().text)
    return folder


def my_net() -> Fence:
    specs = [b for b in blocks("yaml", "getting-started.md") if b.text.startswith("format: 1")]
    assert len(specs) == 1
    return specs[0]


def run_block(block: Fence, folder: Path, monkeypatch) -> str:
    monkeypatch.chdir(folder)
    output = io.StringIO()
    with contextlib.redirect_stdout(output), _one_thread():
        exec(compile(block.text, block.id, "exec"), {"__name__": "__docs__"})
    return output.getvalue()


@contextlib.contextmanager
def _one_thread():
    """The pages train 8×8-pixel models, whose many tiny ops cost less than the cores' thread
    synchronization: with two threads on a CPU shared with other work, getting-started's
    training took 150 s an epoch against 13 s with one thread (same load, same machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def api_blocks() -> list[Fence]:
    found = [b for b in fences(DOCS / "python-api.md") if b.lang == "python" and b.heading in API_HEADINGS]
    assert len(found) == len(API_HEADINGS)
    return found


@pytest.fixture(scope="module")
def ran() -> set[str]:
    """The blocks already run in this process's workdir."""
    return set()


@pytest.mark.parametrize("block", blocks("python") + api_blocks(), ids=lambda block: block.id)
def test_python_block_runs(block, workdir, ran, monkeypatch):
    # A page's later blocks read what its earlier ones wrote (getting-started loads the
    # checkpoint its training block saved); pytest-xdist may have run those on another
    # worker, so any not run here run first.
    page = [b for b in blocks("python") + api_blocks() if b.file == block.file]
    for earlier in page[: page.index(block)]:
        if earlier.id not in ran:
            run_block(earlier, workdir, monkeypatch)
            ran.add(earlier.id)
    printed = run_block(block, workdir, monkeypatch)
    ran.add(block.id)
    shown = sample_output(block)
    if shown is not None:
        assert_like_the_sample(printed, shown)


TRAINING_LINE = re.compile(r"epoch (\d+): loss (\d+\.\d{3}), test accuracy (\d+\.\d)%")


def sample_output(block: Fence) -> Fence | None:
    """The ```text block right after a block that trains, showing what it prints."""
    page = fences(DOCS / block.file)
    index = page.index(block)
    after = page[index + 1] if index + 1 < len(page) else None
    return after if after and after.lang == "text" and TRAINING_LINE.match(after.text) else None


def assert_like_the_sample(printed: str, shown: Fence) -> None:
    """Training prints the sample's lines, epoch by epoch, with losses and accuracies near
    the sample's (one thread here; the figures move a little with threads and CPUs)."""
    got = [TRAINING_LINE.fullmatch(line) for line in printed.strip().splitlines()]
    want = [TRAINING_LINE.fullmatch(line) for line in shown.text.strip().splitlines()]
    assert all(want), f"{shown.id}: a line of the sample is not a training line"
    assert all(got) and len(got) == len(want), (
        f"{shown.id} shows {shown.text!r}; the code printed {printed!r}"
    )
    for g, w in zip(got, want, strict=True):
        assert g[1] == w[1], printed
        assert abs(float(g[2]) - float(w[2])) <= 0.05 + 0.1 * float(w[2]), (g[0], w[0])
        assert abs(float(g[3]) - float(w[3])) <= 3.0, (g[0], w[0])


def test_the_training_sample_is_checked():
    """getting-started.md's training block has its printed sample, so the test above compares them."""
    trains = [b for b in blocks("python", "getting-started.md") if "for epoch in range(5)" in b.text]
    assert len(trains) == 1 and sample_output(trains[0]) is not None


@pytest.mark.parametrize("block", blocks("console", "getting-started.md"), ids=lambda block: block.id)
def test_console_block_prints_what_the_page_shows(block, workdir):
    command, *expected = block.text.rstrip("\n").split("\n")
    assert command.startswith("$ archbuild ")
    args = shlex.split(command[2:])[1:]
    result = subprocess.run(
        [sys.executable, "-m", "archbuilder", *args], cwd=workdir, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip("\n").split("\n") == expected


def test_getting_started_error_is_the_real_one(workdir):
    page = (DOCS / "getting-started.md").read_text()
    shown = next(b for b in blocks("text", "getting-started.md") if "problem in spec" in b.text).text
    broken = workdir / "broken" / "my-net.yaml"
    broken.parent.mkdir(exist_ok=True)
    broken.write_text(my_net().text.replace("ch5x5red: 4", "ch5x5_red: 4"))
    assert "`ch5x5_red` instead of `ch5x5red` in block `3a`" in page
    result = subprocess.run(
        [sys.executable, "-m", "archbuilder", "validate", "my-net.yaml"],
        cwd=broken.parent,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == shown.strip()


def test_feature_info_output_is_the_real_one(workdir, monkeypatch):
    page = fences(DOCS / "experiments.md")
    index = next(i for i, b in enumerate(page) if "for feature in backbone.feature_info" in b.text)
    code, shown = page[index], page[index + 1]
    assert shown.lang == "text"
    assert run_block(code, workdir, monkeypatch) == shown.text
