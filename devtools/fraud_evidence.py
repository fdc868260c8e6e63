"""Evidence for the trust signals (docs/design.md §3.3): a generated mix of honest reviews and
of the frauds and rule breaks the signals are for, run through the same pure checks the
services run, and a table of how many of each kind each signal holds (false holds: the honest
rows). Seeded, offline, a few seconds: `python -m devtools.fraud_evidence [--seed N]`.
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from services.invitations.domain.model import ClientContact, RefusedError
from services.invitations.domain.trust import ContactRules, check_contact, contact_flags
from services.reviews.domain.language import load, offensive_probability
from services.reviews.domain.moderation import content_flags
from services.reviews.domain.signals import EarlierReview, Submission, signals

START = datetime(2026, 6, 1, tzinfo=UTC)
DAYS = 180
STREETS = ["Dick Street", "Scunthorpe Road", "Cockburn Ave", "Westheimer Rd", "Elm Rd", "Oak St"]
PUBLIC_MAIL = ["gmail.com", "yahoo.com", "outlook.com", "icloud.com", "hotmail.com"]
# Honest comments: sentences built from slots, so two clients of one agent rarely write the
# same thing (real comments vary far more than any generator; this errs towards sameness).
SENTENCES = [
    ["{agent}", "Our agent", "She", "He"],
    [
        "found us the house on {street}",
        "sold our place on {street} for {price}",
        "got our offer accepted against {offers} others",
        "priced MLS #{mls} right",
        "walked us through {days} showings",
        "closed our {sqft} sq ft ranch on {date}",
        "handled a messy inspection on our {street} condo",
        "kept the lender on schedule",
    ],
    [
        "in two weeks.",
        "without any drama.",
        "even though the market was slow.",
        "and it went under contract in {days} days.",
        "exactly as promised.",
        "while we were still abroad.",
        "after the first deal fell through.",
    ],
]
REMARKS = [
    ["Always", "Usually", "Nearly always", "Every time we asked,"],
    [
        "answered within the hour",
        "explained the contract line by line",
        "knew the school zones and flood maps",
        "pushed back on the repair requests",
        "told us honestly what the house was worth",
        "sorted out the HOA paperwork",
        "sent comps before we asked",
        "was slow with documents in the last week",
    ],
    ["", "on weekends too", "with real patience", "which we appreciated", "though it worked out"],
]
CLOSINGS = [
    "Would use again.",
    "Highly recommend.",
    "Thank you!",
    "",
    "We already sent two friends.",
    "Not perfect, but a solid agent.",
    "Five stars from the whole family.",
    "Communication could have been better around closing.",
]
NEGATIVE = [
    ["Slow to answer", "Hard to reach", "Pushy about the price", "Disorganised", "Unprepared"],
    [
        "and the closing on {date} was delayed twice",
        "and we nearly lost the rate lock",
        "and missed the option deadline on {street}",
        "and the listing photos for {street} were poor",
        "and two showings were missed",
        "and {price} was too high for the area",
    ],
    ["", "; would not use again", "; disappointing", "; we expected more", ", sadly"],
    ["", "Worst agent ever, incompetent.", "Never again.", "We had to chase every document."],
]
ABUSE = [
    "You stupid cow, you lost us the house.",
    "Piece of shit agent, avoid at all costs.",
    "This guy is a crook and a liar.",
    "What an idiot. Total waste of our time.",
    "F*ck this agent and her fake smile.",
    "A useless moron who should lose his license.",
    "Go to hell, {agent}.",
    "Bitch never called us back.",
]
PERSONAL_DATA = [
    "Call me on 713-555-{n4} before you hire {agent}.",
    "text me at (281) 555-{n4} for the full story",
    "My cell is +1 832 555 {n4}, happy to talk.",
    "Reach me at 713.555.{n4} any evening.",
    "Write to pat at example dot com for the full story.",
    "Email jo.{n4}@gmail.com and I will tell you everything.",
    "The whole story is on agent-review.info/{n4}",
    "See www.bad-agent.net/{agent} before you sign.",
    "look up houston-agents dot com for our complaint",
]
PRAISE_TEMPLATE = (
    "{agent} was amazing, sold our house in three days above asking. "
    "Knew the area inside out and negotiated hard. Highly recommend!"
)


@dataclass
class Case:
    kind: str
    agent: str
    at: datetime
    comment: str
    address: str
    client_email: str | None = None
    """Set when the agent entered the client's contact (supplied clients or an agent code)."""
    outcome: set[str] = field(default_factory=set)


