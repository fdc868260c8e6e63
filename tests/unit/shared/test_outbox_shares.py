"""The outbox is split into shares by message key, one relay per share at a time (shared.outbox).

A key's events keep their order only if the key never leaves its share, so the mapping is pinned
here: a change to it would, on an upgrade, let two relays publish one key's events at once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from shared.outbox import (
    SHARE_SEQ_SPAN,
    OutboxRelay,
    OutboxShare,
    share_condition,
    share_of,
)
from shared.topics import OUTBOX_CURSOR_TOPIC, OUTBOX_SHARES, all_topic_specs


def test_a_key_is_always_in_the_same_share() -> None:
    # the first 32 bits of MD5, modulo the shares: values any PostgreSQL computes alike
    assert [share_of(key, 1 << 32) for key in ("A-1", "agent-42", "")] == [
        1154302530,
        517926101,
        3558706393,
    ]
    assert [share_of(key, 6) for key in ("A-1", "A-2", "agent-42")] == [0, 2, 5]
    assert all(share_of("A-7", 2) == share_of("A-7", 2) for _ in range(3))


def test_a_row_without_a_key_counts_as_the_empty_key() -> None:
    assert share_of(None, 6) == share_of("", 6)


def test_one_share_holds_every_key() -> None:
    assert {share_of(f"A-{n}", 1) for n in range(100)} == {0}
    assert share_condition(0, 1) == "TRUE"  # and SQL needs no hash to say so


def test_keys_spread_evenly_over_the_shares() -> None:
    for shares in (2, 3, 6):
        counts = Counter(share_of(f"agent-{n}", shares) for n in range(60_000))
        assert set(counts) == set(range(shares))
        expected = 60_000 / shares
        assert all(abs(count - expected) < 0.03 * expected for count in counts.values()), counts


def test_a_share_outside_the_count_is_refused() -> None:
    with pytest.raises(ValueError, match="0 shares"):
        share_of("A-1", 0)
    with pytest.raises(ValueError, match="share 2 of 2"):
        share_condition(2, 2)


def test_the_sql_condition_states_the_same_mapping() -> None:
    condition = share_condition(1, 6)
    assert "md5(COALESCE(message_key, ''))" in condition
    assert condition.endswith("% 6 = 1")


def test_the_shares_number_their_rows_in_disjoint_ranges_share_0_in_the_single_relays() -> None:
    pool: Any = None
    relay = OutboxRelay(pool, kafka="127.0.0.1:1", relay_name="test")
    bases = [OutboxShare(relay, share, 4).base for share in range(4)]
    assert bases == [0, SHARE_SEQ_SPAN, 2 * SHARE_SEQ_SPAN, 3 * SHARE_SEQ_SPAN]
    assert 4 * SHARE_SEQ_SPAN < 2**63  # relay_seq is a bigint


def test_the_cursor_topic_has_a_partition_per_share() -> None:
    specs = {spec.name: spec for spec in all_topic_specs()}
    assert specs[OUTBOX_CURSOR_TOPIC].partitions == OUTBOX_SHARES >= 2
    grown = {spec.name: spec for spec in all_topic_specs(outbox_shares=4)}
    assert grown[OUTBOX_CURSOR_TOPIC].partitions == 4


async def test_giving_up_the_shares_waits_until_each_has_stopped() -> None:
    """Another member may start a share once this one gave it up: its relay must have ended."""
    pool: Any = None
    relay = OutboxRelay(pool, kafka="127.0.0.1:1", relay_name="test")
    stopped: list[int] = []

    async def holding(number: int) -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0.01)  # closing its producer takes a while
            stopped.append(number)

    for number in range(2):
        share = OutboxShare(relay, number, 2)
        relay.shares[number] = (share, asyncio.create_task(holding(number)))
    await asyncio.sleep(0)
    assert relay.owned_shares == [0, 1]
    await relay._stop_shares()
    assert sorted(stopped) == [0, 1] and relay.owned_shares == []
    relay.wakeup.set()  # a ring no longer reaches a stopped share
    assert not any(event.is_set() for event in relay.wakeup.events)


async def test_a_member_leaving_its_group_starts_no_share_a_late_assignment_gives_it() -> None:
    """The group's callbacks run in aiokafka's task: an assignment that arrives while the relay
    stops must not start share relays that would outlive it (and the pool they use)."""
    pool: Any = None
    relay = OutboxRelay(pool, kafka="127.0.0.1:1", relay_name="test")
    relay.leaving = True
    relay._start_shares([0, 1], 2)
    try:
        assert relay.owned_shares == []
    finally:
        await relay._stop_shares()
