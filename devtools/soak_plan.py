"""The pure parts of the soak (`devtools/soak.py`): which faults come when, and the arithmetic of
its checks (lost and duplicated, catch-up time, memory growth). No I/O here, so unit-tested."""

from __future__ import annotations

import json
import random
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class FaultKind(StrEnum):
    KILL9 = "kill9"
    """kill -9 of a random service instance, started again a few seconds later."""
    SIGTERM = "sigterm"
    """SIGTERM of one instance (a graceful stop), started again a few seconds later."""
    BROKER_RESTART = "broker_restart"
    """kill -9 of a random broker of the three, restarted after a while."""
    CONTROLLER_KILL = "controller_kill"
    """kill -9 of the active KRaft controller, restarted after a while."""
    PG_STOP_FAST = "pg_stop_fast"
    """pg_ctl stop -m fast, started again after a while."""
    PG_STOP_IMMEDIATE = "pg_stop_immediate"
    """pg_ctl stop -m immediate (crash recovery from the WAL on restart)."""
    SMTP_REFUSE = "smtp_refuse"
    """The SMTP server's port refuses connections for a while."""
    SMTP_DROP = "smtp_drop"
    """The SMTP server accepts connections and drops them at once, for a while."""
    SLOW_NETWORK = "slow_network"
    """A slow link (added latency per chunk, both ways): one service and Kafka, and the next
    time one service and its database."""


FAMILY: dict[FaultKind, str] = {
    FaultKind.KILL9: "process",
    FaultKind.SIGTERM: "process",
    FaultKind.BROKER_RESTART: "kafka",
    FaultKind.CONTROLLER_KILL: "kafka",
    FaultKind.PG_STOP_FAST: "postgres",
    FaultKind.PG_STOP_IMMEDIATE: "postgres",
    FaultKind.SMTP_REFUSE: "smtp",
    FaultKind.SMTP_DROP: "smtp",
    FaultKind.SLOW_NETWORK: "network",
}
"""Two faults at once come from two families: two brokers down at once would take the quorum
and every acks=all write away (a different test), two database stops are one stop."""


@dataclass(frozen=True)
class PlannedFault:
    at: float
    """Seconds after the load started."""
    kinds: tuple[FaultKind, ...]


def plan_faults(
    seconds: float, every: float = 120.0, seed: int = 0, double_every: int = 3
) -> list[PlannedFault]:
    """A fault every `every` seconds from `every` on, none in the last `every / 2` seconds (the
    last one gets time to heal under load); every `double_every`-th is two faults at once, of
    two different families. Kinds are dealt from a shuffled deck, so each kind comes before any
    comes twice."""
    rng = random.Random(seed)
    deck: list[FaultKind] = []

    def draw(avoid: set[str]) -> FaultKind:
        if not deck:
            deck.extend(rng.sample(list(FaultKind), len(FaultKind)))
        for i, kind in enumerate(deck):
            if FAMILY[kind] not in avoid:
                return deck.pop(i)
        kind = rng.choice([k for k in FaultKind if FAMILY[k] not in avoid])
        return kind

    plan: list[PlannedFault] = []
    n = 1
    while n * every <= seconds - every / 2:
        first = draw(set())
        kinds: tuple[FaultKind, ...] = (first,)
        if double_every > 0 and n % double_every == 0:
            kinds = (first, draw({FAMILY[first]}))
        plan.append(PlannedFault(n * every, kinds))
        n += 1
    return plan


@dataclass
class Tally:
    """What was expected once, against how often it was seen."""

    expected: int
    lost: list[str] = field(default_factory=list)
    duplicated: dict[str, int] = field(default_factory=dict)
    """key -> copies beyond the first."""

    @property
    def ok(self) -> bool:
        return not self.lost and not self.duplicated

    def figures(self) -> dict[str, int]:
        return {
            "expected": self.expected,
            "lost": len(self.lost),
            "duplicated": sum(self.duplicated.values()),
        }


def tally(expected: Mapping[str, int] | Iterable[str], seen: Iterable[str]) -> Tally:
    """`expected`: the keys that must be seen (once each), or key -> how many times. A key seen
    fewer times is lost (once per missing copy), more times duplicated; keys not expected are
    not this tally's (other flows' events on the same topic)."""
    wanted = dict(expected) if isinstance(expected, Mapping) else dict.fromkeys(expected, 1)
    counts = Counter(key for key in seen if key in wanted)
    result = Tally(expected=sum(wanted.values()))
    for key, n in sorted(wanted.items()):
        got = counts.get(key, 0)
        result.lost += [key] * max(0, n - got)
        if got > n:
            result.duplicated[key] = got - n
    return result


def catch_up_seconds(
    samples: Sequence[tuple[float, float | None]],
    began: float,
    healed: float,
    threshold: float,
) -> float | None:
    """Seconds from a fault's start (`began`) until the backlog (samples of (time, backlog), in
    time order; None where it could not be measured) was at most `threshold` again, at or after
    the fault was healed; None if it never was in the samples given."""
    for at, backlog in samples:
        if at >= healed and backlog is not None and backlog <= threshold:
            return round(at - began, 1)
    return None


def backlog_threshold(samples: Sequence[tuple[float, float | None]], before: float) -> float:
    """What counts as caught up: twice the median backlog of the calm before the first fault
    (under steady load the backlog is rarely zero), and at least 10 records."""
    calm = [b for at, b in samples if at < before and b is not None]
    return max(10.0, 2 * statistics.median(calm)) if calm else 10.0


@dataclass(frozen=True)
class Growth:
    baseline_kib: int
    end_kib: int

    @property
    def fraction(self) -> float:
        return (self.end_kib - self.baseline_kib) / self.baseline_kib if self.baseline_kib else 0.0


def rss_growth(
    samples: Sequence[tuple[float, int]], started: float, settle: float = 300.0, window: int = 3
) -> Growth | None:
    """One process's memory growth: the median of its first `window` RSS samples (time, KiB)
    taken `settle` seconds or more after `started` (the run's start, or the process's own if
    it started later), against the median of its last `window`. None when the process did not
    live long enough past the settling time to say (fewer than 2 * window samples there)."""
    after = [kib for at, kib in samples if at >= started + settle]
    if len(after) < 2 * window:
        return None
    return Growth(int(statistics.median(after[:window])), int(statistics.median(after[-window:])))


@dataclass(frozen=True)
class Copies:
    unexplained: int
    """Publications that repeat an earlier one word for word, with no reason."""
    after_erasure: int
    """Repeats of an erased review: the erasure scrubs the comment from a publication still in
    the outbox and also publishes the review again without it (it cannot know whether the relay
    has already sent the original), so an original relayed after the erasure equals the
    republication. Harmless: both say the same."""


def exact_copies(publications: Iterable[Mapping[str, object]], erased: set[str]) -> Copies:
    """Count the `review.published.v1` payloads seen more than once."""
    seen: Counter[str] = Counter()
    review_of: dict[str, str] = {}
    for data in publications:
        text = json.dumps(data, sort_keys=True)
        seen[text] += 1
        review_of[text] = str(data.get("review_id"))
    unexplained = after_erasure = 0
    for text, n in seen.items():
        if review_of[text] in erased:
            after_erasure += n - 1
        else:
            unexplained += n - 1
    return Copies(unexplained, after_erasure)
