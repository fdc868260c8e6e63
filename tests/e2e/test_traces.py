"""Traces that connect: the four services as processes, tracing on, exporting to an OTLP
receiver in the test. An MLS closing's trace runs to the invitation mail's SMTP send, and a
survey submission's from the HTTP request to scoring's rating on `ratings`, through the
outboxes, with no broken parent link."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from devtools.processes import ServiceProcesses
from devtools.smtp_sink import MailSink, body_text
from shared.auth import Role, issue_token
from shared.cloudevents import encode
from shared.contracts import AGENT_UPSERTED, TRANSACTION_CLOSED
from shared.topics import Topic
from tests.conftest import free_port
from tests.reliability.steady_load import start_groups_at_end
from tests.support.builders import agent_upserted, client, transaction_closed
from tests.support.otlp import ReceivedSpan, SpanStore, otlp_receiver

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SECRET = "e2e-auth-secret-e2e-auth-secret-0002"
PIN = re.compile(r"\b([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})\b")


@pytest.fixture(scope="module")
def traced(
    kafka_bootstrap, database_url, smtp_sink, tmp_path_factory
) -> Iterator[tuple[ServiceProcesses, SpanStore]]:
    run = uuid.uuid4().hex[:6]
    ports = {name: free_port() for name in ("invitations", "reviews", "scoring", "removals")}
    with otlp_receiver() as (endpoint, spans):
        processes = ServiceProcesses(
            env={
                "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                "DATABASE_URL": database_url,
                "SMTP_PORT": str(smtp_sink.port),
                "AUTH_SECRET": SECRET,
                "SCHEDULER_INTERVAL_SECONDS": "0.3",
                "OUTBOX_POLL_SECONDS": "0.05",
                "TRACING_ENABLED": "true",
                "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                "OTEL_BSP_SCHEDULE_DELAY": "100",
            },
            per_service_env=lambda service: {
                "DATABASE_SCHEMA": f"e2e_{run}_{service}",
                "KAFKA_GROUP_ID": f"e2e-{run}-{service}",
            },
            ports=ports,
            log_dir=Path(tmp_path_factory.mktemp("service-logs")),
        )
        start_groups_at_end(kafka_bootstrap, {name: f"e2e-{run}-{name}" for name in ports})
        try:
            for name in ports:
                processes.start(name)
            processes.wait_ready(120)
            yield processes, spans
        finally:
            processes.stop_all()


def _traceparent() -> tuple[str, str, str]:
    """A context of the caller's own (an MLS feed or a browser that traces): trace id, the
    caller's span id, and the header naming them."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, span_id, f"00-{trace_id}-{span_id}-01"


def _problems(
    trace: list[ReceivedSpan], caller_span: str, expected: list[tuple[str, str, str]]
) -> list[str]:
    """What keeps `trace` from being whole: an expected (service, kind, name) span missing, or
    a span whose parent is neither in the trace nor the caller's span (the root's parent)."""
    problems = [
        f"no {kind} span {name!r} from {service}"
        for service, kind, name in expected
        if not any((span.service, span.kind, span.name) == (service, kind, name) for span in trace)
    ]
    # the caller's span is the root, never exported; its children may be many (removals
    # consumes the closings too)
    ids = {span.span_id for span in trace}
    problems += [
        f"parent missing: {span}"
        for span in trace
        if span.parent_id is not None
        and span.parent_id != caller_span
        and span.parent_id not in ids
    ]
    problems += [f"a second root: {span}" for span in trace if span.parent_id is None]
    return problems


async def _whole(
    spans: SpanStore,
    trace_id: str,
    caller_span: str,
    expected: list[tuple[str, str, str]],
    timeout: float = 30.0,
) -> list[ReceivedSpan]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        trace = spans.trace(trace_id)
        problems = _problems(trace, caller_span, expected)
        if not problems:
            return trace
        if asyncio.get_running_loop().time() > deadline:
            shown = "\n".join(str(span) for span in trace)
            pytest.fail(f"trace {trace_id} is not whole: {problems}\n{shown}")
        await asyncio.sleep(0.2)


