"""Chromium on the IOC dashboard, for the browser tests (playwright driving Debian's chromium)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_browser() -> None:
    """Skips the test unless playwright and Chromium are installed (`make browser`)."""
    pytest.importorskip("playwright.async_api", reason="playwright is not installed (dev dependency)")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")


@asynccontextmanager
async def open_dashboard(reporting_url: str, query: str) -> AsyncIterator[tuple[Any, list[str], list[str]]]:
    """Chromium on `/dashboard?<query>` at 1920x1080: the page, its loads, and what failed
    (requests, script errors, and console errors such as a style or script the CSP refuses)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1920, "height": 1080})
            loads: list[str] = []
            page.on("load", lambda _: loads.append("load"))
            failed: list[str] = []
            page.on("requestfailed", lambda request: failed.append(request.url))
            page.on("pageerror", lambda error: failed.append(str(error)))
            page.on("console", lambda message: failed.append(message.text) if message.type == "error" else None)
            await page.goto(f"{reporting_url}/dashboard?{query}")
            yield page, loads, failed
        finally:
            await browser.close()
