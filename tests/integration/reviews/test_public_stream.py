"""The public review stream `reviews.public` against real Kafka and PostgreSQL: HAR's promise
that an agent shows all ratings or none, and that hidden ones leave the system to nobody."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.reviews.repository import ReviewsRepository
from shared.auth import Role
from shared.cloudevents import Envelope
from shared.contracts import AGENT_UPSERTED, ERASURE_REQUESTED, PARTICIPATION_CHANGED
from shared.contracts.erasures import ErasureRequested
from shared.contracts.participation import (
    ParticipationMode,
)
from shared.topics import Topic
from tests.integration.reviews.conftest import (
    GOOD,
    POOR,
    Issued,
    Service,
    announce_agent,
    bearer,
    issue_invitation,
    unique,
)
from tests.support.builders import START, agent_upserted, participation_changed
from tests.support.kafka import EventPublisher, TopicReader
from tests.support.schema_dump import dump_schema, mentions
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def review(service: Service, issued: Issued, scores: dict[str, int], **extra: str) -> str:
    body = {"scores": scores, "comment": "Sold in a week.", "pin": issued.pin} | extra
    submitted = await service.client.post("/api/v1/reviews", json=body)
    assert submitted.status_code == 201, submitted.text
    return str(submitted.json()["review_id"])


async def schema_of(service: Service) -> dict[str, list[str]]:
    conn = await asyncpg.connect(service.settings.database_url)
    try:
        return await dump_schema(conn, service.settings.db_schema)
    finally:
        await conn.close()


async def set_mode(
    publish_event: EventPublisher, service: Service, agent_id: str, mode: ParticipationMode
) -> None:
    await publish_event(
        PARTICIPATION_CHANGED,
        participation_changed(agent_id, mode, changed_at=service.clock.now()),
    )


async def set_active(publish_event: EventPublisher, agent_id: str, *, active: bool) -> None:
    await publish_event(AGENT_UPSERTED, agent_upserted(agent_id, active=active))


def of(agent_id: str, ce_type: str, review_id: str | None = None) -> Callable[[Envelope], bool]:
    return lambda e: (
        e.key == agent_id
        and e.type == ce_type
        and (review_id is None or e.data["review_id"] == review_id)
    )


async def events_of(reader: TopicReader, agent_id: str, count: int) -> list[tuple[str, str]]:
    """The first `count` (type, review_id) pairs of the agent on the stream, waiting for them."""

    async def arrived() -> bool:
        return len([e for e in await reader.current() if e.key == agent_id]) >= count

    await eventually(arrived, timeout=30)
    found = [e for e in reader.envelopes() if e.key == agent_id]
    return [(e.type, e.data["review_id"]) for e in found[:count]]


async def test_a_hidden_agent_s_reviews_never_reach_the_public_stream(
    service: Service, publish_event: EventPublisher, topic_reader
) -> None:
    public = await topic_reader(Topic.REVIEWS_PUBLIC)
    internal = await topic_reader(Topic.REVIEWS_PUBLISHED)
    agent_id = unique("A")
    await announce_agent(publish_event, service, agent_id)
    review_id = await review(
        service, await issue_invitation(publish_event, service, agent_id=agent_id), GOOD
    )
    await internal.wait_for(of(agent_id, "review.published.v1", review_id))
    await set_mode(publish_event, service, agent_id, ParticipationMode.OPT_IN_HIDDEN)
    await set_mode(publish_event, service, agent_id, ParticipationMode.OPT_OUT)
    await public.expect_none(lambda e: e.key == agent_id, within=3)


async def test_all_or_none_as_the_agent_goes_public_responds_is_withdrawn_and_goes_hidden(
    service: Service, publish_event: EventPublisher, topic_reader
) -> None:
    public = await topic_reader(Topic.REVIEWS_PUBLIC)
    agent_id = unique("A")
    await announce_agent(publish_event, service, agent_id)
    # two reviews while hidden (the default), the later one submitted first in the log order
    first_issued = await issue_invitation(publish_event, service, agent_id=agent_id)
    second_issued = await issue_invitation(publish_event, service, agent_id=agent_id)
    first = await review(service, first_issued, GOOD)
    service.clock.advance(timedelta(hours=1))
    second = await review(service, second_issued, GOOD)
    negative = await review(
        service, await issue_invitation(publish_event, service, agent_id=agent_id), POOR
    )  # waits for the agent's response: not published, so never shown

    await set_mode(publish_event, service, agent_id, ParticipationMode.OPT_IN_PUBLIC)
    shown = await events_of(public, agent_id, 2)
    assert shown == [("review.published.v1", first), ("review.published.v1", second)]

    # while public: a new review appears at once, a response republishes it
    third = await review(
        service, await issue_invitation(publish_event, service, agent_id=agent_id), GOOD
    )
    await public.wait_for(of(agent_id, "review.published.v1", third))
    responded = await service.client.post(
        f"/api/v1/reviews/{third}/response",
        json={"text": "Thank you!"},
        headers=bearer(agent_id, Role.AGENT),
    )
    assert responded.status_code == 200, responded.text
    await public.wait_for(
        lambda e: (
            of(agent_id, "review.published.v1", third)(e)
            and e.data["agent_response"] == "Thank you!"
        )
    )
    # a moderator's withdrawal reaches it with the moderator's reason
    withdrawn = await service.client.post(
        f"/api/v1/reviews/{first}/withdrawal",
        json={"reason": "the client was the agent's relative"},
        headers=bearer("mod-1", Role.MODERATOR),
    )
    assert withdrawn.status_code == 200, withdrawn.text
    event = await public.wait_for(of(agent_id, "review.withdrawn.v1", first))
    assert event.data["reason"] == "the client was the agent's relative"

    # hidden again: each review it still shows is withdrawn with agent_not_public, once
    await set_mode(publish_event, service, agent_id, ParticipationMode.OPT_IN_HIDDEN)
    for review_id in (second, third):
        taken = await public.wait_for(of(agent_id, "review.withdrawn.v1", review_id))
        assert taken.data["reason"] == "agent_not_public"
    await public.collect(2)
    downs = [
        e.data["review_id"]
        for e in public.envelopes()
        if of(agent_id, "review.withdrawn.v1")(e) and e.data["reason"] == "agent_not_public"
    ]
    assert sorted(downs) == sorted([second, third])
    assert negative not in {e.data["review_id"] for e in public.envelopes()}


async def test_an_agent_the_roster_marks_inactive_leaves_the_public_stream_and_comes_back(
    service: Service, publish_event: EventPublisher, topic_reader
) -> None:
    public = await topic_reader(Topic.REVIEWS_PUBLIC)
    agent_id = unique("A")
    await announce_agent(publish_event, service, agent_id)
    await set_mode(publish_event, service, agent_id, ParticipationMode.OPT_IN_PUBLIC)
    review_id = await review(
        service, await issue_invitation(publish_event, service, agent_id=agent_id), GOOD
    )
    await public.wait_for(of(agent_id, "review.published.v1", review_id))

    await set_active(publish_event, agent_id, active=False)
    taken = await public.wait_for(of(agent_id, "review.withdrawn.v1", review_id))
    assert taken.data["reason"] == "agent_not_public"
    await set_active(publish_event, agent_id, active=True)
    back = await events_of(public, agent_id, 3)
    assert back[2] == ("review.published.v1", review_id)


async def test_an_erased_client_s_review_is_republished_without_comment_or_name(
    service: Service, publish_event: EventPublisher, topic_reader
) -> None:
    public = await topic_reader(Topic.REVIEWS_PUBLIC)
    internal = await topic_reader(Topic.REVIEWS_PUBLISHED)
    agent_id = unique("A")
    await announce_agent(publish_event, service, agent_id)
    await set_mode(publish_event, service, agent_id, ParticipationMode.OPT_IN_PUBLIC)
    issued = await issue_invitation(publish_event, service, agent_id=agent_id)
    written = f"Pat Doe {uuid.uuid4().hex[:8]} bought with us"
    review_id = await review(service, issued, GOOD, display_name="Pat Doe", comment=written)
    await public.wait_for(of(agent_id, "review.published.v1", review_id))
    assert mentions(await schema_of(service), written)  # the dump sees it while it is there

    erasure = ErasureRequested(
        erasure_id=str(uuid.uuid4()),
        requested_at=datetime.now(UTC),
        client_indexes=["0" * 64],
        invitation_ids=[issued.invitation_id],
    )
    for _ in range(2):  # the same request twice (a retry by operations) changes nothing more
        await publish_event(ERASURE_REQUESTED, erasure)
    for reader in (public, internal):
        again = await reader.wait_for(
            lambda e: of(agent_id, "review.published.v1", review_id)(e) and e.data["comment"] == ""
        )
        assert again.data["display_name"] is None and again.data["scores"] == GOOD
    assert not mentions(await schema_of(service), written, "Pat Doe")
    await public.collect(2)
    republished = [
        e for e in public.envelopes() if of(agent_id, "review.published.v1", review_id)(e)
    ]
    assert len(republished) == 2


async def test_a_publication_waiting_for_the_agents_lock_sees_the_agent_made_public_meanwhile(
    service: Service,
) -> None:
    """The lock that orders a publication after a visibility change must come before the read
    of the visibility: a publication that waited for the lock while the agent went public
    must see them public (it otherwise reads the snapshot from before its wait, and the
    review never reaches the public stream: what the soak found)."""
    agent_id = unique("A-lock")
    pool = service.app.state.runtime.pool
    async with pool.acquire() as going_public, pool.acquire() as publishing:
        repo = ReviewsRepository(going_public)
        await repo.upsert_agent(agent_upserted(agent_id), START)
        changing = going_public.transaction()
        await changing.start()
        await repo.save_participation(participation_changed(agent_id))
        assert await repo.agent_is_public(agent_id)  # holds the agent's lock
        async with publishing.transaction():
            waiting = asyncio.create_task(ReviewsRepository(publishing).agent_is_public(agent_id))
            await asyncio.sleep(0.5)
            assert not waiting.done(), "the publication did not wait for the agent's lock"
            await changing.commit()
            assert await asyncio.wait_for(waiting, timeout=10)


async def test_a_review_published_at_once_is_stored_under_the_agents_lock(
    publish_event: EventPublisher, service: Service
) -> None:
    """A submission published at once takes the agent's public-stream lock (since the review's
    insert takes it, without a statement of its own): while a change of the agent's visibility
    holds it, the submission waits, and then answers."""
    agent_id = unique("A-lock")
    issued = await issue_invitation(publish_event, service, agent_id=agent_id)
    async with service.app.state.runtime.pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('public:' || $1))", agent_id)
        submitting = asyncio.create_task(review(service, issued, GOOD))
        await asyncio.sleep(0.5)
        assert not submitting.done(), "the submission did not wait for the agent's lock"
    await asyncio.wait_for(submitting, timeout=10)
