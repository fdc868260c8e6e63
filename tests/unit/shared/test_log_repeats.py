"""A client library's retry loop must not flood the logs: one line per kind per window."""

from __future__ import annotations

import io
import json
import logging

from pythonjsonlogger.json import JsonFormatter

from shared.logging import RepeatedMessages


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(name: str, msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_repeats_inside_the_window_are_held_and_counted_on_the_next_line() -> None:
    clock = Clock()
    repeats = RepeatedMessages(window_seconds=10.0, clock=clock)
    template = "Unable connect to node with id %s: %s"
    first = record("aiokafka", template, 1, "[Errno 111]")
    assert repeats.filter(first) and not hasattr(first, "repeats_suppressed")
    shown = [repeats.filter(record("aiokafka", template, 1, f"error {n}")) for n in range(4000)]
    assert not any(shown)
    clock.now = 10.0
    after = record("aiokafka", template, 1, "[Errno 111]")
    assert repeats.filter(after)
    assert after.repeats_suppressed == 4000  # type: ignore[attr-defined]
    clock.now = 10.5
    assert not repeats.filter(record("aiokafka", template, 1, "[Errno 111]"))


def test_kinds_are_counted_apart_and_other_loggers_are_left_alone() -> None:
    repeats = RepeatedMessages(window_seconds=10.0, clock=Clock())
    assert repeats.filter(record("aiokafka.producer.sender", "Got error produce response %s", 1))
    assert repeats.filter(record("aiokafka", "Unable to update metadata from %s", [1]))
    assert repeats.filter(record("aiokafka", "Unable to update metadata from %s", [1], level=30))
    assert not repeats.filter(record("aiokafka", "Unable to update metadata from %s", [2]))
    for _ in range(3):
        assert repeats.filter(record("shared.outbox", "outbox relay failed; restarting"))


def test_the_count_appears_in_the_json_line() -> None:
    clock = Clock()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("%(levelname)s %(name)s %(message)s"))
    handler.addFilter(RepeatedMessages(window_seconds=1.0, clock=clock))
    logger = logging.getLogger("aiokafka.test_log_repeats")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for now in (0.0, 0.1, 0.2, 1.5):
            clock.now = now
            logger.error("Unable to update metadata from %s", [1])
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 2
    assert "repeats_suppressed" not in lines[0]
    assert lines[1]["repeats_suppressed"] == 2
