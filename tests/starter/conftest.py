"""A real headless Chromium for the pages' browser tests.

Chromium comes from Debian (`apt-get install -y chromium`) and the driver from PyPI
(`pip install playwright`); `playwright install` is never run, so no browser is downloaded.
A missing browser fails these tests with those commands: a skipped browser test would look green.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--no-proxy-server",  # the app is on 127.0.0.1; a proxy from the environment must not apply
]


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install it with `apt-get install -y chromium`"
            " (Debian's package; `make install` does this when it is missing)",
            pytrace=False,
        )
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.fail(
            "The playwright Python package is missing: `.venv/bin/pip install playwright`"
            " (or `make install`). Never `playwright install`: it downloads browsers.",
            pytrace=False,
        )
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        await browser.close()
