"""The HTML power report in a real headless Chromium: it loads from a file with no network
request, its three plots draw, its tables have their rows, and a full-page screenshot is kept
(in ``VIGIL_SCREENSHOT_DIR`` when set)."""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _tools import require_module, require_tool

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "report" / "power.json"
PLOTS = ("plot-timeline", "plot-components", "plot-tiering")
WIDTH = 1280


def load() -> dict[str, Any]:
    report: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return report


def write(report: dict[str, Any], path: Path) -> str:
    """The report rendered to ``path``; its file:// URL."""
    from agent.report.html import render_html

    path.write_text(render_html(report), encoding="utf-8")
    return path.resolve().as_uri()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Debian's headless Chromium through its own chromedriver (Selenium downloads nothing)."""
    chromium = require_tool("chromium")
    chromedriver = require_tool("chromedriver")
    require_module("selenium")
    require_module("matplotlib")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--no-first-run",
        "--no-default-browser-check",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        f"--window-size={WIDTH},1000",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def wait_until_loaded(driver: Any, timeout_s: float = 30.0) -> None:
    """Until the page's load has finished: ``get`` can return once the navigation commits,
    before the load event, on a busy machine (seen once: ``readyState`` still ``loading``)."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout_s).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


def screenshot(driver: Any, path: Path) -> bytes:
    """A PNG of the whole page, beyond the window, at ``WIDTH`` CSS pixels."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )
    try:
        shot = driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
        )
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    png = base64.b64decode(shot["data"])
    path.write_bytes(png)
    return png


def test_the_report_in_a_headless_browser(browser: Any, tmp_path: Path) -> None:
    report = load()
    browser.get(write(report, tmp_path / "power-report.html"))
    wait_until_loaded(browser)

    assert browser.title.startswith("vigil power report")
    assert browser.find_element("css selector", "h1").text == "vigil power report"
    assert browser.find_element("css selector", "#banner.banner-estimated").is_displayed()

    # Nothing was fetched: no resource at all, and none over the network.
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert not [r for r in resources if r.split(":", 1)[0] in ("http", "https", "ws", "wss")]
    assert resources == []
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []  # no blocked fetch, no broken reference

    for ident in PLOTS:
        box = browser.execute_script(
            """
            const svg = document.querySelector('#' + arguments[0] + ' > svg');
            const r = svg.getBoundingClientRect();
            const drawn = [...svg.querySelectorAll('path')].filter(p => {
              const b = p.getBBox(); return b.width > 0 || b.height > 0; }).length;
            return {width: r.width, height: r.height, drawn: drawn,
                    glyphs: svg.querySelectorAll('use').length};
            """,
            ident,
        )
        assert box["width"] > 600 and box["height"] > 100, (ident, box)
        assert box["drawn"] > 10, (ident, box)
        assert box["glyphs"] > 10, (ident, box)  # the text, drawn as paths

    def rows(selector: str) -> int:
        return int(browser.execute_script(f"return document.querySelectorAll('{selector}').length"))

    assert rows("#components tbody tr") == len(report["components"])
    assert rows("#components tfoot tr.total") == 1
    assert rows("#wakes tbody tr") == len(report["wakes"]["items"])
    assert rows("#assumptions li") == len(report["tiering"]["assumptions"])
    assert rows("#method li") == len(report["method"])
    last = browser.find_element("css selector", "#components tbody tr:last-child th")
    assert last.text == "unattributed"

    # The page fits its width: nothing spills sideways.
    scroll = browser.execute_script("return document.documentElement.scrollWidth")
    assert scroll <= WIDTH

    folder = Path(os.environ.get("VIGIL_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    png = screenshot(browser, folder / "power-report.png")
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 50_000

    import matplotlib.image
    import numpy as np

    pixels = matplotlib.image.imread(io.BytesIO(png), format="png")
    height, width = pixels.shape[:2]
    assert width == WIDTH and height > 2000  # the whole page, not the window
    rgb = (pixels[..., :3] * 255).astype(np.uint32)
    colours = np.unique((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2])
    assert len(colours) > 200  # text, tables and plots, not a blank page


def test_hostile_strings_do_not_run(browser: Any, tmp_path: Path) -> None:
    payload = "<script>window.pwned = 1</script>"
    report = load()
    report["wakes"]["items"][0]["culprit"] = payload
    report["wakes"]["items"][1]["cause"] = '"><img src=x onerror="window.pwned = 2">'
    report["device"]["host"] = "</title>" + payload
    browser.get(write(report, tmp_path / "hostile.html"))
    wait_until_loaded(browser)  # (a script not run yet would pass the first check)

    assert browser.execute_script("return typeof window.pwned") == "undefined"
    assert browser.execute_script("return document.scripts.length") == 0
    assert browser.execute_script("return document.images.length") == 0
    assert browser.title.startswith("vigil power report — </title><script>")
    culprit = browser.find_element("css selector", "#wakes tbody tr:first-child td.culprit")
    assert culprit.text == payload
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0


def test_the_report_of_a_real_replay_in_the_browser(
    browser: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``vigil demo`` then ``vigil report power --html``: the page a user gets."""
    from agent.cli import main

    db, page = tmp_path / "demo.db", tmp_path / "demo-report.html"
    assert main(["demo", "--db", str(db), "-q"]) == 0
    assert main(["report", "power", "--db", str(db), "--html", str(page)]) == 0
    capsys.readouterr()
    browser.get(page.resolve().as_uri())
    wait_until_loaded(browser)
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    for ident in PLOTS:
        drawn = browser.execute_script(
            "return [...document.querySelectorAll('#' + arguments[0] + ' > svg path')]"
            ".filter(p => { const b = p.getBBox(); return b.width > 0 || b.height > 0; }).length",
            ident,
        )
        if ident == "plot-tiering":  # no wake measured in a demo without --wake: said instead
            assert drawn == 0 or drawn > 10
            continue
        assert drawn > 10, ident
    text = browser.find_element("css selector", "body").text
    assert "unattributed" in text and "ESTIMATE" in text
    folder = Path(os.environ.get("VIGIL_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    assert screenshot(browser, folder / "demo-report.png").startswith(b"\x89PNG")
