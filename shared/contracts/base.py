"""Base model and field types for every event and API contract."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Self, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationInfo,
    model_validator,
)

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})"
)


def _rfc3339_only(value: Any) -> Any:
    """Pydantic alone would also take Unix seconds (`1700000000`, as a number or a string) and
    ISO 8601 variants; the contract's timestamps are RFC 3339, and anything else is refused."""
    if isinstance(value, str) and not _RFC3339.fullmatch(value):
        raise ValueError("expected an RFC 3339 timestamp such as 2026-11-20T15:00:00Z")
    if isinstance(value, int | float):
        raise ValueError("expected an RFC 3339 timestamp string, not a number")
    return value


_DRIVER_INFINITIES = (datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC))
"""asyncpg stores these two instants as PostgreSQL's -infinity and infinity and reads them
back as naive datetimes, which no aware instant can be compared with: a lead given
0001-01-01T00:00:00Z as its client's response answered every later request with a 500."""


def _as_utc(value: datetime) -> datetime:
    try:
        instant = value.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        raise ValueError("the instant is outside the range of dates") from exc
    if instant in _DRIVER_INFINITIES:
        raise ValueError(
            "the instant is outside the range of dates "
            "(the first and last microseconds of the calendar are reserved)"
        )
    return instant


def format_rfc3339(value: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, the only timestamp format on the wire."""
    text = value.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


UtcDatetime = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339_only),
    AfterValidator(_as_utc),
]
"""A timezone-aware instant, normalised to UTC; naive datetimes are rejected. Pydantic writes a
UTC instant exactly as `format_rfc3339` does (`Z`, microseconds only when there are some), in
Rust; a PlainSerializer calling `format_rfc3339` cost a Python call per timestamp."""


_NO_NUL_ESCAPE: dict[str, bool] = {"no_nul_escape": True}


class Contract(BaseModel):
    """Frozen base for everything that crosses a service boundary. Strict writer: an event built
    here with a field the contract does not define is refused, so what the services publish is
    exactly the contract. Tolerant reader: consumers validate with `validate_json_without_nul`,
    which ignores unknown fields (docs/design.md 2.2)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="after")
    def _no_nul_characters(self, info: ValidationInfo) -> Self:
        """JSON allows U+0000 in a string; PostgreSQL text cannot store it. Refused here, such an
        event is dead-lettered as invalid at once instead of failing in every consumer's
        database (and a replay skips it like any other unreadable record). One check a model,
        not one a field: a Python call per field cost more than the rest of the validation.
        Skipped for JSON that `validate_json_without_nul` found free of the only way JSON can
        spell a NUL (`\\u0000`; the parser refuses a raw one)."""
        if info.context is _NO_NUL_ESCAPE:
            return self
        for name, value in self.__dict__.items():
            if type(value) is str and "\x00" in value:
                raise ValueError(f"{name}: text must not contain NUL (U+0000) characters")
        return self


ContractT = TypeVar("ContractT", bound=BaseModel)


def validate_json_without_nul(model: type[ContractT], raw: bytes) -> ContractT:
    """An event's data as a consumer reads it: unknown fields, at any depth, are ignored
    (docs/design.md 2.2: producers may add optional fields) and every known one is validated.
    `model.model_validate_json(raw, extra="ignore")`, sparing every model's NUL check when the
    bytes hold no `\\u0000` escape (a byte search instead of a Python call per model: 11 % of a
    replay's samples in py-spy went to that check); an ignored field is never stored, so a NUL
    in it harms nothing."""
    context = None if b"\\u0000" in raw else _NO_NUL_ESCAPE
    return model.model_validate_json(raw, context=context, extra="ignore")
