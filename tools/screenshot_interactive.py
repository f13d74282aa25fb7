"""Screenshots of the interactive page in a few states, for docs/diagrams/ (needs chromium).

    python tools/screenshot_interactive.py

Opens the googlenet page in headless Chromium, then saves: the page as it opens (block
detail), 4a unfolded with one branch unfolded and a layer inspected, a search, and a compare
view against googlenet-factorized.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.keys import Keys

from archbuilder.render import render_diagram

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "diagrams"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--window-size=1400,900")  # fmt: skip


def _driver(profile: str) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def _click(driver: webdriver.Chrome, node_id: str) -> None:
    element = driver.find_element("css selector", f'[data-id="{node_id}"]')
    driver.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", element)
    time.sleep(0.1)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        page = render_diagram(ROOT / "specs" / "googlenet.yaml", Path(folder) / "googlenet.html")
        compare = render_diagram(
            ROOT / "specs" / "googlenet-factorized.yaml",
            Path(folder) / "compare.html",
            compare=ROOT / "specs" / "googlenet.yaml",
        )
        driver = _driver(str(Path(folder) / "profile"))
        try:
            driver.get(page.as_uri())
            driver.save_screenshot(str(OUTPUT / "interactive-googlenet.png"))
            driver.execute_script("window.archbuilderPage.reveal('3b')")
            for node_id in ("4a", "4a.branch3x3", "4a.branch3x3.conv"):
                _click(driver, node_id)
            driver.save_screenshot(str(OUTPUT / "interactive-googlenet-4a.png"))
            driver.find_element("id", "collapse-all").click()
            driver.find_element("id", "find").send_keys("branch3x3.reduce", Keys.ARROW_DOWN)
            driver.save_screenshot(str(OUTPUT / "interactive-googlenet-find.png"))
            driver.get(compare.as_uri())
            driver.save_screenshot(str(OUTPUT / "interactive-compare.png"))
        finally:
            driver.quit()
    for name in ("googlenet", "googlenet-4a", "googlenet-find", "compare"):
        print(f"wrote docs/diagrams/interactive-{name}.png")


if __name__ == "__main__":
    main()
