"""Browser tests: the real page in Debian's chromium, driven by Playwright (headless).

Playwright's own browser download cannot reach its host from these machines; ``make test``
installs ``/usr/bin/chromium`` with apt-get when it is missing (Makefile: ``chromium``), and
builds the page (``frontend/dist``) first."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "frontend" / "dist"
AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = os.environ.get("TICKSTEP_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).is_file(), f"{CHROMIUM} missing: make chromium (apt-get install chromium)"
    assert (DIST / "index.html").is_file(), "frontend/dist missing: make frontend"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield browser
        finally:
            browser.close()
