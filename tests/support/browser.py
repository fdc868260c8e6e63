"""Browser tests' shared parts: an app served over real HTTP, Debian's Chromium, the widths
pages are looked at, and the accessibility check (axe-core)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import uvicorn
from axe_playwright_python.async_playwright import Axe
from fastapi import FastAPI
from playwright.async_api import Browser, Page, ViewportSize, async_playwright

from tests.conftest import free_port

CHROMIUM = Path("/usr/bin/chromium")
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
_AXE = Axe()


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """An app already started (its lifespan runs elsewhere) served on a free port; its URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium driven by Playwright (it never downloads a browser of its own)."""
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: run `make browser` (installs Debian's chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield launched
        finally:
            await launched.close()


async def assert_accessible(page: Page, name: str, *, scriptless: bool = False) -> None:
    """axe-core finds no serious or critical violation on the page (`scriptless`: and the page
    carries no script; axe-core itself runs in it, so JavaScript stays on)."""
    if scriptless:
        assert await page.locator("script").count() == 0, f"{name}: the page needs no script"
    results = await _AXE.run(page)
    serious = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not serious, f"{name}: {serious}"
