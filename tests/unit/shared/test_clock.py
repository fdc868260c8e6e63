import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.clock import FileClock, FixedClock, SystemClock, clock_from_config, parse_instant


def test_fixed_clock_moves_only_when_told() -> None:
    clock = FixedClock(datetime(2026, 1, 31, tzinfo=UTC))
    assert clock.now() == clock.now()
    clock.advance(timedelta(days=1))
    assert clock.now() == datetime(2026, 2, 1, tzinfo=UTC)


def test_offset_clock_is_shifted() -> None:
    clock = SystemClock(timedelta(days=-365))
    assert abs((datetime.now(UTC) - clock.now()) - timedelta(days=365)) < timedelta(seconds=5)


def test_file_clock_follows_the_file(tmp_path: Path) -> None:
    path = tmp_path / "clock.json"
    clock = FileClock(path)
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=5)
    FileClock.write(path, fixed_at=datetime(2027, 3, 1, tzinfo=UTC))
    assert clock.now() == datetime(2027, 3, 1, tzinfo=UTC)
    FileClock.write(path, fixed_at=datetime(2027, 4, 1, tzinfo=UTC))
    os.utime(path, ns=(1, path.stat().st_mtime_ns + 1_000_000))
    assert clock.now() == datetime(2027, 4, 1, tzinfo=UTC)


def test_config_picks_the_clock() -> None:
    assert isinstance(clock_from_config("2026-05-31T00:00:00Z"), FixedClock)
    assert isinstance(clock_from_config(None, 60), SystemClock)
    assert isinstance(clock_from_config(None, 0, "/tmp/x.json"), FileClock)


def test_instants_without_offset_are_refused() -> None:
    with pytest.raises(ValueError, match="offset"):
        parse_instant("2026-05-31T00:00:00")
    assert parse_instant("2026-05-31T02:00:00+02:00") == datetime(2026, 5, 31, tzinfo=UTC)
