"""Scaling out by consumer-group members: two instances of every service (invitations, reviews,
scoring, removals) as processes, each pair in one consumer group on one database schema, as
operations run them. Under a steady stream of closings, survey answers (through the reviews API,
with the PIN from the email) and removal requests (through the removals API), the second
instances join after the stream has started, the first ones are stopped gracefully mid-stream
and later started again: three rebalances of every group, at least. Afterwards the partitions
were split between the two members whenever both ran, and nothing was lost or done twice: one
invitation and one email per client, one published review per answer, one removal survey per
removal, nothing left in an outbox, the scoring store equal to a fresh replay of the topics, and
no client email or phone number on any topic or in any instance's log."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)

from devtools.processes import ServiceProcesses
from devtools.smtp_sink import MailSink, body_text
from shared.auth import Role, issue_token
from shared.cloudevents import Envelope
from shared.contracts import LEAD_ASSIGNED, TRANSACTION_CLOSED
from shared.topics import Topic, partitions_of
from tests.conftest import free_port
from tests.reliability.steady_load import (
    GOOD,
    OUTPUT,
    PIN,
    UNTHROTTLED,
    addressed_to,
    closing,
    eventually,
    fetchval,
    lead_assigned,
    live_and_replayed_ratings,
    publish_roster,
    service_env,
    start_groups_at_end,
    stranded,
    subscribed_topics,
)
from tests.support.kafka import EventPublisher, TopicReader
from tests.support.mails import survey_mails

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

SERVICES = ("invitations", "reviews", "scoring", "removals")
AGENTS = 8
CLOSINGS = 150
REVIEWS = 75
"""Every second client answers, so answers keep coming through every step."""
LEADS = 12
PACE_SECONDS = 0.25
ADD_AT, STOP_AT, RESTART_AT, LAST_STRETCH = 10, 55, 95, 135
"""Closings published before the second instances start, before the first ones stop, before
they start again, and before the last stretch: the stream goes on during each step, and holds
at the next point until that step's rebalance has settled."""
SECRET = "scale-out-test-secret-of-32-bytes!!!!"
PRODUCED_TOPICS = [
    Topic.INVITATIONS_EVENTS,
    Topic.REVIEWS_PUBLISHED,
    Topic.REVIEWS_EVENTS,
    Topic.RATINGS,
    Topic.AGENTS_PARTICIPATION,
    Topic.REMOVALS_EVENTS,
]
"""Every topic the services write (the inputs, mls.* and leads.assigned, carry contact data by
contract)."""


def second(service: str) -> str:
    return f"{service}@2"


def value(envelope: Envelope, name: str) -> Any:
    """A field of an event's data, None if absent: other tests put their own events, hostile
    ones included, on the shared topics."""
    return envelope.data.get(name)


@dataclass
class Member:
    topics: frozenset[str]
    partitions: frozenset[tuple[str, int]]


@dataclass
class Group:
    """One service's consumer group as its coordinator describes it, sampled over the run."""

    name: str
    topics: dict[str, list[int]]
    """What the service subscribes to, and each topic's partitions."""
    state: str = ""
    members: dict[str, Member] = field(default_factory=dict)
    owner: dict[str, str] = field(default_factory=dict)
    """member id -> instance, learnt as each instance joins."""
    membership_changes: int = 0
    held_while_both_ran: dict[str, dict[str, int]] = field(default_factory=dict)
    """topic -> instance -> partitions it held once the group settled with both instances."""

    def update(self, state: str, members: dict[str, Member]) -> None:
        if self.members and set(members) != set(self.members):
            self.membership_changes += 1
        self.state, self.members = state, members

    def held(self, topic: str) -> dict[str, int]:
        """instance -> partitions of `topic` it holds now."""
        count: Counter[str] = Counter()
        for member_id, member in self.members.items():
            if topic in member.topics:
                count[self.owner.get(member_id, "?")] += sum(
                    1 for t, _ in member.partitions if t == topic
                )
        return dict(count)

    def settled(self, instances: set[str]) -> bool:
        """Stable, and each topic's partitions spread over the members of exactly `instances`
        (an instance may run several members of a topic: CONSUMER_CONCURRENCY), every instance
        holding some, none held twice."""
        if self.state != "Stable":
            return False
        for topic, partitions in self.topics.items():
            subscribers = [m for m, member in self.members.items() if topic in member.topics]
            owners = {self.owner.get(m, "?") for m in subscribers}
            assigned = sorted(
                p for m in subscribers for t, p in self.members[m].partitions if t == topic
            )
            held = self.held(topic)
            if owners != instances or assigned != partitions or 0 in held.values():
                return False
        return True

    def describe(self) -> str:
        members = [
            f"{self.owner.get(m, '?')} {sorted(member.topics)} {len(member.partitions)} partitions"
            for m, member in sorted(self.members.items())
        ]
        return f"{self.state}: {members}"

    def record_split(self) -> None:
        for topic in self.topics:
            self.held_while_both_ran.setdefault(topic, {}).update(self.held(topic))


