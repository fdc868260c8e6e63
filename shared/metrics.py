"""Prometheus metrics shared by every service (exposed on `/metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_CONSUMED = Counter(
    "ratings_events_consumed_total",
    "Events taken from Kafka, by outcome (processed, duplicate, ignored, dead_lettered).",
    ["service", "topic", "outcome"],
)
EVENT_HANDLING_SECONDS = Histogram(
    "ratings_event_handling_seconds",
    "Time from receipt to commit of one event (or one batch).",
    ["service", "topic"],
)
DEAD_LETTERED = Counter(
    "ratings_dead_lettered_total",
    "Messages sent to a DLQ, by reason.",
    ["service", "topic", "reason"],
)
HANDLER_RETRIES = Counter(
    "ratings_handler_retries_total", "Retries of a failing handler.", ["service", "topic", "kind"]
)
OUTBOX_RELAYED = Counter("ratings_outbox_relayed_total", "Outbox rows published.", ["service"])
OUTBOX_BACKLOG = Gauge("ratings_outbox_backlog", "Outbox rows not yet published.", ["service"])
MAIL_SENT = Counter("ratings_mail_sent_total", "Emails accepted by the SMTP server.", ["service"])
MAIL_FAILURES = Counter("ratings_mail_failures_total", "Failed SMTP attempts.", ["service"])
TRUST_SIGNALS = Counter(
    "ratings_trust_signals_total",
    "Trust signals raised (docs/design.md 3.3): a contact or review refused, flagged or held, "
    "by signal.",
    ["service", "signal", "outcome"],
)
