"""A relay told of new work while a round is finding none must not sleep through the news.

Both relays wait on a wakeup event between empty rounds. Cleared after the round, a ring that
came during it (a commit while the round's query found nothing yet) was lost, and the work
waited the full poll interval (0.2 s for events, 0.5 s for mail).
"""

from __future__ import annotations

import asyncio
from typing import Any

from shared.clock import SystemClock
from shared.mailer import MailRelay, SmtpSender
from shared.outbox import OutboxRelay, OutboxShare

POLL_SECONDS = 30.0  # a missed ring shows as a test that times out
PROMPT_SECONDS = 2.0


class RungDuringItsFirstRound:
    """A round that finds nothing while, meanwhile, a handler commits work and rings."""

    def __init__(self, wakeup: asyncio.Event) -> None:
        self.wakeup = wakeup
        self.rounds = 0
        self.second_round = asyncio.Event()

    async def round(self) -> int:
        self.rounds += 1
        if self.rounds == 1:
            await asyncio.sleep(0)  # the query is under way ...
            self.wakeup.set()  # ... when the commit rings
            return 0  # and the query did not see the new row
        self.second_round.set()
        return 0


async def _second_round_comes_promptly(relay_task: asyncio.Task[Any], rounds: Any) -> None:
    try:
        async with asyncio.timeout(PROMPT_SECONDS):
            await rounds.second_round.wait()
    finally:
        relay_task.cancel()
        await asyncio.gather(relay_task, return_exceptions=True)


async def test_the_outbox_relay_hears_a_ring_that_came_during_an_empty_round() -> None:
    pool: Any = None  # never reached: the batches are replaced
    relay = OutboxRelay(pool, kafka="127.0.0.1:1", relay_name="test", poll_seconds=POLL_SECONDS)
    share = OutboxShare(relay, 0, 1)
    rounds = RungDuringItsFirstRound(share.wakeup)

    async def relay_batch(_producer: Any) -> int:
        return await rounds.round()

    share._relay_batch = relay_batch  # type: ignore[method-assign,assignment]
    producer: Any = None
    await _second_round_comes_promptly(asyncio.create_task(share._relay_rounds(producer)), rounds)


def test_a_commit_rings_every_share_the_instance_relays() -> None:
    """A handler's commit may have written rows of any share; each must hear of it."""
    pool: Any = None
    relay = OutboxRelay(pool, kafka="127.0.0.1:1", relay_name="test")
    shares = [OutboxShare(relay, number, 2) for number in range(2)]
    relay.wakeup.set()
    assert all(share.wakeup.is_set() for share in shares)


async def test_the_mail_relay_hears_a_ring_that_came_during_an_empty_round() -> None:
    pool: Any = None  # never reached: the rounds are replaced
    cipher: Any = None
    relay = MailRelay(
        pool,
        cipher,
        SmtpSender("127.0.0.1", 1, "a@example.com"),
        SystemClock(),
        service="test",
        poll_seconds=POLL_SECONDS,
    )
    rounds = RungDuringItsFirstRound(relay.wakeup)
    relay.send_due = rounds.round  # type: ignore[method-assign]
    await _second_round_comes_promptly(asyncio.create_task(relay.run()), rounds)
