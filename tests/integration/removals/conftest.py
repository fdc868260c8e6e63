"""Fixtures for the removals service on the real stack."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from services.removals.app import MIGRATIONS
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
