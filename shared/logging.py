"""Structured JSON logs on stderr, one object per line, tagged with the service name."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

from pythonjsonlogger.json import JsonFormatter

from shared.tracing import log_fields


class _ServiceFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        return True


class _TraceFilter(logging.Filter):
    """`trace_id` and `span_id` on every line logged inside a span (when tracing is on), so a
    trace's log lines can be found from the trace and the other way round."""

    def filter(self, record: logging.LogRecord) -> bool:
        log_fields(record.__dict__)
        return True


class RepeatedMessages(logging.Filter):
    """Let one record of a kind through per `window_seconds` and count the rest.

    aiokafka retries from loops that do not always back off: with the broker down, a producer
    whose partitions lost their leader asked for metadata ~4,000 times a second, each failure
    an ERROR line (measured against the local broker stopped for 10 s). A kind is the logger
    and the message template, so the same failure with a new errno is still a repeat. The next
    record let through says how many were held back (`repeats_suppressed`).
    """

    def __init__(
        self,
        prefixes: tuple[str, ...] = ("aiokafka",),
        window_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.prefixes = prefixes
        self.window_seconds = window_seconds
        self.clock = clock
        self._shown_at: dict[tuple[str, int, str], float] = {}
        self._held: dict[tuple[str, int, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefixes):
            return True
        kind = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        shown_at = self._shown_at.get(kind)
        if shown_at is not None and now - shown_at < self.window_seconds:
            self._held[kind] = self._held.get(kind, 0) + 1
            return False
        self._shown_at[kind] = now
        held = self._held.pop(kind, 0)
        if held:
            record.repeats_suppressed = held
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(service)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            timestamp=False,
        )
    )
    handler.addFilter(_ServiceFilter(service))
    handler.addFilter(_TraceFilter())
    handler.addFilter(RepeatedMessages())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
