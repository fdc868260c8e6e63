"""Trust signals on a submitted review (docs/design.md §3.3): signs that an agent wrote their own
reviews or had them written. A review with any signal is held for a moderator with the signals
listed, never dropped; the moderator approves it (then it goes on as its scores say) or
rejects it. Pure: the earlier reviews and the facts about the submission are passed in.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from difflib import SequenceMatcher
from enum import StrEnum
from ipaddress import ip_address

from services.reviews.domain.moderation import Route, Routing

BURST_MAX = 5
BURST_WINDOW = timedelta(hours=24)
"""More than `BURST_MAX` reviews of one agent within `BURST_WINDOW` (this one included): a
closing names a few clients, and honest clients answer over days, not all at once."""
COPY_THRESHOLD = 0.75
COPY_WINDOW = timedelta(days=180)
COPY_MIN_WORDS = 8
"""A comment whose words match another comment on the same agent (within `COPY_WINDOW`) with a
similarity of at least `COPY_THRESHOLD` is a copy, edited or reordered. Honest comments that
share the usual phrases ("great to work with", "very professional") score 0.55 to 0.65; a copy
with a few words changed scores above 0.8. Comments shorter than `COPY_MIN_WORDS` words are not
compared: "Great agent, highly recommend!" is said honestly by many clients."""
ADDRESS_RETENTION = timedelta(days=30)
"""How long a keyed hash of an address an agent used on the API is kept (and counts)."""


class Signal(StrEnum):
    BURST = "burst"
    COPIED_COMMENT = "copied_comment"
    FLAGGED_CONTACT = "flagged_contact"
    AGENT_ADDRESS = "agent_address"


@dataclass(frozen=True)
class SignalRules:
    """Settings `REVIEW_BURST_MAX`, `REVIEW_BURST_WINDOW_HOURS`, `REVIEW_COPY_THRESHOLD`."""

    burst_max: int = BURST_MAX
    burst_window: timedelta = BURST_WINDOW
    copy_threshold: float = COPY_THRESHOLD
    copy_window: timedelta = COPY_WINDOW
    copy_min_words: int = COPY_MIN_WORDS


@dataclass(frozen=True)
class EarlierReview:
    """Another review of the same agent, as the signals need it."""

    submitted_at: datetime
    comment: str


@dataclass(frozen=True)
class Submission:
    submitted_at: datetime
    comment: str
    contact_flags: Sequence[str] = ()
    """What invitations flagged on the contact the agent entered (`invitation.issued.v1`)."""
    from_agent_address: bool = False
    """Sent from an address the agent itself used on the API lately (keyed hashes compared)."""


def comparable_address(address: str | None) -> str | None:
    """The address to compare, or None: a loopback (or unreadable) address is the proxy in front
    of the service or the machine itself, not a person, and would match every review."""
    try:
        return None if address is None or ip_address(address).is_loopback else address
    except ValueError:
        return None


_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """Lower-case words without accents or punctuation."""
    decomposed = unicodedata.normalize("NFKD", text)
    folded = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()
    return _WORD.findall(folded)


def similarity(a: str, b: str) -> float:
    """How much of the two comments' words match in order (difflib's ratio over words: 0 for
    nothing shared, 1 for the same words)."""
    return SequenceMatcher(None, words(a), words(b), autojunk=False).ratio()


def is_copy(comment: str, earlier: str, rules: SignalRules) -> bool:
    mine, theirs = words(comment), words(earlier)
    if min(len(mine), len(theirs)) < rules.copy_min_words:
        return False
    matcher = SequenceMatcher(None, mine, theirs, autojunk=False)
    # the cheap upper bounds first: most pairs of comments are far apart
    return (
        matcher.real_quick_ratio() >= rules.copy_threshold
        and matcher.quick_ratio() >= rules.copy_threshold
        and matcher.ratio() >= rules.copy_threshold
    )


def signals(
    submission: Submission, earlier: Sequence[EarlierReview], rules: SignalRules = SignalRules()
) -> tuple[Signal, ...]:
    """The signals on a new review of an agent, given the agent's earlier reviews."""
    found: list[Signal] = []
    now = submission.submitted_at
    recent = [r for r in earlier if now - rules.burst_window < r.submitted_at <= now]
    if len(recent) + 1 > rules.burst_max:
        found.append(Signal.BURST)
    comparable = [r for r in earlier if now - rules.copy_window < r.submitted_at <= now]
    if any(is_copy(submission.comment, r.comment, rules) for r in comparable):
        found.append(Signal.COPIED_COMMENT)
    if submission.contact_flags:
        found.append(Signal.FLAGGED_CONTACT)
    if submission.from_agent_address:
        found.append(Signal.AGENT_ADDRESS)
    return tuple(found)


def held(routing: Routing, found: Sequence[Signal]) -> Routing:
    """Any signal sends the review to a moderator, whatever its scores and content."""
    return replace(routing, route=Route.MODERATOR) if found else routing
