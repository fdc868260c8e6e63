"""The public search's order and its keyset cursors (pure).

Order (docs/design.md 1.5 and 2.4): status (gold, silver, none), then stars, then positive reviews in
three months; the directory breaks the remaining ties by name, then agent id, so that a page of
results reads alphabetically and every agent has exactly one place. A cursor is the sort key of
the last agent shown: the next page starts strictly after it, so pages stay stable while ratings
change (an agent may move, but none is shown twice on one walk or skipped for a shift of offsets).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from shared.contracts.ratings import Status

STATUS_RANK: dict[Status, int] = {Status.GOLD: 2, Status.SILVER: 1, Status.NONE: 0}


def status_rank(status: Status | None) -> int | None:
    return None if status is None else STATUS_RANK[status]


class BadCursor(ValueError):
    """A cursor this directory did not write (edited, truncated, from another version)."""


@dataclass(frozen=True, order=True)
class SortKey:
    """Where an agent sits in the search order; comparing keys compares places (smaller first)."""

    status_rank_desc: int
    stars_desc: int
    positive_3m_desc: int
    name: str
    agent_id: str

    @classmethod
    def of(
        cls, status: Status, stars: int, positive_reviews_3m: int, name: str, agent_id: str
    ) -> SortKey:
        # negated so that one ascending comparison orders every key (SQL row comparison too)
        return cls(-STATUS_RANK[status], -stars, -positive_reviews_3m, name, agent_id)

    def encode(self) -> str:
        raw = json.dumps(
            [
                self.status_rank_desc,
                self.stars_desc,
                self.positive_3m_desc,
                self.name,
                self.agent_id,
            ],
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> SortKey:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            values = json.loads(raw)
        except (binascii.Error, ValueError) as exc:
            raise BadCursor("not a cursor of this directory") from exc
        if not (
            isinstance(values, list)
            and len(values) == 5
            and all(type(v) is int for v in values[:3])
            and all(isinstance(v, str) for v in values[3:])
            and -2 <= values[0] <= 0
            and -5 <= values[1] <= 0
            and -(2**31) < values[2] <= 0
            and not any("\x00" in v for v in values[3:])
        ):
            raise BadCursor("not a cursor of this directory")
        return cls(*values)


def normalized_name_query(text: str | None) -> str | None:
    """A name search matches names starting with the text or with a word starting with it,
    case-insensitively; blank means no name filter. NUL cannot be in a name (PostgreSQL text
    refuses it), so it separates words like a space."""
    if text is None:
        return None
    words = " ".join(text.replace("\x00", " ").split()).lower()
    return words or None


def usable_id(value: str | None) -> str | None:
    """An office or agent id as typed in a URL: blank means none; one with NUL (which no stored
    id can contain) matches nothing rather than failing in PostgreSQL."""
    if value is None or not value.strip():
        return None
    return None if "\x00" in value else value.strip()
