"""Open an evaluation report (index.html) in headless Chromium and save a PNG screenshot.

Usage::

    python scripts/screenshot_report.py REPORT_DIR/index.html [-o docs/figures/report-screenshot.png]
        [--width 1280] [--height 2400] [--browser chromium]

Chromium is not a caloforge dependency; on Debian ``apt-get install -y chromium`` provides it.
The page is loaded from a file:// URL with networking disabled, which also proves that the
report needs no server and no external resource.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)


def find_browser(name: str | None) -> str:
    for candidate in [name] if name else BROWSERS:
        path = shutil.which(candidate)
        if path:
            return path
    sys.exit(
        "no Chromium found; install it (Debian: apt-get install -y chromium) or pass --browser"
    )


def screenshot(html: Path, png: Path, *, width: int, height: int, browser: str) -> Path:
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        cmd = [
            browser, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
            f"--screenshot={png.resolve()}", html.resolve().as_uri(),
        ]  # fmt: skip
        subprocess.run(cmd, check=True, timeout=180, capture_output=True)
    if not png.is_file():
        sys.exit(f"Chromium ran but wrote no screenshot to {png}")
    return png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="the report's index.html")
    parser.add_argument(
        "-o", "--output", type=Path, default=Path("docs/figures/report-screenshot.png")
    )
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2400)
    parser.add_argument("--browser", default=None, help="browser executable (default: search)")
    args = parser.parse_args()
    if not args.html.is_file():
        sys.exit(f"{args.html}: no such file")
    out = screenshot(
        args.html, args.output, width=args.width, height=args.height,
        browser=find_browser(args.browser),
    )  # fmt: skip
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
