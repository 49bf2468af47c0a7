"""Headless Chromium for the console's browser tests: Debian's `chromium` (installed by
`make browser`), driven by Playwright for Python; never a browser Playwright downloads."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = os.environ.get("CONSOLE_SCREENSHOTS", "")
"""A folder to save page screenshots in (docs/console for the README); empty: none saved."""


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A headless Chromium; fails (does not skip) when it is not installed."""
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
        )
        try:
            yield browser
        finally:
            await browser.close()


def screenshot_path(name: str) -> str | None:
    """Where to save a screenshot of a page, when screenshots were asked for."""
    if not SCREENSHOTS:
        return None
    folder = Path(SCREENSHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder / f"{name}.png")