async def test_a_closing_and_a_survey_each_run_as_one_trace_across_the_services(
    traced: tuple[ServiceProcesses, SpanStore],
    publish_event,
    topic_reader,
    mail: MailSink,
) -> None:
    services, spans = traced
    tag = uuid.uuid4().hex[:8]
    agent_id, client_email = f"A-tr-{tag}", f"pat.{tag}@example.com"
    ratings_topic = await topic_reader(Topic.RATINGS)
    now = datetime.now(UTC)
    await publish_event(
        AGENT_UPSERTED,
        agent_upserted(
            agent_id,
            email=f"jo.{tag}@realty.example",
            office_id=f"O-{tag}",
            member_since=(now - timedelta(days=800)).date(),
        ),
    )
    async with httpx.AsyncClient(timeout=10) as http:
        for _ in range(120):
            response = await http.put(
                f"{services.url('invitations')}/api/v1/agents/{agent_id}/participation",
                json={"mode": "opt_in_public"},
                headers={"Authorization": f"Bearer {issue_token(SECRET, agent_id, Role.AGENT)}"},
            )
            if response.status_code in (200, 204):
                break
            await asyncio.sleep(0.5)
        else:
            pytest.fail(f"participation never set: {response.status_code} {response.text}")
        # scoring knows the agent and their choice before the survey: otherwise the rating
        # that counts the review comes from the roster or participation event scoring reads
        # late (a rebalance on a slow machine), in that event's trace, not the survey's
        await ratings_topic.wait_for(
            lambda e: e.key == agent_id and e.data.get("visibility") == "public", timeout=60
        )

        # 1. the MLS feed traces its closing: the trace runs to the invitation's SMTP send
        closing_trace, mls_span, traceparent = _traceparent()
        closing = transaction_closed(
            f"T-{tag}",
            agent_id,
            [client("Pat Doe", client_email)],
            closed_at=now - timedelta(hours=2),
            side="seller",
            mls_number=f"MLS-{tag}",
        )
        record = encode(TRANSACTION_CLOSED.ce_type, closing, source="/mls", key=f"T-{tag}")
        await publish_event.raw(
            TRANSACTION_CLOSED.topic,
            record.value,
            key=record.key,
            headers={**record.headers, "ce_traceparent": traceparent.encode()},
        )
        invitation = await mail.wait_for(lambda m: client_email in str(m["To"]), timeout=60)
        await _whole(
            spans,
            closing_trace,
            mls_span,
            [
                ("invitations", "consumer", "mls.transactions process"),
                ("invitations", "client", "smtp send"),
            ],
        )

        # 2. the survey page's browser traces its submission: the trace runs to the rating
        pin = PIN.search(body_text(invitation))
        assert pin, body_text(invitation)
        survey_trace, browser_span, traceparent = _traceparent()
        for _ in range(60):  # the mail can arrive before reviews has consumed the invitation
            submitted = await http.post(
                f"{services.url('reviews')}/api/v1/reviews",
                json={
                    "pin": pin.group(1),
                    "comment": "Knew the area inside out.",
                    "scores": {
                        "communication": 5,
                        "friendliness": 5,
                        "professionalism": 4,
                        "area_knowledge": 5,
                        "overall": 5,
                    },
                },
                headers={"traceparent": traceparent},
            )
            if submitted.status_code == 201:
                break
            await asyncio.sleep(0.5)
        assert submitted.status_code == 201, submitted.text
        await ratings_topic.wait_for(
            lambda e: e.key == agent_id and e.data.get("reviews_total") == 1, timeout=60
        )
        trace = await _whole(
            spans,
            survey_trace,
            browser_span,
            [
                ("reviews", "server", "POST /api/v1/reviews"),
                ("reviews", "producer", "reviews.published publish"),
                ("scoring", "consumer", "reviews.published process"),
                ("scoring", "producer", "ratings publish"),
            ],
        )
    # the logs say which trace a line belongs to
    logged = [
        json.loads(line)
        for line in (services.log_dir / "reviews.log").read_text().splitlines()
        if line.startswith("{")
    ]
    assert any(
        line.get("trace_id") == survey_trace and "published" in line["message"] for line in logged
    )
    # the chain itself: request -> reviews.published -> scoring's consumption -> the rating
    by_id = {span.span_id: span for span in trace}
    (rating,) = [s for s in trace if s.name == "ratings publish"]
    chain = []
    span: ReceivedSpan | None = rating
    while span is not None:
        chain.append((span.service, span.name))
        span = by_id.get(span.parent_id or "")
    assert chain == [
        ("scoring", "ratings publish"),
        ("scoring", "reviews.published process"),
        ("reviews", "reviews.published publish"),
        ("reviews", "POST /api/v1/reviews"),
    ]
