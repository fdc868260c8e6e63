"""A seeded, realistic MLS world for the demo: agents, offices, closings, leads and how each
simulated person behaves. Pure: the same seed gives the same world."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from shared.contracts.leads import LeadAssigned
from shared.contracts.mls import AgentUpserted, TransactionClosed
from shared.contracts.removals import RemovalReason

FIRST = [
    "Ava",
    "Ben",
    "Chloe",
    "Dev",
    "Ema",
    "Finn",
    "Gia",
    "Hugo",
    "Iris",
    "Jon",
    "Kai",
    "Lena",
    "Milo",
    "Nia",
    "Omar",
    "Pia",
    "Quin",
    "Rosa",
    "Sam",
    "Tara",
    "Uma",
    "Vik",
    "Wren",
    "Yara",
]
LAST = [
    "Alvarez",
    "Brooks",
    "Chen",
    "Diaz",
    "Evans",
    "Foster",
    "Garcia",
    "Hughes",
    "Ito",
    "Jones",
    "Khan",
    "Lopez",
    "Moore",
    "Nguyen",
    "Olsen",
    "Patel",
    "Reyes",
    "Shaw",
    "Tran",
    "Wells",
]
STREETS = [
    "Elm Rd",
    "Oak St",
    "Bayou Ln",
    "Maple Ave",
    "Cedar Ct",
    "Heights Blvd",
    "Post Oak Dr",
    "Westheimer Rd",
    "Montrose Blvd",
    "Bellaire Blvd",
]
PRAISE = [
    "Knew the neighbourhood inside out.",
    "Always answered within the hour.",
    "Made a stressful move feel easy.",
    "Negotiated a great price for us.",
    "Friendly, patient and very professional.",
    "Would happily recommend to friends.",
]
COMPLAINTS = [
    "Hard to reach in the final week.",
    "Felt rushed at the viewings.",
    "Paperwork was late twice.",
    "Did not know the school districts well.",
]


@dataclass(frozen=True)
class Agent:
    agent_id: str
    name: str
    email: str
    office_id: str
    member_since: date
    diligence: float  # how likely the agent supplies a missing client email
    quality: float  # how happy clients tend to be (0..1)
    wants_public: bool

    def upserted(self) -> AgentUpserted:
        return AgentUpserted(
            agent_id=self.agent_id,
            name=self.name,
            email=self.email,
            office_id=self.office_id,
            member_since=self.member_since,
            active=True,
        )


@dataclass
class ClientPersona:
    name: str
    email: str | None
    phone: str | None
    hidden_email: str  # what the agent can supply when the MLS had none
    answers: bool
    delay_days: int


@dataclass
class Closing:
    event: TransactionClosed
    agent_id: str
    clients: list[ClientPersona]


@dataclass
class LeadPlan:
    event: LeadAssigned
    removal: RemovalReason | None
    remove_after_days: int


@dataclass
class World:
    start: datetime
    days: int
    agents: list[Agent]
    closings_by_day: dict[int, list[Closing]] = field(default_factory=dict)
    leads_by_day: dict[int, list[LeadPlan]] = field(default_factory=dict)

    def agent(self, agent_id: str) -> Agent:
        return next(a for a in self.agents if a.agent_id == agent_id)


def build_world(
    seed: int, *, start: datetime, days: int, agents: int, closings: int, leads: int, tag: str
) -> World:
    rng = random.Random(seed)
    roster = []
    for i in range(agents):
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        roster.append(
            Agent(
                agent_id=f"A-{tag}-{i:03d}",
                name=name,
                email=f"{name.lower().replace(' ', '.')}.{i}@realty.example",
                office_id=f"O-{i % 5 + 1}",
                member_since=(start - timedelta(days=rng.choice([30, 90, 150, 400, 900]))).date(),
                diligence=rng.choice([0.0, 0.6, 0.9, 1.0, 1.0]),
                quality=rng.betavariate(5, 2),
                wants_public=rng.random() < 0.7,
            )
        )
    world = World(start=start, days=days, agents=roster)
    # busy agents close more: a skewed pick
    weights = [rng.paretovariate(1.5) for _ in roster]
    for n in range(closings):
        day = rng.randrange(days - 20)
        agent = rng.choices(roster, weights)[0]
        kind = "lease" if rng.random() < 0.25 else "sale"
        side = rng.choice(["buyer", "seller"] if kind == "sale" else ["tenant", "landlord"])
        personas = []
        for c in range(rng.choice([1, 1, 2])):
            client_name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            address = f"client.{tag}.{n}.{c}@mail.example"
            has_email = rng.random() < 0.85
            personas.append(
                ClientPersona(
                    name=client_name,
                    email=address if has_email else None,
                    phone=None if has_email or rng.random() < 0.5 else f"+1713555{n:04d}",
                    hidden_email=address,
                    answers=rng.random() < 0.75,
                    delay_days=rng.choice([0, 1, 2, 3, 5, 9]),
                )
            )
        closed_at = start + timedelta(days=day, hours=rng.randrange(9, 18))
        event = TransactionClosed.model_validate(
            {
                "transaction_id": f"T-{tag}-{n:04d}",
                "mls_number": f"MLS{700000 + n}",
                "kind": kind,
                "closed_at": closed_at.isoformat(),
                "property": {
                    "street": f"{rng.randrange(1, 999)} {rng.choice(STREETS)}",
                    "city": "Houston",
                    "postcode": f"770{rng.randrange(10, 99)}",
                },
                "representations": [
                    {
                        "agent_id": agent.agent_id,
                        "side": side,
                        "clients": []
                        if rng.random() < 0.05
                        else [
                            {"name": p.name, "email": p.email, "phone": p.phone} for p in personas
                        ],
                    }
                ],
            }
        )
        world.closings_by_day.setdefault(day, []).append(Closing(event, agent.agent_id, personas))
    reasons = list(RemovalReason)
    for n in range(leads):
        day = rng.randrange(days - 30)
        agent = rng.choice(roster)
        client_name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        lead = LeadAssigned.model_validate(
            {
                "lead_id": f"L-{tag}-{n:04d}",
                "agent_id": agent.agent_id,
                "client": {
                    "name": client_name,
                    "email": f"lead.{tag}.{n}@mail.example",
                    "phone": None,
                    "preferred_contact": "email",
                },
                "assigned_at": (start + timedelta(days=day)).isoformat(),
            }
        )
        removal = rng.choice(reasons) if rng.random() < 0.6 else None
        world.leads_by_day.setdefault(day, []).append(LeadPlan(lead, removal, rng.randrange(5, 25)))
    return world


def survey_answers(rng: random.Random, quality: float) -> tuple[dict[str, int], str]:
    """Scores around the agent's quality; now and then one low category, as real surveys go."""
    base = 1 + round(quality * 4)
    scores = {
        c: max(1, min(5, base + rng.choice([-1, 0, 0, 0, 1])))
        for c in ("communication", "friendliness", "professionalism", "area_knowledge", "overall")
    }
    if rng.random() < 0.12:
        scores[rng.choice(list(scores))] = rng.choice([1, 2])
    positive = all(v >= 3 for v in scores.values())
    comment = rng.choice(PRAISE if positive else COMPLAINTS)
    return scores, comment
