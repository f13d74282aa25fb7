"""The interactive page keeps the view in hand, read from the geometry Chromium reports.

Every check compares `getBoundingClientRect` boxes of the drawing (or a node in it) with the
drawing area, the `#canvas` element left of the inspector panel.
"""

from __future__ import annotations

import pytest

from .conftest import GOOGLENET, SPECS
from .test_interactive import browser, click, needs_browser, open_page  # noqa: F401 (browser is a fixture)

MIN_SCALE = 0.35  # page.js: below this the page fits the drawing's width instead of all of it
SLACK = 1.5  # px of rounding between the boxes the browser reports

pytestmark = needs_browser


@pytest.fixture
def page(browser, tmp_path):  # noqa: F811 (the imported fixture)
    browser.set_window_size(1280, 800)
    open_page(browser, tmp_path, GOOGLENET)
    return browser


def box(driver, selector: str) -> dict[str, float]:
    return driver.execute_script(
        "const r = document.querySelector(arguments[0]).getBoundingClientRect();"
        "return {left: r.left, top: r.top, right: r.right, bottom: r.bottom};",
        selector,
    )


def scale(driver) -> float:
    return driver.execute_script("return document.getElementById('view').getCTM().a")


def inside(
    inner: dict[str, float], outer: dict[str, float], sides=("left", "top", "right", "bottom")
) -> bool:
    low = {"left", "top"}
    return all(inner[s] >= outer[s] - SLACK if s in low else inner[s] <= outer[s] + SLACK for s in sides)


def assert_fitted(driver) -> None:
    """The whole drawing in the drawing area; or, when that would take a scale under the
    readable minimum, its whole width from its top down."""
    drawing, area = box(driver, "#view"), box(driver, "#canvas")
    assert inside(drawing, area, ("left", "top", "right")), (drawing, area)
    if not inside(drawing, area):  # then even the minimum scale would not fit its height
        unscaled = (drawing["bottom"] - drawing["top"]) / scale(driver)
        assert unscaled * MIN_SCALE > area["bottom"] - area["top"], (drawing, area, scale(driver))


def test_the_page_opens_fitted(page):
    assert_fitted(page)
    assert scale(page) >= MIN_SCALE - 1e-6


def test_expand_all_and_collapse_all_fit_the_drawing_again(page):
    page.find_element("id", "expand-all").click()
    assert_fitted(page)
    assert box(page, '[data-id="aux2"]')["right"] <= box(page, "#canvas")["right"] + SLACK
    page.find_element("id", "collapse-all").click()
    assert_fitted(page)
    assert inside(box(page, "#view"), box(page, "#canvas"))  # collapsed, googlenet fits whole
    assert scale(page) >= MIN_SCALE - 1e-6


def centre_point(driver) -> tuple[float, float]:
    """The drawing's coordinates under the centre of the drawing area."""
    return tuple(
        driver.execute_script(
            "const svg = document.getElementById('canvas'), r = svg.getBoundingClientRect();"
            "const p = svg.createSVGPoint(); p.x = r.left + r.width / 2; p.y = r.top + r.height / 2;"
            "const q = p.matrixTransform(document.getElementById('view').getScreenCTM().inverse());"
            "return [q.x, q.y];"
        )
    )


def test_zoom_buttons_and_100_percent_keep_the_centre_where_it_is(page):
    page.find_element("id", "expand-all").click()  # a drawing larger than the view
    for button, grows in (("zoom-in", True), ("zoom-out", False), ("zoom-out", False), ("zoom-100", None)):
        before, was = centre_point(page), scale(page)
        page.find_element("id", button).click()
        after, now = centre_point(page), scale(page)
        assert now == pytest.approx(1) if grows is None else (now > was) == grows, (button, was, now)
        # the same drawing point under the centre, to within 2 px on screen
        assert abs(after[0] - before[0]) * now <= 2 and abs(after[1] - before[1]) * now <= 2, button


@pytest.mark.parametrize("zoom", ["fit", "zoom-100"])
def test_unfolding_a_block_keeps_it_and_its_aux_head_in_view(page, zoom):
    page.find_element("id", zoom).click()
    click(page, "4a")  # 4a's output feeds aux1
    assert page.execute_script(
        "return document.querySelector('[data-id=\"4a\"]').classList.contains('frame')"
    )
    area = box(page, "#canvas")
    unfolded = page.execute_script(  # the whole frame, not only its title row
        "const r = document.querySelector('[data-id=\"4a\"] > rect').getBoundingClientRect();"
        "return {left: r.left, top: r.top, right: r.right, bottom: r.bottom};"
    )
    assert inside(unfolded, area), (unfolded, area)
    assert inside(box(page, '[data-id="aux1"]'), area), (box(page, '[data-id="aux1"]'), area)


