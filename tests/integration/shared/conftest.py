"""A minimal service built from the shared plumbing, to test that plumbing on the real stack."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from shared.settings import ServiceSettings
from shared.topics import Topic
from tests.support.kafka import start_group_at_end

pytestmark = pytest.mark.integration

PROBE_MIGRATIONS = Path(__file__).parent / "probe_migrations"


class ProbeSettings(ServiceSettings):
    service_name: str = "probe"


@pytest.fixture
def probe_group(kafka_bootstrap: str) -> Callable[[str], Awaitable[str]]:
    """A new probe consumer group committed at the end of `leads.assigned`: the shared topic
    holds every earlier run's poison, which a group starting at the beginning would retry
    for longer than a test waits."""

    async def fresh(prefix: str) -> str:
        group = f"{prefix}-{uuid.uuid4().hex[:6]}"
        await start_group_at_end(kafka_bootstrap, group, [Topic.LEADS_ASSIGNED])
        return group

    return fresh
