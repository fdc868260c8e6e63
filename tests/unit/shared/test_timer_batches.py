"""A timer job takes due rows a batch per transaction, while batches come full, bounded per tick."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from shared.runtime import ServiceRuntime, in_batches
from shared.uow import UnitOfWork


class Runtime:
    def __init__(self) -> None:
        self.transactions = 0

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[Any]:
        self.transactions += 1
        yield object()


async def run(due: list[int], *, most: int, full: int = 1) -> list[int]:
    """The batch sizes the job took, one transaction each, from batches of `due` rows."""
    taken: list[int] = []
    runtime = Runtime()

    async def step(uow: UnitOfWork) -> int:
        taken.append(due[len(taken)] if len(taken) < len(due) else 0)
        return taken[-1]

    await in_batches(step, most=most, full=full)(cast(ServiceRuntime, runtime))
    assert runtime.transactions == len(taken)
    return taken


async def test_batches_run_until_one_finds_nothing_due() -> None:
    assert await run([3, 1], most=50) == [3, 1, 0]


async def test_a_batch_short_of_full_is_the_last() -> None:
    assert await run([500, 499, 500], most=100, full=500) == [500, 499]


async def test_no_more_than_most_batches_run_in_one_tick() -> None:
    assert await run([1] * 10, most=3) == [1, 1, 1]
