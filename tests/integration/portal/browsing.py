"""A page in Debian's headless chromium (Playwright) on a running demo, which asks no
host but the server under test for anything: every request is recorded and checked
when the page closes."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Page, ViewportSize, sync_playwright

from tests.integration.demo_process import Demo

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WIDE = ViewportSize(width=1280, height=900)
PHONE = ViewportSize(width=390, height=844)  # a phone, portrait


@contextmanager
def browsing(demo: Demo, wait_ms: int, seen: list[str]) -> Iterator[Page]:
    """A fresh browser's page at 1280 px; `seen` collects the URLs it asked for."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = browser.new_context(viewport=WIDE, base_url=demo.url)
        context.on("request", lambda r: seen.append(r.url))
        context.set_default_timeout(wait_ms)
        page = context.new_page()
        page.on("dialog", lambda d: d.accept())  # confirmations ("Release now?")
        try:
            yield page
        finally:
            browser.close()
    ours = urlsplit(demo.url).netloc
    elsewhere = sorted(
        {u for u in seen if urlsplit(u).netloc != ours and not u.startswith("data:")}
    )
    assert not elsewhere, f"pages asked other hosts: {elsewhere}"


def chromium_installed() -> bool:
    return Path(CHROMIUM).exists()
