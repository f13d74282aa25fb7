"""``archbuild serve`` in a real browser (headless Chromium): each save of the spec on disk
redraws the open page, its folds kept; a broken key is listed in place (file:line:col, the
message, the line), over the greyed last good drawing, and clicking it selects the node it names;
fixing it brings the drawing back; a save of the ``extends`` base redraws too. Truths: the
spec loaded in this process (its totals), ``archbuild validate`` (the problem)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

import archbuilder

from .test_interactive import browser, needs_browser  # noqa: F401 - the module's Chromium fixture
from .test_serve import NET, project, serving  # noqa: F401 - project: a fixture

pytestmark = [needs_browser, pytest.mark.slow]  # a server and a browser: about 10 s


def version(page) -> int:
    return int(page.execute_script("return document.body.dataset.version || '0'"))


def saved(page, path, text: str, timeout_s: float = 10) -> None:
    """Write ``text`` to ``path`` and wait until the page has drawn what followed."""
    before = version(page)
    path.write_text(text)
    deadline = time.monotonic() + timeout_s
    while version(page) <= before:
        assert time.monotonic() < deadline, "the page was not updated"
        time.sleep(0.02)


def totals(page) -> str:
    return page.execute_script("return document.getElementById('totals').textContent")


def expected_totals(path) -> str:
    params, _ = archbuilder.lower(archbuilder.load_spec(path)).total()
    return f"{params:,} params"


def drawn(page) -> list[str]:
    return page.execute_script(
        "return [...document.querySelectorAll('#view [data-id]')].map(e => e.dataset.id)"
    )


def test_a_live_edit_redraws_in_place(browser, project):  # noqa: F811 - the fixture
    spec = project / "net.yaml"
    with serving(project, "net.yaml") as server:
        browser.get(server.url)
        deadline = time.monotonic() + 10
        while version(browser) < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert expected_totals(spec) in totals(browser)
        browser.execute_script("window.archbuilderPage.reveal('mix.branch1x1')")  # unfold the block
        opened = drawn(browser)
        assert "mix.branch1x1" in opened
        view = browser.execute_script("return document.getElementById('view').getAttribute('transform')")

        saved(browser, spec, NET.replace("ch1x1: 8", "ch1x1: 24"))  # a width
        assert expected_totals(spec) in totals(browser)
        assert "mix.branch1x1" in drawn(browser)  # still unfolded
        assert (
            browser.execute_script("return document.querySelector('.selected').dataset.id") == "mix.branch1x1"
        )
        assert (
            browser.execute_script("return document.getElementById('view').getAttribute('transform')") == view
        )
        good = totals(browser)

        saved(browser, spec, NET.replace("ch1x1: 8", "chx1x1: 24"))  # a broken key
        validated = subprocess.run(
            [sys.executable, "-m", "archbuilder", "validate", "net.yaml"],
            cwd=project,
            capture_output=True,
            text=True,
        )
        problem = validated.stderr.splitlines()[1].strip()  # net.yaml:4:9: blocks.mix.chx1x1: unknown key ...
        where, said = problem.split(": ", 1)
        listed = browser.execute_script(
            "return [...document.querySelectorAll('#problems button.problem')].map(b => ["
            "b.querySelector('.where').textContent, b.children[1].textContent, b.querySelector('pre').textContent])"
        )
        assert listed == [[where, said, "   4    mix: {chx1x1: 24}"]]
        assert browser.execute_script("return document.body.classList.contains('stale')")
        assert totals(browser) == good and "mix.branch1x1" in drawn(browser)  # the last good drawing
        browser.execute_script("document.querySelector('#problems button.problem').click()")
        assert browser.execute_script("return document.querySelector('.selected').dataset.id").startswith(
            "mix"
        )

        saved(browser, spec, NET.replace("ch1x1: 8", "ch1x1: 24"))  # fixed
        assert browser.execute_script("return document.getElementById('problems')") is None
        assert not browser.execute_script("return document.body.classList.contains('stale')")
        assert totals(browser) == good and "mix.branch1x1" in drawn(browser)

        base = project / "base.yaml"
        saved(browser, base, base.read_text().replace("out: 16", "out: 32"))  # the extends base
        assert expected_totals(spec) in totals(browser) and totals(browser) != good
        assert "mix.branch1x1" in drawn(browser)
        assert browser.get_log("browser") == []  # no script error along the way
