"""Prometheus metrics shared by every service (exposed on `/metrics`; listed in the README's
"Monitoring" section, alerted on in deploy/monitoring/alerts.yaml)."""

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
    "Messages sent to a DLQ, by the topic they were read from and the reason.",
    ["service", "topic", "reason"],
)
HANDLER_RETRIES = Counter(
    "ratings_handler_retries_total", "Retries of a failing handler.", ["service", "topic", "kind"]
)
CONSUMER_LAG = Gauge(
    "ratings_consumer_lag",
    "Records of a topic the consumer group has not committed yet (end offsets minus committed "
    "offsets, summed over the topic's partitions).",
    ["service", "group", "topic"],
)
OUTBOX_RELAYED = Counter("ratings_outbox_relayed_total", "Outbox rows published.", ["service"])
OUTBOX_BACKLOG = Gauge("ratings_outbox_backlog", "Outbox rows not yet published.", ["service"])
OUTBOX_OLDEST_AGE = Gauge(
    "ratings_outbox_oldest_unsent_age_seconds",
    "Age of the oldest outbox row not yet published (0 when none waits).",
    ["service"],
)
MAIL_SENT = Counter("ratings_mail_sent_total", "Emails accepted by the SMTP server.", ["service"])
MAIL_FAILURES = Counter("ratings_mail_failures_total", "Failed SMTP attempts.", ["service"])
MAIL_QUEUE_DEPTH = Gauge(
    "ratings_mail_queue_depth",
    "Emails not yet sent, by state: due (to send now) or waiting (a retry's back-off or a "
    "later send time).",
    ["service", "state"],
)
MAIL_OLDEST_DUE_AGE = Gauge(
    "ratings_mail_oldest_due_age_seconds",
    "How long the longest-due unsent email has been due (0 when none is).",
    ["service"],
)
HTTP_REQUESTS = Counter(
    "ratings_http_requests_total",
    "HTTP requests answered, by route template (never the raw path), method and status.",
    ["service", "route", "method", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "ratings_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template, method and status.",
    ["service", "route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
SCHEDULER_DELAY_SECONDS = Histogram(
    "ratings_scheduler_delay_seconds",
    "How late a timer job started compared to its schedule (a busy event loop makes it late).",
    ["service", "job"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0),
)
SCHEDULER_JOB_SECONDS = Histogram(
    "ratings_scheduler_job_duration_seconds",
    "How long one run of a timer job took.",
    ["service", "job"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0),
)
SCHEDULER_RUNS = Counter(
    "ratings_scheduler_runs_total",
    "Runs of a timer job, by outcome (ok, failed).",
    ["service", "job", "outcome"],
)
SCHEDULER_LAST_RUN = Gauge(
    "ratings_scheduler_last_run_timestamp_seconds",
    "When a timer job last finished a run (Unix time): a job stuck in a run stops moving it.",
    ["service", "job"],
)
SERVICE_READY = Gauge(
    "ratings_service_ready",
    "1 when the service's dependency check passes (database, kafka), else 0.",
    ["service", "check"],
)
