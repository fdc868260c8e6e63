"""The one injectable clock: every service takes "now" from here, so tests and demos can move time.

`CLOCK_FIXED_AT` pins time, `CLOCK_OFFSET_SECONDS` shifts it, and `CLOCK_FILE` names a JSON file
(`{"fixed_at": "..."}` or `{"offset_seconds": N}`) re-read when it changes, so several service
processes can share one simulated clock that a demo advances.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


class FixedClock:
    """A clock that only moves when told to (tests)."""

    def __init__(self, at: datetime) -> None:
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = at.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        self._at += delta


class FileClock:
    """A clock steered through a small JSON file shared by several processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime_ns = -1
        self._fixed: datetime | None = None
        self._offset = timedelta(0)

    def _reload(self) -> None:
        try:
            mtime_ns = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self._fixed, self._offset, self._mtime_ns = None, timedelta(0), -1
            return
        if mtime_ns == self._mtime_ns:
            return
        try:
            state = json.loads(self.path.read_text() or "{}")
        except json.JSONDecodeError:
            return  # a writer is mid-write; keep the last good state
        self._mtime_ns = mtime_ns
        fixed = state.get("fixed_at")
        self._fixed = parse_instant(fixed) if fixed else None
        self._offset = timedelta(seconds=float(state.get("offset_seconds", 0)))

    def now(self) -> datetime:
        self._reload()
        if self._fixed is not None:
            return self._fixed
        return datetime.now(UTC) + self._offset

    @staticmethod
    def write(path: Path, *, fixed_at: datetime | None = None, offset_seconds: float = 0) -> None:
        """Atomically point every FileClock reading `path` at a new time."""
        state: dict[str, object] = {"offset_seconds": offset_seconds}
        if fixed_at is not None:
            state["fixed_at"] = fixed_at.astimezone(UTC).isoformat()
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(state))
        tmp.replace(path)


def parse_instant(text: str) -> datetime:
    """Parse RFC 3339; a missing offset is an error, not local time."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"instant without a UTC offset: {text!r}")
    return value.astimezone(UTC)


def clock_from_config(
    fixed_at: str | None = None, offset_seconds: float = 0, clock_file: str | None = None
) -> Clock:
    if clock_file:
        return FileClock(Path(clock_file))
    if fixed_at:
        return FixedClock(parse_instant(fixed_at))
    return SystemClock(timedelta(seconds=offset_seconds))
