"""`python -m shared.dlq` on real Kafka and PostgreSQL: a handler fails until it is fixed, the
operator lists and shows the dead letter, tries a dry run, re-drives it, and it is processed
once (twice re-driven, still once)."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.contracts import LEAD_ASSIGNED
from shared.contracts.leads import LeadAssigned
from shared.dlq import parser, run
from shared.messaging import EventDispatcher
from shared.runtime import ServiceRuntime
from shared.topics import Topic, dlq
from shared.uow import UnitOfWork
from tests.integration.shared.conftest import PROBE_MIGRATIONS, ProbeSettings
from tests.support.builders import lead_assigned
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def tool(kafka_bootstrap: str, *argv: str) -> str:
    out = io.StringIO()
    assert await run(parser().parse_args(["--bootstrap", kafka_bootstrap, *argv]), out) == 0
    return out.getvalue()


async def test_a_dead_letter_is_listed_shown_and_redriven_after_the_fix(
    service_settings: Callable[..., Any],
    publish_event,
    topic_reader,
    kafka_bootstrap: str,
    probe_group,
) -> None:
    lead_id = f"L-dlq-{uuid.uuid4().hex[:8]}"
    fixed = False
    dispatcher = EventDispatcher("probe")

    @dispatcher.on(LEAD_ASSIGNED)
    async def store(event: LeadAssigned, uow: UnitOfWork) -> None:
        if event.lead_id == lead_id and not fixed:
            raise RuntimeError("a bug in this handler, fixed later")
        await uow.conn.execute(
            """INSERT INTO probe_effects (lead_id, times) VALUES ($1, 1)
               ON CONFLICT (lead_id) DO UPDATE SET times = probe_effects.times + 1""",
            event.lead_id,
        )

    settings = service_settings(
        ProbeSettings, kafka_group_id=await probe_group("probe"), consumer_max_attempts=2
    )
    runtime = ServiceRuntime(settings, dispatcher=dispatcher, migrations=PROBE_MIGRATIONS)
    dead = await topic_reader(dlq(Topic.LEADS_ASSIGNED))
    await runtime.start()

    async def times() -> int:
        async with runtime.pool.acquire() as conn:
            value = await conn.fetchval(
                "SELECT times FROM probe_effects WHERE lead_id = $1", lead_id
            )
        return int(value or 0)

    try:
        event = lead_assigned(lead_id, "A-probe", None, name="Sam", assigned_at=datetime.now(UTC))
        ce_id = str(uuid.uuid4())
        await publish_event(LEAD_ASSIGNED, event, ce_id=ce_id)
        record = await dead.wait_for_record(
            lambda r: dict(r.headers).get("ce_id") == ce_id.encode(), timeout=30
        )
        offset = str(record.offset)

        listed = await tool(
            kafka_bootstrap, "list", "--topic", "leads.assigned", "--reason", "handler_failed"
        )
        assert f"leads.assigned.dlq:0:{offset}" in listed and ce_id in listed
        shown = await tool(kafka_bootstrap, "show", "leads.assigned.dlq", offset)
        assert "dlq_reason: handler_failed" in shown and "a bug in this handler" in shown
        assert f'"lead_id": "{lead_id}"' in shown and "dlq_original_offset" in shown

        fixed = True
        dry = await tool(
            kafka_bootstrap, "redrive", "leads.assigned.dlq", "--offset", offset, "--dry-run"
        )
        assert "would re-drive" in dry and "1 of" in dry
        assert await times() == 0

        await tool(kafka_bootstrap, "redrive", "leads.assigned.dlq", "--offset", offset)
        await eventually(lambda: _equals(times, 1), timeout=30)
        # re-driven again: the inbox knows the ce_id, so the effect stays single
        await tool(kafka_bootstrap, "redrive", "leads.assigned.dlq", "--offset", offset)
        marker = f"L-dlq-marker-{uuid.uuid4().hex[:8]}"
        await publish_event(LEAD_ASSIGNED, event.model_copy(update={"lead_id": marker}))
        await eventually(lambda: _stored(runtime, marker), timeout=30)
        assert await times() == 1
    finally:
        await runtime.stop()


async def _equals(probe: Callable[[], Any], expected: int) -> bool:
    return bool(await probe() == expected)


async def _stored(runtime: ServiceRuntime, lead_id: str) -> bool:
    async with runtime.pool.acquire() as conn:
        return bool(
            await conn.fetchval("SELECT count(*) FROM probe_effects WHERE lead_id = $1", lead_id)
        )