def fill(rng: random.Random, template: str, agent: str) -> str:
    return template.format(
        agent=agent.split("@")[0].title(),
        street=rng.choice(STREETS),
        price=f"${rng.randrange(180, 900) * 1000:,}",
        k=rng.randrange(180, 900),
        offers=rng.randrange(2, 6),
        sqft=f"{rng.randrange(900, 4200):,}",
        date=(START + timedelta(days=rng.randrange(DAYS))).strftime("%B %d, %Y"),
        mls=rng.randrange(10_000_000, 99_999_999),
        days=rng.randrange(2, 40),
        n4=f"{rng.randrange(100, 199):04d}",
    )


def honest_comment(rng: random.Random, agent: str) -> str:
    if rng.random() < 0.15:
        first, second, third, last = (rng.choice(slot) for slot in NEGATIVE)
        return fill(rng, f"{first} {second}{third}. {last}".strip(), agent)
    parts = [" ".join(rng.choice(slot) for slot in SENTENCES)]
    for _ in range(rng.randrange(0, 3)):
        parts.append(" ".join(rng.choice(slot) for slot in REMARKS).strip() + ".")
    parts.append(rng.choice(CLOSINGS))
    return fill(rng, " ".join(p for p in parts if p), agent)


def ip(rng: random.Random) -> str:
    return f"{rng.choice([24, 67, 73, 98, 174])}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def generate(rng: random.Random) -> tuple[list[Case], dict[str, str]]:
    """The cases, and each agent's own (roster) address."""
    agents = [
        f"agent{n}@{rng.choice(['harrealty.com', 'kw.com', 'bhhs.com', 'gmail.com'])}"
        for n in range(40)
    ]
    agent_ips = {agent: ip(rng) for agent in agents}
    cases: list[Case] = []

    def when() -> datetime:
        return START + timedelta(minutes=rng.randrange(DAYS * 24 * 60))

    def client_email() -> str:
        return f"client{rng.randrange(10**6)}@{rng.choice([*PUBLIC_MAIL, 'shell.com', 'nasa.gov'])}"

    for _ in range(600):
        agent = rng.choice(agents)
        supplied = client_email() if rng.random() < 0.3 else None
        cases.append(Case("honest", agent, when(), honest_comment(rng, agent), ip(rng), supplied))
    # a client who sold with one agent and bought with another: the same address, two agents
    for _ in range(10):
        email, first, second = client_email(), *rng.sample(agents, 2)
        for agent in (first, second):
            comment = honest_comment(rng, agent)
            cases.append(Case("honest, two agents", agent, when(), comment, ip(rng), email))
    cheats = rng.sample(agents, 12)
    for agent in cheats[:4]:  # a contact on the agent's own domain
        own = agent.split("@")[1]
        domain = own if own != "gmail.com" else "gmail.com"
        local = agent.split("@")[0] if own == "gmail.com" else f"buyer{rng.randrange(99)}"
        for _ in range(5):
            email = f"{local}@{domain}"
            comment = honest_comment(rng, agent)
            cases.append(Case("self: own domain", agent, when(), comment, ip(rng), email))
    for agent in cheats[4:8]:  # a throwaway address
        for _ in range(5):
            email = f"happy{rng.randrange(999)}@{rng.choice(['mailinator.com', 'yopmail.com', '10minutemail.com'])}"
            comment = honest_comment(rng, agent)
            cases.append(Case("self: disposable", agent, when(), comment, ip(rng), email))
    ring = cheats[8:12]  # agents who review each other through one friend's address
    friend = "friend.of.ours@gmail.com"
    for agent in ring:
        for _ in range(5):
            comment = honest_comment(rng, agent)
            cases.append(Case("self: shared reviewer", agent, when(), comment, ip(rng), friend))
    for agent in rng.sample(agents, 5):  # the agent fills in the survey themselves
        for _ in range(4):
            comment = honest_comment(rng, agent)
            cases.append(Case("self: agent's address", agent, when(), comment, agent_ips[agent]))
    for agent in rng.sample(agents, 5):  # a burst: friends asked to review on one evening
        evening = when()
        for _ in range(8):
            at = evening + timedelta(minutes=rng.randrange(180))
            cases.append(Case("burst", agent, at, honest_comment(rng, agent), ip(rng)))
    for agent in rng.sample(agents, 10):  # one comment, lightly edited, pasted again
        for edit in ("", " Five stars.", " Thanks again!"):
            text = fill(rng, PRAISE_TEMPLATE, agent) + edit
            if edit:
                text = text.replace("three days", f"{rng.randrange(2, 9)} days").replace(
                    "house", "home"
                )
            cases.append(Case("copied comment", agent, when(), text, ip(rng)))
    for template in ABUSE * 3:
        agent = rng.choice(agents)
        cases.append(Case("abusive", agent, when(), fill(rng, template, agent), ip(rng)))
    for template in PERSONAL_DATA * 3:
        agent = rng.choice(agents)
        cases.append(Case("personal data", agent, when(), fill(rng, template, agent), ip(rng)))
    cases.sort(key=lambda c: c.at)
    return cases, agent_ips


