"""Fixtures for the removals service on the real stack."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from services.removals.app import MIGRATIONS
from services.removals.settings import RemovalsSettings
from shared.clock import FixedClock
from shared.contracts.leads import LeadAssigned
from shared.crypto import PiiCipher
from shared.db import apply_migrations, create_pool
from shared.uow import UnitOfWorkFactory
from tests.support import builders

START = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


PHONE = "+1 713 555 0100"
"""The phone the CRM gives every lead's client here (besides the email)."""


def lead_assigned(lead_id: str, agent_id: str, email: str | None) -> LeadAssigned:
    return builders.lead_assigned(lead_id, agent_id, email, phone=PHONE)


def removals_settings(
    kafka_bootstrap: str, database_url: str, **overrides: Any
) -> RemovalsSettings:
    """A service instance's settings: its own schema and consumer group, a quick outbox."""
    values: dict[str, Any] = {
        "environment": "test",
        "kafka_bootstrap_servers": kafka_bootstrap,
        "database_url": database_url,
        "database_schema": f"t_{uuid.uuid4().hex[:10]}_removals",
        "kafka_group_id": f"test-removals-{uuid.uuid4().hex[:8]}",
        "outbox_poll_seconds": 0.05,
    }
    return RemovalsSettings(**(values | overrides))


@pytest.fixture
async def units(database_url: str) -> AsyncIterator[UnitOfWorkFactory]:
    """Units of work on a fresh removals schema, at a fixed instant (no broker involved)."""
    schema = f"t_{uuid.uuid4().hex[:10]}_removals"
    pool = await create_pool(database_url, schema)
    await apply_migrations(pool, schema, MIGRATIONS)
    try:
        yield UnitOfWorkFactory(pool, FixedClock(START), "/ratings/removals", PiiCipher("test-key"))
    finally:
        await pool.close()
