"""report.html in a real browser: headless Chromium (Debian's chromium + chromium-driver) driven by selenium.

Without the browser this test FAILS, naming the command that installs it (.ci/run installs it and runs
``make test-browser``). Marked slow (a browser start, ~3 s): ``make test-browser``, ``make test-slow``,
``make test-all``.
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
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


def _finite_first(values: list[float], reverse: bool) -> list[float]:
    """The order the page sorts a column in: numbers ascending or descending, empty cells (NaN) last."""
    finite = sorted((v for v in values if not np.isnan(v)), reverse=reverse)
    return finite + [v for v in values if np.isnan(v)]


def _check_report(browser, page: Path, classes: list[str]) -> None:
    """Open ``page``: no console error, every class in the table, AP sorting, the filter, a drawn
    page, Grad-CAM pictures in the gallery."""
    from PIL import Image
    from selenium.webdriver.common.by import By

    browser.get(page.resolve().as_uri())
    assert browser.title.startswith("Evaluation: run ")
    errors = [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
    assert errors == []  # no script error, no blocked (network) request

    before = _ap_column(browser)
    assert sorted(name for name, _, _ in before) == sorted(classes)  # every class, once
    values = [v for _, v, _ in before]
    header = browser.find_element(By.CSS_SELECTOR, '#per-class th[data-key="AP"]')
    header.click()
    descending = _ap_column(browser)
    assert [v for _, v, _ in descending] == pytest.approx(_finite_first(values, reverse=True), nan_ok=True)
    assert header.get_attribute("aria-sort") == "descending"
    header.click()
    assert [v for _, v, _ in _ap_column(browser)] == pytest.approx(_finite_first(values, reverse=False), nan_ok=True)

    wanted = classes[len(classes) // 2]
    browser.find_element(By.ID, "class-filter").send_keys(wanted)
    shown = [name for name, _, visible in _ap_column(browser) if visible]
    assert wanted in shown and all(wanted.lower() in name.lower() for name in shown)
    assert browser.get_log("browser") == []

    pixels = np.asarray(Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("L"), dtype=float)
    assert pixels.std() > 10  # not a blank page: text, tables and charts drawn
    sections = browser.execute_script(
        """return Array.from(document.querySelectorAll("h3[data-gallery]")).map(h => {
            let cams = 0, node = h.nextElementSibling;
            while (node && node.tagName !== "H3") { cams += node.querySelectorAll("img.cam").length;
                node = node.nextElementSibling; }
            return cams; });"""
    )
    assert sum(cams > 0 for cams in sections) >= min(3, len(sections)) > 0  # Grad-CAM pictures per class


def test_report_in_headless_chromium(browser, evaluated_report: Path, classes: list[str]) -> None:
    _check_report(browser, evaluated_report / "report.html", classes)


@pytest.mark.skipif(not os.environ.get("RAL_REPORT"), reason="set RAL_REPORT=<eval folder> to check its report.html")
def test_a_given_report_in_headless_chromium(browser) -> None:
    """``RAL_REPORT=runs/demo/ral/eval make test-browser``: the same checks on a real evaluation."""
    folder = Path(os.environ["RAL_REPORT"])
    _check_report(browser, folder / "report.html", pd.read_csv(folder / "per_class.csv")["class"].astype(str).tolist())
