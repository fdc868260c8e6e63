"""Automatic content checks and the routing of a submitted review (docs/design.md §1.4, §3.3).

Content that might break the rules or leak personal data (abuse, phone numbers, email
addresses, links, very long texts) goes to a moderator; everything else is routed by its scores:
positive reviews publish at once, the rest wait for the agent's response. Each check is a
maintained library, not a list of our own: a trained classifier for offensive language
(`alt-profanity-check`), Google's libphonenumber (`phonenumbers`) for phone numbers, the
`email-validator` parser for addresses, and the Public Suffix List snapshot that `tldextract`
ships for links. All of it is pure and offline.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from urllib.parse import urlsplit

import phonenumbers
import tldextract
from email_validator import EmailNotValidError, validate_email

from services.reviews.domain.language import offensive_probability
from shared.contracts.reviews import is_positive

AUTO_LENGTH_LIMIT = 2000
"""Longer comments are accepted (up to the API limit) but a moderator reads them first."""

OFFENSIVE_THRESHOLD = 0.9
"""The classifier's calibrated probability from which a moderator reads the text first. Its own
cut (0.5) holds blunt but honest criticism ("Worst agent ever, incompetent": 0.84) for days;
insults score above 0.95. A held review is read by a person, so a miss costs less than a hold."""

PHONE_REGION = "US"
"""Where a number written without a country code is read as dialled (libphonenumber region)."""


@dataclass(frozen=True)
class ContentRules:
    """The tunable part of the checks (settings `REVIEW_OFFENSIVE_THRESHOLD`,
    `REVIEW_PHONE_REGION`)."""

    offensive_threshold: float = OFFENSIVE_THRESHOLD
    phone_region: str = PHONE_REGION
    length_limit: int = AUTO_LENGTH_LIMIT


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


# Offensive language. The classifier reads words, not places: "Dick Street" or "Cockburn Ave" is
# an address, so the name before a street type is left out of what it reads. Digits standing for
# letters inside a word (m0r0n) and letters spelled out with dots or spaces (f.u.c.k) are read as
# the word they spell; numbers alone (prices, dates) are left as they are.
_STREET_NAME = re.compile(
    r"\b(?:[A-Z][\w'\u2019-]*\s+){1,3}(?=(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|"
    r"Boulevard|Blvd|Court|Ct|Way|Place|Pl|Terrace|Ter|Close|Crescent|Cres|Parkway|Pkwy|"
    r"Circle|Cir|Highway|Hwy|Trail|Trl|Square|Sq|Row|Mews|Hill|Park)\b)"
)
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a"})
_MIXED_WORD = re.compile(r"\b(?=[\w@]*[a-zA-Z])(?=[\w@]*[\d@])[\w@]+\b")
_SPELLED_OUT = re.compile(r"\b(?:[A-Za-z][.\s*_-]){2,}[A-Za-z]\b")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def words_to_classify(text: str) -> str:
    """The text as the offensive-language classifier reads it."""
    text = _STREET_NAME.sub("", _fold(text))
    text = _MIXED_WORD.sub(lambda m: m.group().lower().translate(_LEET), text)
    return _SPELLED_OUT.sub(lambda m: re.sub(r"[.\s*_-]", "", m.group()), text)


def is_offensive(text: str, threshold: float = OFFENSIVE_THRESHOLD) -> bool:
    return offensive_probability(words_to_classify(text)) >= threshold


# Phone numbers. libphonenumber finds numbers as dialled in the region (any common format, with
# or without a country code). A number it finds only as "possible" counts when it is written
# like a phone number (555-0188, with separators); a bare run of digits that is no valid number
# is an MLS number or a reference, not a phone.
def has_phone_number(text: str, region: str = PHONE_REGION) -> bool:
    for match in phonenumbers.PhoneNumberMatcher(
        text, region, leniency=phonenumbers.Leniency.POSSIBLE
    ):
        if phonenumbers.is_valid_number(match.number) or not match.raw_string.isdigit():
            return True
    return False


# Email addresses. Written plainly or spelled out to dodge filters ("pat at example dot com",
# "pat (at) example [dot] com"): the spelled-out forms are rewritten first, then every candidate
# is parsed by `email-validator` (syntax only, no DNS) and its domain must end in a real public
# suffix.
_AT = re.compile(
    r"\s*(?:\(at\)|\[at\]|\{at\})\s*|\s+at\s+(?=[\w-]+\s*(?:\.|\(dot\)|\[dot\]|\s+dot\s+))",
    re.IGNORECASE,
)
_DOT = re.compile(r"\s*(?:\(dot\)|\[dot\]|\{dot\})\s*|\s+dot\s+", re.IGNORECASE)
_EMAIL_CANDIDATE = re.compile(r"[\w.%+'-]+@[\w-]+(?:\.[\w-]+)+")


def _unspelled(text: str) -> str:
    return _DOT.sub(".", _AT.sub("@", text))


def email_addresses(text: str) -> list[str]:
    """The email addresses written in the text, normalised."""
    found = []
    for candidate in _EMAIL_CANDIDATE.findall(_unspelled(text)):
        try:
            email = validate_email(candidate, check_deliverability=False)
        except EmailNotValidError:
            continue
        if _public_suffix(email.ascii_domain):
            found.append(email.normalized)
    return found


# Links. Every whitespace-separated token (without the punctuation around it) is parsed as a URL;
# it is a link if it has a web scheme, or if its host ends in a public suffix from the Public
# Suffix List that `tldextract` ships (read offline: no list is fetched at run time). A suffix
# written with a capital ("the area.It was") is a missing space, not a domain.
_SCHEMES = frozenset({"http", "https", "ftp"})
_TOKEN_EDGES = "\"'()[]{}<>.,;:!?\u00ab\u00bb\u201c\u201d\u2018\u2019"  # noqa: S105


@cache
def _extract() -> tldextract.TLDExtract:
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def _public_suffix(host: str) -> bool:
    parts = _extract()(host)
    return bool(parts.suffix and parts.domain) and parts.suffix == parts.suffix.lower()


def _tokens(text: str) -> Iterator[str]:
    for raw in text.split():
        token = raw.strip(_TOKEN_EDGES)
        if token and "@" not in token:
            yield token


def has_link(text: str) -> bool:
    for token in _tokens(_unspelled(text) if _DOT.search(text) else text):
        parsed = urlsplit(token if "//" in token else f"//{token}")
        if parsed.scheme.lower() in _SCHEMES and parsed.hostname:
            return True
        host = parsed.netloc.rpartition(":")[0] or parsed.netloc  # as written: case counts
        if "." in host and not host.replace(".", "").isdigit() and _public_suffix(host):
            return True
    return False


def content_flags(*texts: str | None, rules: ContentRules = ContentRules()) -> tuple[Flag, ...]:
    """The reasons a moderator must read these texts first, in a stable order; empty if none."""
    flags: set[Flag] = set()
    for text in texts:
        if not text:
            continue
        if is_offensive(text, rules.offensive_threshold):
            flags.add(Flag.ABUSIVE_LANGUAGE)
        if has_phone_number(text, rules.phone_region):
            flags.add(Flag.PHONE_NUMBER)
        if email_addresses(text):
            flags.add(Flag.EMAIL_ADDRESS)
        if has_link(text):
            flags.add(Flag.LINK)
        if len(text) > rules.length_limit:
            flags.add(Flag.LENGTH)
    return tuple(flag for flag in Flag if flag in flags)


@dataclass(frozen=True)
class Routing:
    route: Route
    flags: tuple[Flag, ...]
    positive: bool


def route_submission(
    scores: Mapping[str, int],
    comment: str,
    display_name: str | None,
    rules: ContentRules = ContentRules(),
) -> Routing:
    """Flagged → moderator; clean and positive → publish now; clean and not → agent responds first."""
    flags = content_flags(comment, display_name, rules=rules)
    positive = is_positive(scores)
    if flags:
        return Routing(Route.MODERATOR, flags, positive)
    return Routing(Route.PUBLISH if positive else Route.AWAIT_RESPONSE, flags, positive)


def route_after_approval(positive: bool) -> Route:
    """A moderator's approval clears the content; the scores still decide who speaks first."""
    return Route.PUBLISH if positive else Route.AWAIT_RESPONSE