class GroupWatch:
    """Describes the services' consumer groups (AIOKafka admin client) twice a second."""

    def __init__(self, bootstrap: str, groups: dict[str, Group]) -> None:
        self.groups = groups
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)

    async def sample(self) -> None:
        for group in self.groups.values():
            for response in await self.admin.describe_consumer_groups([group.name]):
                for described in response.groups:
                    state, members = described[2], described[5]
                    found: dict[str, Member] = {}
                    for member_id, _client, _host, metadata, assignment in members:
                        subscription = (  # empty while the group rebalances
                            ConsumerProtocolMemberMetadata.decode(metadata).subscription
                            if metadata
                            else []
                        )
                        assigned = (
                            ConsumerProtocolMemberAssignment.decode(assignment).partitions()
                            if assignment
                            else []
                        )
                        found[member_id] = Member(
                            frozenset(subscription),
                            frozenset((tp.topic, tp.partition) for tp in assigned),
                        )
                    group.update(state, found)

    async def run(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # a coordinator busy rebalancing: next time
                await self.sample()
            await asyncio.sleep(0.5)

    async def joined(self, service: str, instance: str, expected: set[str]) -> None:
        """Until `instance`, just started, and the `expected` others all hold partitions:
        members not seen before are its own."""
        await self._settle(service, expected, newcomer=instance)

    async def left(self, service: str, remaining: set[str]) -> None:
        """Until the `remaining` instances hold every partition (a member that rejoined under
        a new id while only one instance ran is that instance's)."""
        sole = next(iter(remaining)) if len(remaining) == 1 else None
        await self._settle(service, remaining, newcomer=sole)

    async def _settle(self, service: str, instances: set[str], newcomer: str | None) -> None:
        group = self.groups[service]

        async def settled() -> bool:
            try:
                await self.sample()
            except Exception:  # a coordinator busy rebalancing: next time
                return False
            if newcomer is not None:
                for member_id in group.members:
                    group.owner.setdefault(member_id, newcomer)
            return group.settled(instances)

        try:
            await eventually(settled, timeout=120)
        except TimeoutError:
            pytest.fail(f"{group.name} never settled on {sorted(instances)}: {group.describe()}")


@dataclass
class Deployment:
    processes: ServiceProcesses
    run: str
    database_url: str
    bootstrap: str
    up: dict[str, list[str]] = field(default_factory=dict)
    """The instances of each service currently serving HTTP, in the order they came up."""

    def schema(self, service: str) -> str:
        return f"sco_{self.run}_{service}"

    def group(self, service: str) -> str:
        return f"sco-{self.run}-{service}"

    def instance(self, service: str, n: int) -> str:
        """An instance of `service` that is up, round robin on `n`."""
        running = self.up[service]
        return running[n % len(running)]


@pytest.fixture(scope="module")
def deployment(
    kafka_bootstrap: str, database_url: str, smtp_sink: MailSink, tmp_path_factory: Any
) -> Iterator[Deployment]:
    run = uuid.uuid4().hex[:6]
    ports = {name: free_port() for service in SERVICES for name in (service, second(service))}
    processes = ServiceProcesses(
        env=service_env(
            kafka_bootstrap,
            database_url,
            smtp_sink.port,
            AUTH_SECRET=SECRET,
            **UNTHROTTLED,
        ),
        # both instances of a service: one schema, one consumer group
        per_service_env=lambda service: {
            "DATABASE_SCHEMA": f"sco_{run}_{service}",
            "KAFKA_GROUP_ID": f"sco-{run}-{service}",
        },
        ports=ports,
        log_dir=Path(tmp_path_factory.mktemp("scale-out-logs")),
    )
    try:
        start_groups_at_end(kafka_bootstrap, {s: f"sco-{run}-{s}" for s in SERVICES})
        for service in SERVICES:
            processes.start(service)
        processes.wait_ready(120, SERVICES)
        yield Deployment(processes, run, database_url, kafka_bootstrap, {s: [s] for s in SERVICES})
    finally:
        processes.stop_all()


@contextlib.asynccontextmanager
async def background(*coros: Any) -> AsyncIterator[list[asyncio.Task[Any]]]:
    tasks = [asyncio.create_task(c) for c in coros]
    try:
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_two_instances_per_group_through_rebalances_lose_nothing_and_do_nothing_twice(
    deployment: Deployment,
    publish_event: EventPublisher,
    topic_reader: Callable[[str], Awaitable[TopicReader]],
    mail: MailSink,
) -> None:
    loop = asyncio.get_running_loop()
    began = loop.time()
    tag, processes = deployment.run, deployment.processes

    def progress(step: str) -> None:
        print(f"[{loop.time() - began:6.1f}s] {step}", flush=True)

    agents = [f"A-sco-{tag}-{n}" for n in range(AGENTS)]
    digits = f"{random.randrange(10_000):04d}"
    clients = [f"client.sco.{tag}.{n}@example.com" for n in range(CLOSINGS)]
    phones = [f"+1 713 {digits} {n:03d}" for n in range(CLOSINGS)]
    lead_clients = [f"lead.sco.{tag}.{n}@example.com" for n in range(LEADS)]
    lead_phones = [f"+1 832 {digits} {n:03d}" for n in range(LEADS)]
    leads = [f"L-sco-{tag}-{n}" for n in range(LEADS)]
    readers: dict[str, TopicReader] = {t: await topic_reader(t) for t in PRODUCED_TOPICS}
    partitions = {
        topic: await partitions_of(deployment.bootstrap, topic)
        for topic in set().union(*map(subscribed_topics, SERVICES))
    }
    groups = {
        s: Group(deployment.group(s), {t: partitions[t] for t in subscribed_topics(s)})
        for s in SERVICES
    }
    watch = GroupWatch(deployment.bootstrap, groups)
    await watch.admin.start()

    await publish_roster(publish_event, agents, f"sco-{tag}")
    for n, lead_id in enumerate(leads):
        await publish_event(
            LEAD_ASSIGNED,
            lead_assigned(
                lead_id,
                agents[n % AGENTS],
                lead_clients[n],
                phone=lead_phones[n],
                assigned_at=datetime.now(UTC) - timedelta(days=30),
            ),
        )
    # the first instances hold every partition before the load starts
    for service in SERVICES:
        await watch.joined(service, service, {service})
    progress("first instances hold every partition; load starting")

    step_done = {n: asyncio.Event() for n in (ADD_AT, STOP_AT, RESTART_AT)}
    step_due = {n: asyncio.Event() for n in (ADD_AT, STOP_AT, RESTART_AT, LAST_STRETCH)}
    review_ids: dict[int, str] = {}
    removal_ids: dict[int, str] = {}
    submitted_via: Counter[str] = Counter()
    steps: list[dict[str, Any]] = []
    graceful: dict[str, bool] = {}
    published = 0
    reviewed = range(0, CLOSINGS, 2)[:REVIEWS]

    def agent_of(n: int) -> str:
        """Closings come in pairs per agent, so the answering (even) clients rate every one."""
        return agents[(n // 2) % AGENTS]

    async def publish_closings() -> None:
        nonlocal published
        for n in range(CLOSINGS):
            if n in step_due:
                if n != ADD_AT:  # one step at a time; the stream goes on during each
                    await asyncio.wait_for(step_done[_previous(n)].wait(), timeout=240)
                step_due[n].set()
            await publish_event(
                TRANSACTION_CLOSED, closing(tag, n, agent_of(n), clients[n], phones[n])
            )
            published = n + 1
            await asyncio.sleep(PACE_SECONDS)

    async def post(service: str, n: int, path: str, body: dict[str, Any], **kw: Any) -> Any:
        """POST to an instance that is up; another one (or later) if it is going away."""
        async with httpx.AsyncClient(timeout=15) as http:
            while True:
                instance = deployment.instance(service, n)
                try:
                    response = await http.post(f"{processes.url(instance)}{path}", json=body, **kw)
                except httpx.TransportError:  # going away: the next one
                    await asyncio.sleep(0.3)
                    n += 1
                    continue
                if response.status_code == 201:
                    submitted_via[instance] += 1
                    return response.json()
                if response.status_code not in (404, 503):
                    raise AssertionError(
                        f"{service} {path}: {response.status_code} {response.text}"
                    )
                await asyncio.sleep(0.3)  # not consumed yet

    async def answer_surveys() -> None:
        for n in reviewed:
            message = await mail.wait_for(addressed_to(clients[n]), timeout=240)
            pin = PIN.search(body_text(message))
            assert pin, "no PIN in the invitation"
            body = {"pin": pin.group(1), "scores": GOOD, "comment": "Smooth sale."}
            review_ids[n] = (await post("reviews", n, "/api/v1/reviews", body))["review_id"]

    async def request_removals() -> None:
        for n in range(LEADS):  # spread over the stream
            while published < n * CLOSINGS // LEADS:
                await asyncio.sleep(0.2)
            agent_id = agents[n % AGENTS]
            body = {
                "lead_id": leads[n],
                "reason": "changed_mind",
                "notes": "The client decided to stay in their current home this year.",
            }
            headers = {"Authorization": f"Bearer {issue_token(SECRET, agent_id, Role.AGENT)}"}
            removal = await post("removals", n, "/api/v1/removals", body, headers=headers)
            removal_ids[n] = removal["removal_id"]

    async def step(
        at: int, name: str, action: Callable[[float], Awaitable[dict[str, Any]]]
    ) -> None:
        await asyncio.wait_for(step_due[at].wait(), timeout=240)
        started, answered = loop.time(), len(review_ids)
        settled = await action(started)
        steps.append(
            {
                "step": name,
                "at_closing": at,
                "reviews_submitted_before": answered,
                "reviews_submitted_during": len(review_ids) - answered,
                "settled_after_seconds": settled,
            }
        )
        progress(f"{name}; groups settled after {settled} s")
        step_done[at].set()

    async def add_second_instances(started: float) -> dict[str, Any]:
        for service in SERVICES:
            processes.start(second(service))
        await asyncio.to_thread(processes.wait_ready, 120, [second(s) for s in SERVICES])
        for service in SERVICES:
            deployment.up[service].append(second(service))
        settled = {}
        for s in SERVICES:
            await watch.joined(s, second(s), {s, second(s)})
            groups[s].record_split()
            settled[s] = round(loop.time() - started, 1)
        return settled

    async def stop_first_instances(started: float) -> dict[str, Any]:
        for service in SERVICES:
            deployment.up[service].remove(service)
        stops = [asyncio.to_thread(processes.stop, service) for service in SERVICES]
        graceful.update(zip(SERVICES, await asyncio.gather(*stops), strict=True))
        settled = {}
        for s in SERVICES:
            await watch.left(s, {second(s)})
            settled[s] = round(loop.time() - started, 1)
        return settled

    async def restart_first_instances(started: float) -> dict[str, Any]:
        for service in SERVICES:
            processes.start(service)
        await asyncio.to_thread(processes.wait_ready, 120, SERVICES)
        for service in SERVICES:
            deployment.up[service].append(service)
        settled = {}
        for s in SERVICES:
            await watch.joined(s, f"{s} (restarted)", {f"{s} (restarted)", second(s)})
            groups[s].record_split()
            settled[s] = round(loop.time() - started, 1)
        return settled

    async def scoring_reviews() -> int:
        return int(
            await fetchval(
                deployment.database_url,
                f"SELECT count(*) FROM {deployment.schema('scoring')}.reviews "
                "WHERE agent_id = ANY($1::text[])",
                agents,
            )
        )

    async with background(watch.run()):
        load = [publish_closings(), answer_surveys(), request_removals()]
        phases = [
            step(ADD_AT, "second instances started", add_second_instances),
            step(STOP_AT, "first instances stopped (SIGTERM)", stop_first_instances),
            step(RESTART_AT, "first instances started again", restart_first_instances),
        ]
        await asyncio.wait_for(asyncio.gather(*load, *phases), timeout=300)
        progress("load sent; waiting for its effects")

        missing: list[Any] = []

        def none_missing(found: list[Any]) -> bool:
            missing[:] = found
            return not found

        async def every_client_mailed() -> bool:
            return none_missing([c for c in [*clients, *lead_clients] if not mail.to(c)])

        async def every_review_published() -> bool:
            seen = {value(e, "review_id") for e in await readers[Topic.REVIEWS_PUBLISHED].current()}
            return none_missing(sorted(set(review_ids.values()) - seen))

        async def every_removal_completed() -> bool:
            seen = {
                value(e, "lead_id")
                for e in await readers[Topic.REMOVALS_EVENTS].current()
                if e.type == "removal.completed.v1"
            }
            return none_missing(sorted(set(leads) - seen))

        async def scoring_caught_up() -> bool:
            left = await stranded(deployment.database_url, deployment.schema("scoring"))
            stored = await scoring_reviews()
            return none_missing([] if stored == REVIEWS and left["outbox"] == 0 else [stored, left])

        for check in (
            every_client_mailed,
            every_review_published,
            every_removal_completed,
            scoring_caught_up,
        ):
            try:
                await eventually(check, timeout=120)
            except TimeoutError:
                pytest.fail(f"{check.__name__}: still missing {missing}")
        for reader in readers.values():  # a late duplicate would arrive meanwhile
            await reader.collect(2)
    await watch.admin.close()
    progress("all effects present; checking")

    # --- counted from outside: topics and the mail sink
    transactions = {f"T-{tag}-{n}" for n in range(CLOSINGS)}
    # other deployments on the shared broker (a fresh consumer group reads the topics from the
    # start) issue invitations for these closings too: count this deployment's own
    ours = set(
        await fetchval(
            deployment.database_url,
            f"SELECT array_agg(invitation_id) FROM {deployment.schema('invitations')}.invitations",
        )
        or []
    )
    issued = [
        e
        for e in readers[Topic.INVITATIONS_EVENTS].envelopes()
        if e.type == "invitation.issued.v1" and value(e, "invitation_id") in ours
    ]
    invitations = Counter(
        e.data["transaction_id"] for e in issued if e.data["transaction_id"] in transactions
    )
    removal_surveys = Counter(e.data["lead_id"] for e in issued if e.data["lead_id"] in leads)
    reviews = Counter(
        value(e, "review_id")
        for e in readers[Topic.REVIEWS_PUBLISHED].envelopes()
        if value(e, "review_id") in set(review_ids.values())
    )
    removal_events = Counter(
        e.id
        for e in readers[Topic.REMOVALS_EVENTS].envelopes()
        if value(e, "removal_id") in set(removal_ids.values())
    )
    completed = Counter(
        value(e, "lead_id")
        for e in readers[Topic.REMOVALS_EVENTS].envelopes()
        if e.type == "removal.completed.v1" and value(e, "lead_id") in leads
    )
    emails = Counter(c for c in [*clients, *lead_clients] for _ in survey_mails(mail, c))
    closings_recorded = await fetchval(
        deployment.database_url,
        f"SELECT count(DISTINCT transaction_id) FROM {deployment.schema('removals')}.closings "
        "WHERE transaction_id = ANY($1::text[])",
        sorted(transactions),
    )
    stored = await scoring_reviews()
    left = {s: await stranded(deployment.database_url, deployment.schema(s)) for s in SERVICES}
    live, rebuilt = await live_and_replayed_ratings(
        deployment.bootstrap,
        deployment.database_url,
        deployment.schema("scoring"),
        f"sco_{tag}_replay",
        agents,
    )

    # --- no contact data on a topic the services write, nor in any instance's log
    contact = [*clients, *lead_clients]
    contact += [
        form for phone in [*phones, *lead_phones] for form in (phone, phone.replace(" ", ""))
    ]
    leaks: list[str] = []
    for topic, reader in readers.items():
        for record in reader.records:
            raw = b" ".join(
                [record.key or b"", record.value or b"", *(v for _, v in record.headers or [])]
            ).decode(errors="replace")
            leaks += [f"{topic}: {c}" for c in contact if c in raw]
    logs = sorted(processes.log_dir.glob("*.log"))
    for log in logs:
        text = log.read_text(errors="replace")
        leaks += [f"{log.name}: {c}" for c in contact if c in text]

    figures: dict[str, Any] = {
        "instances_per_service": 2,
        "closings": CLOSINGS,
        "reviews": REVIEWS,
        "removals": LEADS,
        "messages": {
            "closings_published": CLOSINGS,
            "invitations_issued": sum(invitations.values()),
            "removal_surveys_issued": sum(removal_surveys.values()),
            "emails": sum(emails.values()),
            "reviews_published": sum(reviews.values()),
            "removal_events": sum(removal_events.values()),
            "topic_records_scanned": sum(len(r.records) for r in readers.values()),
            "log_lines_scanned": sum(
                len(log.read_text(errors="replace").splitlines()) for log in logs
            ),
        },
        "steps": steps,
        "graceful_stops": graceful,
        "rebalances": {
            "forced_per_group": 3,
            # each change of a group's members (one per consumer of an instance joining or
            # leaving) starts a rebalance; seen by sampling, so a lower bound
            "seen_per_group": {s: g.membership_changes for s, g in groups.items()},
            "seen_total": sum(g.membership_changes for g in groups.values()),
        },
        "partitions_held_while_both_ran": {s: g.held_while_both_ran for s, g in groups.items()},
        "submitted_via": dict(submitted_via),
        "lost": {
            "invitations": len(transactions - set(invitations)),
            "emails": sum(1 for c in [*clients, *lead_clients] if emails[c] == 0),
            "reviews": sum(1 for r in review_ids.values() if reviews[r] == 0),
            "ratings_reviews": REVIEWS - int(stored),
            "removals_completed": len(set(leads) - set(completed)),
            "closings_recorded_by_removals": CLOSINGS - int(closings_recorded),
        },
        "duplicated": {
            "invitations": sum(k - 1 for k in invitations.values()),
            "removal_surveys": sum(k - 1 for k in removal_surveys.values()),
            "emails": sum(k - 1 for k in emails.values()),
            "reviews": sum(k - 1 for k in reviews.values()),
            "removal_events": sum(k - 1 for k in removal_events.values()),
        },
        "stranded": left,
        "pii_leaks": len(leaks),
        "ratings_equal_replay": live == rebuilt,
        "seconds": round(loop.time() - began, 1),
        "at": datetime.now(UTC).isoformat(),
    }
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / "scale-out.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))

    # --- the partitions really were split while both instances ran, and handed over in between
    for service, group in groups.items():
        assert group.membership_changes >= 3, (service, group.membership_changes)
        for topic, held in group.held_while_both_ran.items():
            assert len(held) == 3 and all(held.values()), (service, topic, held)
    assert all(graceful.values()), f"not stopped by SIGTERM in time: {graceful}"
    assert len(review_ids) == REVIEWS and len(removal_ids) == LEADS
    assert figures["lost"] == dict.fromkeys(figures["lost"], 0), figures["lost"]
    assert figures["duplicated"] == dict.fromkeys(figures["duplicated"], 0), figures["duplicated"]
    assert set(removal_surveys) == set(leads)
    assert all(n == {"outbox": 0, "mail_outbox": 0} for n in left.values()), left
    assert live == rebuilt and len(live) == AGENTS
    assert sum(row[5] for row in live) == REVIEWS
    assert not leaks, leaks[:10]


def _previous(at: int) -> int:
    return {STOP_AT: ADD_AT, RESTART_AT: STOP_AT, LAST_STRETCH: RESTART_AT}[at]
