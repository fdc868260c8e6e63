"""The relay's transactional producer retries a refused produce sooner than aiokafka's default.

Kafka 4 verifies a transaction's partitions when a produce arrives; back-to-back relay rounds
send the next transaction's records while the previous commit's markers are still being
written, and the broker refuses them with a retriable NOT_ENOUGH_REPLICAS. aiokafka then waits
`retry_backoff_ms`; at its default (100 ms) that wait was most of the review-to-rating p99
(docs/performance.md). The latency itself is measured by `make bench`, not asserted here.
"""

from __future__ import annotations

import inspect
from typing import Any

from aiokafka import AIOKafkaProducer

from shared.outbox import OutboxRelay, OutboxShare


def _producer_arguments(share: int = 0, shares: int = 2) -> dict[str, Any]:
    arguments: dict[str, Any] = {}

    def capture(**kwargs: Any) -> Any:
        arguments.update(kwargs)
        return None

    pool: Any = None  # never reached: only the producer is built
    relay = OutboxRelay(pool, kafka="127.0.0.1:1", relay_name="test", producer_factory=capture)
    OutboxShare(relay, share, shares)._new_producer()
    return arguments


def test_a_refused_produce_is_retried_well_before_aiokafkas_default_backoff() -> None:
    default = inspect.signature(AIOKafkaProducer).parameters["retry_backoff_ms"].default
    assert default == 100  # what the stall measured against; a new aiokafka default shows here
    assert _producer_arguments()["retry_backoff_ms"] <= 20


def test_the_producer_is_transactional_under_the_relay_name() -> None:
    arguments = _producer_arguments()
    assert arguments["transactional_id"] == "outbox-relay.test"
    assert arguments["acks"] == "all" and arguments["enable_idempotence"] is True


def test_each_share_has_its_own_transactional_id_and_share_0_keeps_the_single_relays() -> None:
    """A share's next holder fences the previous one through the id; share 0 keeps the id of
    the single relay of earlier versions, so one still running in an upgrade is fenced too."""
    ids = [_producer_arguments(share, 3)["transactional_id"] for share in range(3)]
    assert ids == ["outbox-relay.test", "outbox-relay.test.1", "outbox-relay.test.2"]
