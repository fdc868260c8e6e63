"""Automatic content checks and the routing of a submitted review (docs/design.md §1.4).

Content that might break the rules or leak personal data (abuse, phone numbers, email
addresses, links, very long texts) goes to a moderator; everything else is routed by its scores:
positive reviews publish at once, the rest wait for the agent's response.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

POSITIVE_THRESHOLD = 3
AUTO_LENGTH_LIMIT = 2000
"""Longer comments are accepted (up to the API limit) but a moderator reads them first."""

# A deliberately short, conservative list; moderators catch what it misses and operators may
# extend it. Matched on whole words after folding case, accents and common digit substitutions.
ABUSIVE_WORDS: frozenset[str] = frozenset(
    {
        "asshole",
        "bastard",
        "bitch",
        "bullshit",
        "cunt",
        "dickhead",
        "fuck",
        "fucker",
        "fucking",
        "idiot",
        "moron",
        "motherfucker",
        "retard",
        "scum",
        "shit",
        "slut",
        "twat",
        "whore",
    }
)

_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
)
_WORD = re.compile(r"[a-z0-9@$]+")
_EMAIL = re.compile(
    r"[A-Za-z0-9._%+\-]+\s*(?:@|\(at\)|\[at\])\s*[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+"
)
_PHONE = re.compile(
    # 10-15 digits with the usual separators (national and international numbers), or a local
    # 555-0188; dates (2026-11-20, 12/05/2026) and prices have too few digits or other separators
    r"(?<![\w/])\+?\(?\d(?:[\s().\-]{0,2}\d){9,14}(?![\w/])|(?<![\w/\-])\d{3}[\s.\-]\d{4}(?![\w/\-])"
)
_LINK = re.compile(
    r"(?:https?://|www\.)\S+"
    r"|\b[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.(?:com|net|org|io|co|info|biz|us|uk|me|ly|app|site)\b",
    re.IGNORECASE,
)


class Flag(StrEnum):
    ABUSIVE_LANGUAGE = "abusive_language"
    PHONE_NUMBER = "phone_number"
    EMAIL_ADDRESS = "email_address"
    LINK = "link"
    LENGTH = "length"


class Route(StrEnum):
    """Where a review goes next."""

    MODERATOR = "moderator"
    PUBLISH = "publish"
    AWAIT_RESPONSE = "await_response"


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def _words(text: str) -> Iterable[str]:
    for word in _WORD.findall(_fold(text)):
        yield word
        yield word.translate(_LEET)


def content_flags(*texts: str | None, length_limit: int = AUTO_LENGTH_LIMIT) -> tuple[Flag, ...]:
    """The reasons a moderator must read these texts first, in a stable order; empty if none."""
    flags: set[Flag] = set()
    for text in texts:
        if not text:
            continue
        if any(word in ABUSIVE_WORDS for word in _words(text)):
            flags.add(Flag.ABUSIVE_LANGUAGE)
        if _EMAIL.search(text):
            flags.add(Flag.EMAIL_ADDRESS)
        if _PHONE.search(text):
            flags.add(Flag.PHONE_NUMBER)
        if _LINK.search(_EMAIL.sub(" ", text)):
            flags.add(Flag.LINK)
        if len(text) > length_limit:
            flags.add(Flag.LENGTH)
    return tuple(flag for flag in Flag if flag in flags)


def is_positive(scores: Mapping[str, int], threshold: int = POSITIVE_THRESHOLD) -> bool:
    """Positive means every category at or above the threshold."""
    return all(score >= threshold for score in scores.values())


@dataclass(frozen=True)
class Routing:
    route: Route
    flags: tuple[Flag, ...]
    positive: bool


def route_submission(scores: Mapping[str, int], comment: str, display_name: str | None) -> Routing:
    """Flagged → moderator; clean and positive → publish now; clean and not → agent responds first."""
    flags = content_flags(comment, display_name)
    positive = is_positive(scores)
    if flags:
        return Routing(Route.MODERATOR, flags, positive)
    return Routing(Route.PUBLISH if positive else Route.AWAIT_RESPONSE, flags, positive)


def route_after_approval(positive: bool) -> Route:
    """A moderator's approval clears the content; the scores still decide who speaks first."""
    return Route.PUBLISH if positive else Route.AWAIT_RESPONSE
