"""OpenTelemetry tracing: the OTLP exporter, and the W3C trace context carried across outboxes.

An event is written to the outbox in one transaction and sent by the relay later, so no
instrumentation of the producer can see the span that decided it. The context is therefore
captured when the event is published (`uow.publish`) and stored with the row as the CloudEvents
distributed-tracing extension (`ce_traceparent`, `ce_tracestate` in binary mode); consumers
start their span from it. Queued mail carries it the same way to the SMTP send. HTTP requests
get their span from FastAPI (`HTTP_TELEMETRY`).

Off by default (`TRACING_ENABLED`): then every function here is one test of a module global and
returns nothing, so the consumer, outbox and mail paths pay no span, header or allocation.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, MutableMapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from fastapi.telemetry import TelemetryConfig
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.cloudevents import Envelope

TRACEPARENT = "ce_traceparent"
TRACESTATE = "ce_tracestate"
MAX_LINKS = 128
"""The SDK's default span link limit: a batch span links to at most this many other events."""
UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
"""Probes and scrapes: a trace each would drown the requests that matter."""
HTTP_TELEMETRY: TelemetryConfig = {
    "exclude": lambda scope: scope.get("path") in UNTRACED_PATHS,
    # a span per dependency, endpoint call and serialisation: noise beside the server span
    "operation_spans": False,
}
"""FastAPI's own OpenTelemetry support (`FastAPI(telemetry=...)`): once `configure_tracing` has
set the global tracer provider, each request gets a SERVER span, the child of the request's
`traceparent` header if any, current while the route runs (so what it publishes or mails joins
the trace). Without a provider FastAPI skips it all."""

_PROPAGATOR = TraceContextTextMapPropagator()
_NO_SPAN: AbstractContextManager[Any] = contextlib.nullcontext()
_tracer: trace.Tracer | None = None
"""Set by `configure_tracing`: tracing is on exactly when this is not None."""
_provider: TracerProvider | None = None


def configure_tracing(service: str) -> None:
    """Export spans over OTLP/HTTP, configured by the standard variables
    (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
    `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_SCHEDULE_DELAY`, ...); the resource's
    `service.name` is `OTEL_SERVICE_NAME`, else the service's name. Once per process (the
    tracer provider is global): later calls keep the first provider."""
    global _tracer, _provider
    if _provider is None:
        # imported here: the exporter (protobuf, requests) is loaded only by processes that trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider = TracerProvider(resource=resource_of(service))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        _provider = provider
    _tracer = trace.get_tracer(__name__)


def resource_of(service: str) -> Resource:
    """What the spans say they come from: `service.name` is `OTEL_SERVICE_NAME` if set (the
    SDK reads it, and `OTEL_RESOURCE_ATTRIBUTES`), else the service's name."""
    return Resource.create({} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service})


def flush_spans(timeout_seconds: float = 5.0) -> None:
    """Export the spans still buffered (at shutdown: the batch processor sends on a timer)."""
    if _provider is not None:
        _provider.force_flush(int(timeout_seconds * 1000))


def tracing_enabled() -> bool:
    return _tracer is not None


def trace_headers() -> dict[str, str]:
    """The current span's context as the CloudEvents distributed-tracing extension headers;
    empty when tracing is off or no span is current."""
    if _tracer is None:
        return {}
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return {f"ce_{name}": value for name, value in carrier.items()}


def context_of(traceparent: str | None, tracestate: str | None = None) -> otel_context.Context:
    """The remote parent a `traceparent` (and `tracestate`) names; an empty context (so a root
    span) when it is missing or malformed: a bad trace header never fails an event."""
    carrier: dict[str, str] = {}
    if traceparent:
        carrier["traceparent"] = traceparent
        if tracestate:
            carrier["tracestate"] = tracestate
    return _PROPAGATOR.extract(carrier)


def published_trace(topic: str, count: int) -> dict[str, str]:
    """The headers for events published to the outbox in one call: the context of a PRODUCER
    span (ended at once: the send happens later, in the relay) whose parent is the current
    span, so a consumer's span is its child. Empty when tracing is off."""
    if _tracer is None:
        return {}
    span = _tracer.start_span(
        f"{topic} publish",
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "create",
            "messaging.destination.name": topic,
            "messaging.batch.message_count": count,
        },
    )
    span.end()
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return {f"ce_{name}": value for name, value in carrier.items()}


def consuming(topic: str, envelopes: Sequence[Envelope]) -> AbstractContextManager[Any]:
    """A CONSUMER span around handling `envelopes` (one, or a batch handled in one transaction).

    Its parent is the first event's trace context (a root span if it has none); a batch's other
    traced events are links (OpenTelemetry's messaging convention for batches): what the batch
    publishes joins the first event's trace, and the others' traces lead to it by the link."""
    if _tracer is None:
        return _NO_SPAN
    parent: otel_context.Context | None = None
    links: list[Link] = []
    for envelope in envelopes:
        if envelope.traceparent is None:
            continue
        remote = context_of(envelope.traceparent, envelope.tracestate)
        if parent is None:
            parent = remote
        elif len(links) < MAX_LINKS:
            span_context = trace.get_current_span(remote).get_span_context()
            if span_context.is_valid:
                links.append(Link(span_context))
    attributes: dict[str, Any] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": topic,
    }
    if len(envelopes) == 1:
        attributes["messaging.message.id"] = envelopes[0].id
        attributes["cloudevents.event_type"] = envelopes[0].type
    else:
        attributes["messaging.batch.message_count"] = len(envelopes)
    return _tracer.start_as_current_span(
        f"{topic} process",
        context=parent if parent is not None else otel_context.Context(),
        kind=SpanKind.CONSUMER,
        links=links,
        attributes=attributes,
    )


def sending_mail(trace_context: Mapping[str, str] | None, server: str, port: int) -> Any:
    """A CLIENT span around one SMTP send, the child of the span that queued the mail."""
    if _tracer is None:
        return _NO_SPAN
    carried = trace_context or {}
    return _tracer.start_as_current_span(
        "smtp send",
        context=context_of(carried.get(TRACEPARENT), carried.get(TRACESTATE)),
        kind=SpanKind.CLIENT,
        attributes={"server.address": server, "server.port": port},
    )


def log_fields(record: MutableMapping[str, Any]) -> None:
    """Add the current span's `trace_id` and `span_id` (hex, as trace backends show them)."""
    if _tracer is None:
        return
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        record["trace_id"] = format(span_context.trace_id, "032x")
        record["span_id"] = format(span_context.span_id, "016x")
