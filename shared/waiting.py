"""Waiting on an event with a timeout, without losing a cancellation.

Python 3.11's `asyncio.wait_for` returns normally when it is cancelled at the moment the awaited
future completes (CPython gh-86296), so a relay loop told to stop could keep running forever.
`asyncio.timeout` has no such race.
"""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """True if the event was set within `timeout` seconds; cancellation always propagates."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True
