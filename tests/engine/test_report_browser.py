"""report.html in a real browser: headless Chromium (Debian's chromium + chromium-driver) driven by selenium.

Without the browser this test FAILS, naming the command that installs it (.ci/run installs it and runs
``make test-browser``). Marked slow (a browser start, ~3 s): ``make test-browser``, ``make test-slow``,
``make test-all``.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

INSTALL = "apt-get install -y chromium chromium-driver"
FLAGS = (
    "--headless",
    "--no-sandbox",  # the tests may run as root (CI containers)
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
)


def _executable(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").is_file() else None)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A headless Chromium with its console log kept (``goog:loggingPrefs``), a fresh profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = _executable("chromium", "chromium-browser", "google-chrome")
    driver_path = _executable("chromedriver")
    if chromium is None or driver_path is None:
        pytest.fail(f"no Chromium / chromedriver found for the browser test of report.html; install them: {INSTALL}")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _ap_column(driver) -> list[tuple[str, float, bool]]:
    """(class, AP, shown) of each row of the per-class table, in page order (one round trip)."""
    rows = driver.execute_script(
        """const table = document.getElementById("per-class");
        const index = Array.from(table.tHead.rows[0].cells).findIndex(th => th.dataset.key === "AP");
        return Array.from(table.tBodies[0].rows).map(
            row => [row.dataset.class, row.cells[index].dataset.sort, row.offsetParent !== null]);"""
    )
    return [(name, float(value) if value else float("nan"), shown) for name, value, shown in rows]


def test_report_in_headless_chromium(browser, evaluated_report: Path, classes: list[str]) -> None:
    from PIL import Image
    from selenium.webdriver.common.by import By

    browser.get((evaluated_report / "report.html").resolve().as_uri())
    assert browser.title.startswith("Evaluation: run ")
    errors = [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
    assert errors == []  # no script error, no blocked (network) request

    before = _ap_column(browser)
    assert sorted(name for name, _, _ in before) == sorted(classes)  # every class, once
    header = browser.find_element(By.CSS_SELECTOR, '#per-class th[data-key="AP"]')
    header.click()
    descending = _ap_column(browser)
    assert [v for _, v, _ in descending] == sorted((v for _, v, _ in before), reverse=True)
    assert header.get_attribute("aria-sort") == "descending"
    header.click()
    ascending = _ap_column(browser)
    assert [name for name, _, _ in ascending] == [name for name, _, _ in descending][::-1]

    browser.find_element(By.ID, "class-filter").send_keys(classes[2][:3])
    assert [name for name, _, shown in _ap_column(browser) if shown] == [classes[2]]
    assert browser.get_log("browser") == []

    pixels = np.asarray(Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("L"), dtype=float)
    assert pixels.std() > 10  # not a blank page: text, tables and charts drawn
    assert browser.find_elements(By.CSS_SELECTOR, "img.cam")  # the Grad-CAM gallery is there
