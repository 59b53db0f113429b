"""Screenshots of every hosted page in every language, for README: writes
docs/screenshots/<page>-<language>.png.

    .venv/bin/python scripts/screenshots.py

It serves the app over TLS on a throwaway SQLite database (one for each language)
holding the tour's user, signed in on a phone, and two third-party apps, one of
them allowed, and opens each page in Debian's Chromium as
tests/web/test_accessibility_browser.py does (the same tour). Chinese text needs a
CJK font (Debian: fonts-noto-cjk); without one the script stops rather than save
pictures of empty boxes."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tour lives beside the tests

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.support.browser import CHROMIUM, launch  # noqa: E402
from tests.support.databases import SqliteTemplates  # noqa: E402
from tests.support.page_tour import tour, tour_server  # noqa: E402
from userservice.i18n import LOCALES  # noqa: E402

OUT = ROOT / "docs" / "screenshots"


def _has_cjk_font() -> bool:
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return False
    found = subprocess.run(  # noqa: S603 - a fixed command
        [fc_list, ":lang=zh-cn", "family"], capture_output=True, text=True, check=False
    )
    return bool(found.stdout.strip())


def main() -> int:
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing: bash scripts/system-deps.sh", file=sys.stderr)
        return 1
    if not _has_cjk_font():
        print("no CJK font: apt-get install fonts-noto-cjk", file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    written = []
    for locale in LOCALES:
        # A fresh server for each language, so each shows the same account (an
        # earlier language's browser would otherwise be one more session on it).
        with tempfile.TemporaryDirectory() as scratch:
            directory = Path(scratch)
            url = SqliteTemplates(directory).fresh_url(directory)
            with tour_server(url, directory) as (base, pin), sync_playwright() as p:
                browser = launch(p, pin)
                try:
                    for stop, page in tour(browser, base, locale):
                        target = OUT / f"{stop.name}-{locale}.png"
                        page.screenshot(path=str(target), full_page=True)
                        written.append(target)
                finally:
                    browser.close()
    for path in written:
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
