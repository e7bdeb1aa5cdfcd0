"""Headless Debian Chromium driven by Playwright for Python (its wheel carries the driver; no
browser is ever downloaded: it runs /usr/bin/chromium). Shared by tests/browser, bench/html_page.py
and scripts/html_screenshots.py.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("NNVIZ_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 60_000


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -e '.[dev]')"
    return None


@dataclass
class Opened:
    """A loaded nnviz page and what it did while loading and afterwards."""

    page: Any
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def renders(self) -> int:
        return int(self.page.evaluate("document.body.dataset.renders || 0"))

    def wait_render(self, after: int) -> None:
        """Wait until the page has drawn more than `after` times. Polled from here: Playwright's
        in-page `wait_for_function` poller evaluates strings, which the page's CSP forbids."""
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while self.renders() <= after:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the page did not draw again within {TIMEOUT_MS} ms")
            self.page.wait_for_timeout(25)

    def node_count(self) -> int:
        return int(self.page.locator("#canvas g.node").count())


@contextmanager
def browser() -> Iterator[Any]:
    """A fresh headless Chromium with its own throw-away profile."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="nnviz-chromium-")
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                args=FLAGS,
                headless=True,
                viewport={"width": 1400, "height": 900},
            )
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def open_page(context: Any, path: Path, fragment: str = "") -> Opened:
    """Open `path` from file:// and wait for its first drawing."""
    page = context.new_page()
    opened = Opened(page)
    page.on("console", lambda m: m.type in ("error", "warning") and opened.errors.append(m.text))
    page.on("pageerror", lambda e: opened.errors.append(str(e)))
    page.on("request", lambda r: opened.requests.append(r.url))
    page.goto(path.resolve().as_uri() + fragment)
    opened.wait_render(0)
    return opened
