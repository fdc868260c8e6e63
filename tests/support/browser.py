"""Browser tests' shared parts: an app served over real HTTP, and Debian's Chromium."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.async_api import Browser, async_playwright

from tests.conftest import free_port

CHROMIUM = Path("/usr/bin/chromium")


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