DEEP = "Mixed_6b.branch7x7dbl.branch7x7dbl_5"  # the fifth layer down a branch of a rolled-up block


@pytest.mark.parametrize("choose", ["enter", "click"])
def test_find_closes_its_list_and_keeps_the_chosen_layers_block_title_in_view(browser, tmp_path, choose):  # noqa: F811
    from selenium.webdriver.common.keys import Keys

    browser.set_window_size(1280, 800)
    open_page(browser, tmp_path, SPECS / "inception-v3.yaml")
    browser.find_element("id", "zoom-100").click()  # reading at full size
    find = browser.find_element("id", "find")
    find.send_keys(DEEP)
    if choose == "enter":
        find.send_keys(Keys.ENTER)
    else:
        browser.execute_script(
            "document.querySelector('#hits li').dispatchEvent(new MouseEvent('mousedown', {bubbles: true}))"
        )
    assert not browser.find_element("id", "hits").is_displayed()
    assert browser.execute_script("return document.activeElement.id") == "find"  # still typing there
    area = box(browser, "#canvas")
    assert inside(box(browser, f'[data-id="{DEEP}"]'), area)
    title = box(browser, '[data-id="Mixed_6b"] > text.title')
    assert inside(title, area), (title, area)


def press(driver, *keys) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(*keys).perform()


def focused(driver) -> str | None:
    return driver.execute_script("return document.activeElement.dataset.id || null")


def focus_ring(driver, node_id: str) -> str:
    return driver.execute_script(
        'const s = getComputedStyle(document.querySelector(`[data-id="${arguments[0]}"] > rect`));'
        "return s.stroke + ' ' + s.strokeWidth;",
        node_id,
    )


def test_the_keyboard_reaches_folds_and_unfolds_nodes_with_a_visible_focus(page):
    from selenium.webdriver.common.keys import Keys

    page.find_element("id", "zoom-100").click()  # 5b starts out of view at full size
    unfocused = focus_ring(page, "5b")
    for _ in range(40):
        press(page, Keys.TAB)
        if focused(page) == "5b":
            break
    assert focused(page) == "5b"
    assert focus_ring(page, "5b") != unfocused
    assert inside(box(page, '[data-id="5b"]'), box(page, "#canvas"))
    press(page, Keys.ENTER)
    assert "5b.branch1x1" in page.execute_script(
        "return [...document.querySelectorAll('[data-type=\"branch\"]')].map(e => e.dataset.id)"
    )
    assert focused(page) == "5b"  # redrawn, and still where the keyboard was
    press(page, Keys.ENTER)
    assert page.execute_script("return document.querySelectorAll('[data-type=\"branch\"]').length") == 0


def test_escape_closes_find(page):
    from selenium.webdriver.common.keys import Keys

    find = page.find_element("id", "find")
    find.send_keys("4d")
    assert page.find_element("id", "hits").is_displayed()
    find.send_keys(Keys.ESCAPE)
    assert not page.find_element("id", "hits").is_displayed()
    assert page.execute_script("return document.activeElement.id") != "find"


def test_arrow_keys_walk_the_nodes_like_a_tree(page):
    from selenium.webdriver.common.keys import Keys

    order = page.execute_script(
        "return [...document.querySelectorAll('#view [tabindex]')].map(e => e.dataset.id)"
    )
    page.find_element("id", "zoom-100").click()
    press(page, Keys.TAB)
    assert focused(page) == order[0]
    press(page, Keys.ARROW_DOWN, Keys.ARROW_DOWN, Keys.ARROW_UP)
    assert focused(page) == order[1]
    press(page, *[Keys.ARROW_DOWN] * (order.index("3a") - 1))
    assert focused(page) == "3a"
    press(page, Keys.ARROW_RIGHT)  # unfolds 3a, focus stays on it
    assert focused(page) == "3a" and page.execute_script(
        "return document.querySelector('[data-id=\"3a\"]').classList.contains('frame')"
    )
    press(page, Keys.ARROW_DOWN)
    assert focused(page) == "3a.branch1x1"
    assert inside(box(page, '[data-id="3a.branch1x1"]'), box(page, "#canvas"))
    press(page, Keys.ARROW_LEFT)  # a folded branch: up to its block
    assert focused(page) == "3a"
    press(page, Keys.ARROW_LEFT)  # an unfolded block: folds it
    assert (
        focused(page) == "3a"
        and page.execute_script("return document.querySelectorAll('[data-type=\"branch\"]').length") == 0
    )
