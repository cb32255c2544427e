"""Screenshots of a report.html for the docs: its first screen and its gallery, in headless Chromium.

    python benchmarks/report_screenshots.py runs/ral/eval/test/report.html --out docs/img/report

writes ``<out>-top.png`` and ``<out>-gallery.png`` (1280 x 900 pixels). Needs Debian's chromium
and chromium-driver (``apt-get install -y chromium chromium-driver``) and selenium (the ``test`` extra).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("report", type=Path, help="a report.html")
    parser.add_argument("--out", default="docs/img/report", help="prefix of the two PNG files")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--driver", default="/usr/bin/chromedriver")
    args = parser.parse_args()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory() as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = args.chromium
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(args.driver), options=options)
        try:
            driver.get(args.report.resolve().as_uri())
            saved = driver.save_screenshot(f"{args.out}-top.png")
            driver.execute_script("document.getElementById('gallery').scrollIntoView()")
            saved = driver.save_screenshot(f"{args.out}-gallery.png") and saved
        finally:
            driver.quit()
    if not saved:  # selenium returns False instead of raising when it cannot write the file
        raise SystemExit(f"report_screenshots: could not write {args.out}-top.png / -gallery.png")
    print(f"wrote {args.out}-top.png, {args.out}-gallery.png")


if __name__ == "__main__":
    main()
