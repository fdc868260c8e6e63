"""The W3C trace context crosses the outboxes: stored with an event or a mail when published,
sent as the CloudEvents distributed-tracing extension, and the parent of the consumer's, the SMTP
send's and the HTTP request's spans. With tracing off, none of it happens."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, cast

import httpx
import pytest
from aiokafka.structs import ConsumerRecord
from fastapi import APIRouter, FastAPI
from faststream.kafka import KafkaBroker, TestKafkaBroker
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared import tracing
from shared.clock import SystemClock
from shared.cloudevents import Envelope, decode_attributes, encode
from shared.contracts import PARTICIPATION_CHANGED
from shared.contracts.participation import ParticipationMode
from shared.crypto import PiiCipher
from shared.logging import configure_logging
from shared.mailer import MailRelay, QueuedMail, RenderedMail, SmtpSender, mail_queue_insert
from shared.messaging import EventDispatcher
from shared.outbox import outbox_rows
from shared.runtime import ServiceRuntime, create_http_app
from shared.settings import ServiceSettings
from shared.uow import UnitOfWork
from tests.support.builders import participation_changed

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    """Tracing on, spans kept in memory (the process's global provider is left alone)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("test"))
    return exporter


@pytest.fixture
def tracing_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracing, "_tracer", None)


def _uow() -> UnitOfWork:
    return UnitOfWork(
        conn=cast(Any, None),
        now=datetime(2026, 11, 20, 15, tzinfo=UTC),
        source="/ratings/test",
        cipher=PiiCipher("test-key"),
    )


def _envelope(traceparent: str | None, tracestate: str | None = None) -> Envelope:
    return Envelope(
        id="e-1",
        source="/s",
        type="t",
        time=None,
        key="k",
        value=b"{}",
        traceparent=traceparent,
        tracestate=tracestate,
    )


def _hex(number: int, width: int) -> str:
    return format(number, f"0{width}x")


