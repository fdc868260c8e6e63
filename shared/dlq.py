"""Dead letters an operator can act on: list them, show one, and re-drive them after a fix.

    python -m shared.dlq list [--topic mls.transactions] [--reason handler_failed]
    python -m shared.dlq show mls.transactions.dlq 12
    python -m shared.dlq redrive mls.transactions.dlq [--offset 12 ...] [--reason R] [--dry-run]

A dead letter (see shared.messaging) keeps the original value, key and CloudEvents headers, and
adds `dlq_*` headers saying why and where it came from. Re-driving publishes the value and key
to the original topic with the original headers (the `dlq_*` ones dropped, a `redriven_from`
header added). It is safe to re-drive twice: the consumers' inbox records each `ce_id` they
processed, so a second copy of an event already processed changes nothing. A record that still
cannot be read is dead-lettered again, with a new reason.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TextIO

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.kafka_security import Kafka, kafka_client_options
from shared.settings import KafkaSettings
from shared.topics import Topic, dlq, partitions_of

DLQ_HEADER_PREFIX = "dlq_"


@dataclass(frozen=True)
class DeadLetter:
    dlq_topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]

    @property
    def reason(self) -> str:
        return self.headers.get("dlq_reason", "")

    @property
    def original_topic(self) -> str:
        return self.headers.get("dlq_original_topic") or self.dlq_topic.removesuffix(".dlq")

    def redrive_headers(self) -> list[tuple[str, bytes]]:
        """The original headers, without the DLQ's own, and where the copy came from."""
        kept = [
            (name, value.encode())
            for name, value in self.headers.items()
            if not name.startswith(DLQ_HEADER_PREFIX)
        ]
        return [
            *kept,
            ("redriven_from", f"{self.dlq_topic}:{self.partition}:{self.offset}".encode()),
        ]

    def summary(self) -> str:
        origin = (
            f"{self.headers.get('dlq_original_topic', '?')}"
            f"[{self.headers.get('dlq_original_partition', '?')}]"
            f"@{self.headers.get('dlq_original_offset', '?')}"
        )
        detail = self.headers.get("dlq_detail", "").replace("\n", " ")
        return (
            f"{self.dlq_topic}:{self.partition}:{self.offset}  {self.reason or '-'}  "
            f"{self.headers.get('ce_type', '-')}  ce_id={self.headers.get('ce_id', '-')}  "
            f"from {origin}  at {self.headers.get('dlq_at', '?')}  {detail[:100]}"
        )

    def details(self) -> str:
        lines = [f"dead letter {self.dlq_topic}:{self.partition}:{self.offset}"]
        lines.append(f"key: {self.key.decode(errors='replace') if self.key else None}")
        lines.append("headers:")
        lines += [f"  {name}: {value}" for name, value in sorted(self.headers.items())]
        lines.append("payload:")
        text = (self.value or b"").decode(errors="replace")
        # shown as received when it is not JSON: that may be exactly why it was dead-lettered
        with contextlib.suppress(ValueError):
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        lines.append(text)
        return "\n".join(lines)


def all_dlq_topics() -> list[str]:
    return [dlq(topic.value) for topic in Topic]


async def read_dead_letters(kafka: Kafka, topics: Iterable[str]) -> list[DeadLetter]:
    """Every record of the DLQ topics, from their beginning to their current end."""
    consumer = AIOKafkaConsumer(
        **kafka_client_options(kafka), enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        existing = await consumer.topics()
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            if topic in existing
            for p in await partitions_of(kafka, topic)
        ]
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        letters: list[DeadLetter] = []
        while not all([await consumer.position(tp) >= ends[tp] for tp in partitions]):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    headers = {name: bytes(v).decode(errors="replace") for name, v in r.headers}
                    letters.append(
                        DeadLetter(r.topic, r.partition, r.offset, r.key, r.value, headers)
                    )
        return sorted(letters, key=lambda d: (d.dlq_topic, d.partition, d.offset))
    finally:
        await consumer.stop()


def select(
    letters: Sequence[DeadLetter], *, offsets: Sequence[int] = (), reason: str | None = None
) -> list[DeadLetter]:
    """The dead letters chosen by offset (any of) and reason; all when neither is given."""
    chosen = list(letters)
    if offsets:
        chosen = [d for d in chosen if d.offset in set(offsets)]
    if reason:
        chosen = [d for d in chosen if d.reason == reason]
    return chosen


async def redrive(kafka: Kafka, letters: Sequence[DeadLetter]) -> int:
    """Publish each dead letter back to its original topic; returns how many."""
    producer = AIOKafkaProducer(**kafka_client_options(kafka), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for letter in letters:
            await producer.send_and_wait(
                letter.original_topic,
                letter.value,
                key=letter.key,
                headers=letter.redrive_headers(),
            )
        return len(letters)
    finally:
        await producer.stop()


async def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    # the rest of the connection (TLS, SASL) from the environment, as the services read it
    kafka = (
        KafkaSettings(kafka_bootstrap_servers=args.bootstrap) if args.bootstrap else KafkaSettings()
    )
    if args.command == "list":
        topics = [dlq(args.topic)] if args.topic else all_dlq_topics()
        letters = select(await read_dead_letters(kafka, topics), reason=args.reason)
        for letter in letters:
            print(letter.summary(), file=out)
        print(f"{len(letters)} dead letters in {len(topics)} DLQ topics", file=out)
        return 0
    letters = await read_dead_letters(kafka, [args.dlq_topic])
    if args.command == "show":
        found = [d for d in letters if d.offset == args.offset]
        if not found:
            print(f"no dead letter at offset {args.offset} of {args.dlq_topic}", file=out)
            return 1
        for letter in found:
            print(letter.details(), file=out)
        return 0
    chosen = select(letters, offsets=args.offset or (), reason=args.reason)
    verb = "would re-drive" if args.dry_run else "re-driving"
    for letter in chosen:
        print(f"{verb} {letter.summary()} -> {letter.original_topic}", file=out)
    if not args.dry_run:
        await redrive(kafka, chosen)
    done = "would be re-driven (dry run)" if args.dry_run else "re-driven"
    print(f"{len(chosen)} of {len(letters)} dead letters {done}", file=out)
    return 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m shared.dlq", description=__doc__.splitlines()[0])
    main.add_argument("--bootstrap", help="default: KAFKA_BOOTSTRAP_SERVERS")
    commands = main.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="one line per dead letter")
    listing.add_argument("--topic", help="the original topic (default: every DLQ)")
    listing.add_argument("--reason", help="only this dlq_reason")
    show = commands.add_parser("show", help="headers, reason and payload of one dead letter")
    show.add_argument("dlq_topic")
    show.add_argument("offset", type=int)
    again = commands.add_parser("redrive", help="publish dead letters back to their topic")
    again.add_argument("dlq_topic")
    again.add_argument("--offset", type=int, action="append", help="only these (repeatable)")
    again.add_argument("--reason", help="only this dlq_reason")
    again.add_argument("--dry-run", action="store_true", help="say what would be re-driven")
    return main


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run(parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