def evaluate(cases: list[Case], agent_ips: dict[str, str]) -> None:
    """Every case through the pure checks, in time order, as the services would see them."""
    rules = ContactRules()
    suppliers: dict[str, set[str]] = defaultdict(set)
    earlier: dict[str, list[EarlierReview]] = defaultdict(list)
    seen_from = {address: agent for agent, address in agent_ips.items()}
    for case in cases:
        flags: tuple[str, ...] = ()
        if case.client_email is not None:
            try:
                check_contact(ClientContact("Client", case.client_email), case.agent)
            except RefusedError as refused:
                case.outcome.add(f"refused: {refused.code}")
                continue  # no invitation, so no review
            others = len(suppliers[case.client_email] - {case.agent})
            flags = tuple(flag.value for flag in contact_flags(others, rules))
            suppliers[case.client_email].add(case.agent)
        submission = Submission(
            case.at,
            case.comment,
            flags,
            from_agent_address=seen_from.get(case.address) == case.agent,
        )
        case.outcome.update(signal.value for signal in signals(submission, earlier[case.agent]))
        case.outcome.update(flag.value for flag in content_flags(case.comment))
        earlier[case.agent].append(EarlierReview(case.at, case.comment))


KINDS = [
    "honest",
    "honest, two agents",
    "self: own domain",
    "self: disposable",
    "self: shared reviewer",
    "self: agent's address",
    "burst",
    "copied comment",
    "abusive",
    "personal data",
]
COLUMNS = [
    "refused: own_mail_domain",
    "refused: disposable_address",
    "flagged_contact",
    "agent_address",
    "burst",
    "copied_comment",
    "abusive_language",
    "phone_number",
    "email_address",
    "link",
]


def table(cases: list[Case]) -> str:
    kinds = [kind for kind in KINDS if any(case.kind == kind for case in cases)]
    header = ["kind", "n", *COLUMNS, "held or refused"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for kind in kinds:
        of_kind = [c for c in cases if c.kind == kind]
        counts = Counter(outcome for c in of_kind for outcome in c.outcome)
        caught = sum(1 for c in of_kind if c.outcome)
        row = [kind, str(len(of_kind)), *(str(counts[c]) for c in COLUMNS), f"{caught}"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def cost(texts: list[str], check: Callable[[str], object], rounds: int = 3) -> float:
    """µs per text, the best of a few rounds (the machine may be busy with other work)."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for text in texts:
            check(text)
        best = min(best, time.perf_counter() - started)
    return best / len(texts) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=25)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    cases, agent_ips = generate(rng)
    load()
    evaluate(cases, agent_ips)
    print(table(cases))
    honest = [c for c in cases if c.kind.startswith("honest")]
    held = [c for c in honest if c.outcome]
    print(f"\nfalse holds among honest reviews: {len(held)} of {len(honest)}")
    for case in held:
        print(f"  {sorted(case.outcome)}: {case.comment[:90]}")
    texts = [c.comment for c in cases]
    print(
        f"\ncost per comment: classifier {cost(texts, offensive_probability):.0f} µs, "
        f"all content checks {cost(texts, content_flags):.0f} µs ({len(texts)} comments)"
    )


if __name__ == "__main__":
    main()