def _only(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    (span,) = [s for s in exporter.get_finished_spans() if s.name == name]
    return span


def test_the_trace_extension_headers_decode_into_the_envelope() -> None:
    envelope = decode_attributes(
        b"k",
        b"{}",
        {
            "ce_specversion": b"1.0",
            "ce_id": b"1",
            "ce_source": b"/s",
            "ce_type": b"t",
            "ce_traceparent": TRACEPARENT.encode(),
            "ce_tracestate": b"vendor=x",
        },
    )
    assert envelope.traceparent == TRACEPARENT
    assert envelope.tracestate == "vendor=x"


def test_an_event_without_trace_headers_has_no_trace_context() -> None:
    envelope = decode_attributes(
        b"k",
        b"{}",
        {"ce_specversion": b"1.0", "ce_id": b"1", "ce_source": b"/s", "ce_type": b"t"},
    )
    assert envelope.traceparent is None and envelope.tracestate is None


async def test_an_event_published_in_a_span_carries_its_context_as_ce_traceparent(
    spans: InMemorySpanExporter,
) -> None:
    uow = _uow()
    with tracing.consuming("leads", [_envelope(TRACEPARENT)]):
        await uow.publish(
            PARTICIPATION_CHANGED, participation_changed("A-1", ParticipationMode.OPT_IN_HIDDEN)
        )
    (row,) = uow._unwritten
    headers = json.loads(row[4])
    consumer = _only(spans, "leads process")
    producer = _only(spans, "agents.participation publish")
    assert producer.kind is SpanKind.PRODUCER
    assert producer.parent is not None
    assert producer.parent.span_id == consumer.context.span_id
    # the row names the producer span as the parent, in the consumer's trace
    assert headers["ce_traceparent"] == (f"00-{TRACE_ID}-{_hex(producer.context.span_id, 16)}-01")
    # and the relay's headers decode back into that context
    envelope = decode_attributes(
        row[1].encode(), row[5], {name: value.encode() for name, value in headers.items()}
    )
    assert envelope.traceparent == headers["ce_traceparent"]


async def test_publish_many_writes_one_context_for_the_lot(spans: InMemorySpanExporter) -> None:
    uow = _uow()
    await uow.publish_many(
        PARTICIPATION_CHANGED,
        [
            participation_changed("A-1", ParticipationMode.OPT_IN_HIDDEN),
            participation_changed("A-1", ParticipationMode.OPT_IN_HIDDEN),
        ],
    )
    parents = {json.loads(row[4])["ce_traceparent"] for row in uow._unwritten}
    assert len(parents) == 1
    assert _only(spans, "agents.participation publish").attributes is not None


async def test_with_tracing_off_no_trace_header_and_no_span(tracing_off: None) -> None:
    uow = _uow()
    await uow.publish(
        PARTICIPATION_CHANGED, participation_changed("A-1", ParticipationMode.OPT_IN_HIDDEN)
    )
    with tracing.consuming("leads", [_envelope(TRACEPARENT)]) as span:
        assert span is None
        assert tracing.trace_headers() == {}
    (row,) = uow._unwritten
    assert "ce_traceparent" not in json.loads(row[4])


def test_outbox_rows_without_trace_are_unchanged() -> None:
    at = datetime(2026, 11, 21, tzinfo=UTC)
    plain = outbox_rows(
        PARTICIPATION_CHANGED,
        [participation_changed("A-1", ParticipationMode.OPT_IN_HIDDEN)],
        source="/s",
        time=at,
        ce_ids=["x"],
    )
    empty = outbox_rows(
        PARTICIPATION_CHANGED,
        [participation_changed("A-1", ParticipationMode.OPT_IN_HIDDEN)],
        source="/s",
        time=at,
        ce_ids=["x"],
        trace={},
    )
    assert plain == empty


def test_the_consumer_span_is_the_child_of_the_events_traceparent(
    spans: InMemorySpanExporter,
) -> None:
    with tracing.consuming("reviews.published", [_envelope(TRACEPARENT, "vendor=x")]):
        pass
    span = _only(spans, "reviews.published process")
    assert span.kind is SpanKind.CONSUMER
    assert _hex(span.context.trace_id, 32) == TRACE_ID
    assert span.parent is not None and span.parent.is_remote
    assert _hex(span.parent.span_id, 16) == PARENT_ID
    assert span.context.trace_state.get("vendor") == "x"


def test_a_batch_span_joins_the_first_traced_event_and_links_the_others(
    spans: InMemorySpanExporter,
) -> None:
    other = f"00-{'1' * 32}-{'2' * 16}-01"
    with tracing.consuming("mls.transactions", [_envelope(None), _envelope(TRACEPARENT)] * 1):
        pass
    with tracing.consuming(
        "reviews.published", [_envelope(TRACEPARENT), _envelope(None), _envelope(other)]
    ):
        pass
    first = _only(spans, "mls.transactions process")
    assert _hex(first.context.trace_id, 32) == TRACE_ID
    batch = _only(spans, "reviews.published process")
    assert _hex(batch.context.trace_id, 32) == TRACE_ID
    assert [_hex(link.context.trace_id, 32) for link in batch.links] == ["1" * 32]
    assert batch.attributes is not None
    assert batch.attributes["messaging.batch.message_count"] == 3


@pytest.mark.parametrize("traceparent", [None, "garbage", f"00-{'0' * 32}-{'0' * 16}-01"])
def test_an_event_without_a_usable_context_starts_a_root_span(
    spans: InMemorySpanExporter, traceparent: str | None
) -> None:
    with tracing.consuming("leads", [_envelope(traceparent)]):
        pass
    assert _only(spans, "leads process").parent is None


async def test_queued_mail_carries_the_context_to_the_smtp_send_span(
    spans: InMemorySpanExporter,
) -> None:
    cipher = PiiCipher("test-key")
    mail = QueuedMail("pat@example.com", RenderedMail("Hi", "text"), "k-1")
    with tracing.consuming("mls.transactions", [_envelope(TRACEPARENT)]):
        _, arguments = mail_queue_insert(cipher, [mail])
    sealed = arguments[2][0]
    sent: list[str] = []

    class Sender(SmtpSender):
        async def send(self, to: str, mail: RenderedMail, message_id: str) -> None:
            sent.append(to)

    relay = MailRelay(
        cast(Any, None),
        cipher,
        Sender("127.0.0.1", 2525, "a@example.com"),
        SystemClock(),
        service="test",
    )
    assert await relay._deliver({"sealed": sealed, "dedupe_key": "k-1"}) is None
    assert sent == ["pat@example.com"]
    consumer = _only(spans, "mls.transactions process")
    send = _only(spans, "smtp send")
    assert send.kind is SpanKind.CLIENT
    assert send.parent is not None and send.parent.span_id == consumer.context.span_id
    assert send.context.trace_id == consumer.context.trace_id


def test_mail_queued_with_tracing_off_carries_no_context(tracing_off: None) -> None:
    cipher = PiiCipher("test-key")
    mail = QueuedMail("pat@example.com", RenderedMail("Hi", "text"), "k-1")
    _, arguments = mail_queue_insert(cipher, [mail])
    assert "trace" not in json.loads(cipher.decrypt(arguments[2][0]))


@pytest.fixture
def http_spans(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> InMemorySpanExporter:
    """FastAPI traces when a global tracer provider is set (`configure_tracing` sets it)."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    return spans


def _app() -> FastAPI:
    router = APIRouter(prefix="/api/v1")

    @router.post("/things/{thing_id}", status_code=201)
    async def create(thing_id: str) -> dict[str, str]:
        return tracing.trace_headers()

    return create_http_app(ServiceRuntime(ServiceSettings()), [router], title="test")


async def test_an_http_request_gets_a_server_span_current_in_the_route(
    http_spans: InMemorySpanExporter,
) -> None:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post("/api/v1/things/7", headers={"traceparent": TRACEPARENT})
        await client.get("/healthz")
    assert response.status_code == 201
    server = _only(http_spans, "POST /api/v1/things/{thing_id}")
    assert server.kind is SpanKind.SERVER
    assert server.parent is not None and _hex(server.parent.span_id, 16) == PARENT_ID
    assert _hex(server.context.trace_id, 32) == TRACE_ID
    assert server.attributes is not None
    assert server.attributes["http.response.status_code"] == 201
    # what the route publishes names the server span as its parent
    assert response.json()["ce_traceparent"] == (
        f"00-{TRACE_ID}-{_hex(server.context.span_id, 16)}-01"
    )
    # probes are not traced, nor FastAPI's internal operations
    assert len(http_spans.get_finished_spans()) == 1


async def test_an_http_request_without_traceparent_starts_a_trace(
    http_spans: InMemorySpanExporter,
) -> None:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await client.post("/api/v1/things/7")
    assert _only(http_spans, "POST /api/v1/things/{thing_id}").parent is None


def _log_line(message: str) -> dict[str, Any]:
    configure_logging("test")
    stream = io.StringIO()
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    logging.getLogger("test.tracing").warning(message)
    line: dict[str, Any] = json.loads(stream.getvalue().splitlines()[-1])
    return line


def test_log_lines_in_a_span_carry_its_trace_and_span_ids(spans: InMemorySpanExporter) -> None:
    with tracing.consuming("leads", [_envelope(TRACEPARENT)]):
        line = _log_line("inside")
    span = _only(spans, "leads process")
    assert line["trace_id"] == TRACE_ID
    assert line["span_id"] == _hex(span.context.span_id, 16)
    assert "trace_id" not in _log_line("outside")


def test_log_lines_have_no_trace_fields_with_tracing_off(tracing_off: None) -> None:
    assert "trace_id" not in _log_line("off")


class _Conn:
    async def fetchval(self, *_: Any) -> bool:
        return True

    async def fetch(self, _: str, ce_ids: list[str], __: list[str]) -> list[dict[str, str]]:
        return [{"ce_id": ce_id} for ce_id in ce_ids]


@asynccontextmanager
async def _unit_of_work(envelope: Envelope | None = None) -> AsyncIterator[UnitOfWork]:
    uow = _uow()
    uow.conn = cast(Any, _Conn())
    uow.envelope = envelope
    yield uow


def _record(offset: int, traceparent: str) -> ConsumerRecord[bytes | None, bytes]:
    event = encode(
        PARTICIPATION_CHANGED.ce_type,
        participation_changed("A-1", ParticipationMode.OPT_IN_HIDDEN),
        source="/s",
        key="A-1",
    )
    headers = {**event.headers, "ce_traceparent": traceparent.encode()}
    return ConsumerRecord(
        topic=PARTICIPATION_CHANGED.topic,
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=event.key,
        value=event.value,
        checksum=None,
        serialized_key_size=len(event.key or b""),
        serialized_value_size=len(event.value),
        headers=list(headers.items()),
    )


@pytest.mark.parametrize("batch", [False, True])
async def test_the_consumer_handles_an_event_in_a_span_of_its_trace(
    spans: InMemorySpanExporter, batch: bool
) -> None:
    dispatcher = EventDispatcher("test")
    seen: list[dict[str, str]] = []

    async def handler(_: Any, __: UnitOfWork) -> None:
        seen.append(tracing.trace_headers())

    if batch:
        dispatcher.on_batch(PARTICIPATION_CHANGED.topic)(handler)
    else:
        dispatcher.on(PARTICIPATION_CHANGED)(handler)
    broker = KafkaBroker()
    (subscriber,) = dispatcher.attach(broker, _unit_of_work, group_id="test", max_attempts=1)
    other = f"00-{'1' * 32}-{'2' * 16}-01"
    records = [_record(1, TRACEPARENT), _record(2, other)]
    async with TestKafkaBroker(broker):  # the records as aiokafka polls them, one or a batch
        if batch:
            await subscriber.process_message(tuple(records))
        else:
            for record in records:
                await subscriber.process_message(record)
    processed = [s for s in spans.get_finished_spans() if s.kind is SpanKind.CONSUMER]
    assert len(processed) == (1 if batch else 2)
    assert _hex(processed[0].context.trace_id, 32) == TRACE_ID
    assert processed[0].parent is not None and _hex(processed[0].parent.span_id, 16) == PARENT_ID
    assert seen[0]["ce_traceparent"].split("-")[1] == TRACE_ID
    if batch:
        assert [_hex(link.context.trace_id, 32) for link in processed[0].links] == ["1" * 32]
    else:
        assert _hex(processed[1].context.trace_id, 32) == "1" * 32


def test_spans_are_named_after_the_service_unless_otel_service_name_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
    resource = tracing.resource_of("scoring")
    assert resource.attributes["service.name"] == "scoring"
    assert resource.attributes["deployment.environment"] == "test"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "scoring-eu")
    assert tracing.resource_of("scoring").attributes["service.name"] == "scoring-eu"
