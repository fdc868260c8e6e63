"""The mail relay outlives any failed round: a PostgreSQL restart can surface errors that are
neither OSError nor an asyncpg PostgresError/InterfaceError (asyncpg's InternalClientError, from a
connection the server terminated mid-dialogue), and a relay task ended by one would send no mail
again until the service restarts."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from shared.clock import SystemClock
from shared.mailer import MailRelay, SmtpSender


class FlakyRelay(MailRelay):
    def __init__(self, failures: list[BaseException]) -> None:
        pool: Any = None  # never reached: send_due is replaced
        cipher: Any = None
        super().__init__(
            pool,
            cipher,
            SmtpSender("127.0.0.1", 1, "a@example.com"),
            SystemClock(),
            service="test",
            poll_seconds=0.01,
        )
        self.failures = failures
        self.rounds = 0

    async def send_due(self) -> int:
        self.rounds += 1
        if self.failures:
            raise self.failures.pop(0)
        return 0


async def test_the_relay_keeps_running_after_errors_of_any_kind() -> None:
    relay = FlakyRelay(
        [
            asyncpg.InternalClientError(
                "cannot switch to state 15; another operation is in progress"
            ),
            ConnectionRefusedError(111, "Connect call failed"),
            RuntimeError("anything else"),
        ]
    )
    task = asyncio.create_task(relay.run())
    try:
        async with asyncio.timeout(5):
            while relay.rounds < 5:
                await asyncio.sleep(0.01)
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
