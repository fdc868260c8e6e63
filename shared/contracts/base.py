"""Base model and field types for every event and API contract."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, PlainSerializer


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def format_rfc3339(value: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, the only timestamp format on the wire."""
    text = value.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


UtcDatetime = Annotated[
    AwareDatetime,
    AfterValidator(_as_utc),
    PlainSerializer(format_rfc3339, return_type=str, when_used="json"),
]
"""A timezone-aware instant, normalised to UTC; naive datetimes are rejected."""


class Contract(BaseModel):
    """Frozen, strict-about-unknown-fields base for everything that crosses a service boundary."""

    model_config = ConfigDict(frozen=True, extra="forbid")
