"""A new schema rebuilds the directory from offset 0, even under a consumer group that had
committed offsets at the topics' ends (a schema dropped and re-created, same KAFKA_GROUP_ID)."""

from __future__ import annotations

import asyncpg
import pytest

from services.directory.app import create_app
from services.directory.handlers import dispatcher
from shared.clock import FixedClock
from tests.conftest import running_app
from tests.integration.directory.conftest import (
    START,
    Directory,
    directory_settings,
    public_review,
    publish_rating,
    publish_review,
    rating,
    roster,
    unique,
)
from tests.support.kafka import EventPublisher, start_group_at_end

pytestmark = pytest.mark.integration


async def test_an_empty_schema_rebuilds_from_offset_0_under_a_group_with_offsets(
    kafka_bootstrap: str, database_url: str, publish_event: EventPublisher
) -> None:
    agent_id = unique("A")
    await roster(publish_event, agent_id, name="Rebuilt Agent")
    await publish_rating(publish_event, rating(agent_id))
    review = public_review(agent_id, comment="Still here after the rebuild.")
    await publish_review(publish_event, review)
    settings = directory_settings(kafka_bootstrap, database_url, rebuild_when_empty=True)
    # the group has read everything so far (as an earlier schema's consumers would have)
    await start_group_at_end(kafka_bootstrap, settings.group_id, dispatcher.subscribed)

    for _ in range(2):  # a restart of the rebuilt schema does not rewind again
        app = create_app(settings, clock=FixedClock(START))
        async with running_app(app) as client:
            directory = Directory(app, client, settings)
            profile = await directory.until(
                f"/agents/{agent_id}", lambda r: "Still here after the rebuild." in r.text, 60
            )
            assert "Rebuilt Agent" in profile.text

    conn = await asyncpg.connect(database_url)
    try:
        rebuilds = await conn.fetchval(f"SELECT count(*) FROM {settings.db_schema}.rebuilds")
    finally:
        await conn.close()
    assert rebuilds == 1
