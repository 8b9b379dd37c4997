"""Headless Chromium (Debian's) driven by Playwright, with the network cut off."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def offline_page(allow: tuple[str, ...] = ("file://",)) -> Iterator[tuple[object, dict]]:
    """A page whose requests outside ``allow`` are aborted and recorded, with its console
    errors and page errors collected in the returned dict."""
    from playwright.sync_api import sync_playwright

    seen: dict[str, list[str]] = {"errors": [], "blocked": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})

            def route(r):
                if r.request.url.startswith(allow) or r.request.url.startswith("data:"):
                    r.continue_()
                else:
                    seen["blocked"].append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.on("console", lambda m: m.type == "error" and seen["errors"].append(m.text))
            page.on("pageerror", lambda e: seen["errors"].append(str(e)))
            yield page, seen
        finally:
            browser.close()
