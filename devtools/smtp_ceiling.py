"""How fast the SMTP sink takes the invitations service's own mail with nothing else in the way:
no Kafka and no database, only the service's sender (`shared.mailer.SmtpSender`, the same pool
of connections) and a rendered invitation. `devtools.bench_flows` runs it as a process of its
own beside the invitations flow: the ceiling that flow's email rate is read against.

    python -m devtools.smtp_ceiling --smtp-port N --count N [--connections 4]

Prints `{"started": <time.monotonic()>, "finished": ...}` when done (the last mail answered by
the server); the benchmark times it between the two.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import time

from services.invitations.handlers import TEMPLATES
from shared.mailer import RenderedMail, SmtpSender, Templates, stable_message_id
from shared.settings import ServiceSettings


@functools.cache
def _templates() -> Templates:
    return Templates(TEMPLATES)  # one Jinja2 environment, compiling each template once


def invitation(pin: str) -> RenderedMail:
    """A client's invitation as the invitations service renders it."""
    return _templates().render(
        "client_invitation_sale_buyer",
        client_name="Jane Client",
        agent_name="Alex Agent",
        street="12 Main Street",
        city="Springfield",
        pin=pin,
        survey_url="https://reviews.example/survey?token=" + "t" * 43,
        unsubscribe_url="https://invitations.example/unsubscribe?token=" + "u" * 43,
        expires_on="2027-01-02",
    )


async def run(smtp_port: int, count: int, connections: int) -> tuple[float, float]:
    """Send `count` invitations, `connections` at once; returns when sending started and when
    the last mail was answered."""
    settings = ServiceSettings()
    mail = invitation("ABCD-EFGH-JKLM")
    sender = SmtpSender("127.0.0.1", smtp_port, settings.smtp_from, connections=connections)
    started = time.monotonic()

    async def send(n: int) -> None:
        key = f"ceiling:{n}"
        await sender.send(f"client-{n}@bench.example", mail, stable_message_id(key, "bench", ""))

    try:
        await asyncio.gather(*(send(n) for n in range(count)))
        finished = time.monotonic()
    finally:
        await sender.close()
    return started, finished


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--connections", type=int, default=ServiceSettings().smtp_connections)
    args = parser.parse_args(argv)
    started, finished = asyncio.run(run(args.smtp_port, args.count, args.connections))
    print(json.dumps({"started": started, "finished": finished}), flush=True)


if __name__ == "__main__":
    main()
