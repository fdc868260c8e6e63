"""`make soak`: the whole system for half an hour under a steady mixed load, with a fault every
two minutes (sometimes two at once), then checked from the topics and the schemas.

Everything it runs is its own, so it never touches the shared stack (Kafka 9092, PostgreSQL
5432): a three-node Kafka cluster (tests/reliability/cluster.py on 9892-9897), a PostgreSQL
cluster on 5532 (deploy/local/postgres.sh, data in .local/postgres-5532), an SMTP sink, and TCP
proxies on loopback in front of the SMTP sink and of each service's database link (the SMTP and
slow-network faults). Every service runs as two processes (one consumer group and one schema per
service). The load: closings with one to four clients (some without a contact, which the agent
supplies or, for a few negligent agents, never does: compliance opt-outs), survey answers from
the mailed PINs (some negative, some flagged for moderation, which a moderator approves), agent
responses to negative reviews, participation changes, lead removals through every reason, and
erasures; a simulated day passes every few seconds (CLOCK_FILE), so reminders, expiries,
response windows, opt-outs and stars ageing out all happen. Figures go to test-output/soak/.

    python -m devtools.soak --minutes 30
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import re
import shutil
import signal
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from devtools.asyncapi import service_dispatcher
from devtools.processes import ROOT, ServiceProcesses, service_of
from devtools.proxy import TcpProxy
from devtools.smtp_sink import MailSink, body_text, start_sink
from devtools.soak_plan import (
    FaultKind,
    PlannedFault,
    Tally,
    backlog_threshold,
    catch_up_seconds,
    exact_copies,
    plan_faults,
    rss_growth,
    tally,
)
from examples.public_site import SiteCopy
from shared.auth import Role, issue_token
from shared.clock import FileClock
from shared.cloudevents import Envelope, InvalidEvent, decode, encode
from shared.contracts import AGENT_UPSERTED, LEAD_ASSIGNED, TRANSACTION_CLOSED, EventType
from shared.contracts.leads import LeadAssigned
from shared.contracts.mls import AgentUpserted, TransactionClosed
from shared.contracts.removals import RemovalReason
from shared.http import KEEP_ALIVE
from shared.lag import ConsumerLag
from shared.settings import ServiceSettings
from shared.topics import Topic, ensure_topics, partitions_of
from tests.reliability.cluster import KafkaCluster
from tests.reliability.infrastructure import LocalPostgres
from tests.reliability.steady_load import UNTHROTTLED, live_and_replayed_ratings, stranded
from tests.support.mails import THANKS_SUBJECT

SERVICES = ("invitations", "reviews", "scoring", "removals", "directory")
PORTAL = "portal"
"""Two instances beside the services; the agents respond to their reviews through it."""
RESPONSE_TEXT = "Thank you; I have called you to put this right."
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
PIN = re.compile(r"\b([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})\b")
REVIEW_PAGE = re.compile(
    r"/reviews/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b"
)
"""The portal's page of a review, which the agent's mail links to (shared/portal.py)."""
TRANSACTION_ID = re.compile(r"\b(T-soak-[A-Za-z0-9\-]+)\b")
SECRET: str = ServiceSettings.model_fields["auth_secret"].default
OUTPUT = ROOT / "test-output" / "soak"
STATE = ROOT / ".local" / "soak"
PRODUCED_TOPICS = [
    Topic.INVITATIONS_EVENTS,
    Topic.REVIEWS_PUBLISHED,
    Topic.REVIEWS_PUBLIC,
    Topic.REVIEWS_EVENTS,
    Topic.RATINGS,
    Topic.AGENTS_PARTICIPATION,
    Topic.REMOVALS_EVENTS,
    Topic.CLIENT_ERASURES,
]
"""Every topic the services write: none may carry a client's email or phone (the inputs,
mls.* and leads.assigned, carry them by contract)."""
GOOD = dict.fromkeys(
    ("communication", "friendliness", "professionalism", "area_knowledge", "overall"), 5
)
BAD = {**GOOD, "communication": 1, "overall": 2}
FLAGGED_COMMENT = "Great agent, but call me on 713 555 0199 if you want the full story."
REMOVAL_NOTES = {
    reason: f"Removing this lead: {reason.value.replace('_', ' ')}, as agreed with the team."
    for reason in RemovalReason
}
HANDOFFS = {RemovalReason.ACTIVE_HANDOFF.value, RemovalReason.BAD_FIT.value}


def log(message: str) -> None:
    print(f"[soak {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


@dataclass
class Client:
    email: str | None
    phone: str
    hidden_email: str
    """The address the agent supplies when the MLS listed none."""


@dataclass
class Load:
    """What the load did, as the driver saw it: the expectations the checks compare with."""

    closings: dict[str, tuple[str, list[Client]]] = field(default_factory=dict)
    """transaction id -> (agent, clients)."""
    answered: dict[str, str] = field(default_factory=dict)
    """review id -> client address, for every answer the reviews API took (201)."""
    answered_pins: set[str] = field(default_factory=set)
    invited_pins: dict[str, str] = field(default_factory=dict)
    """PIN -> address, from the invitation mails."""
    removals: dict[str, str] = field(default_factory=dict)
    """lead id -> reason, for every removal requested and approved."""
    removals_refused: Counter[str] = field(default_factory=Counter)
    leads: list[str] = field(default_factory=list)
    erased: set[str] = field(default_factory=set)
    supplied: set[str] = field(default_factory=set)
    responses: int = 0
    approved_flags: int = 0
    participation_changes: int = 0
    http_errors: Counter[str] = field(default_factory=Counter)


@dataclass
class FaultRecord:
    kinds: list[str]
    target: list[str]
    began: float
    healed: float = 0.0
    catch_up_seconds: float | None = None
    error: str | None = None


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run = uuid.uuid4().hex[:6]
        self.rng = random.Random(args.seed)
        self.cluster = KafkaCluster(base_port=args.kafka_port, routed=True)
        self.postgres = LocalPostgres(args.pg_port)
        self.clock_file = STATE / "clock.json"
        self.sim_start = datetime(2026, 1, 5, 8, tzinfo=UTC)
        self.sim_now = self.sim_start
        self.smtp_proxy = TcpProxy(args.smtp_port + 1, args.smtp_port)
        self.db_proxies = {
            service: TcpProxy(args.pg_port + 10 + i, args.pg_port)
            for i, service in enumerate(SERVICES)
        }
        self.kafka_linked = args.kafka_link_service
        """Both instances of this service reach Kafka through the cluster's routed listeners,
        via proxies the soak owns: the slow link between a service and Kafka."""
        self.kafka_proxies = {
            node: TcpProxy(advertised, listening)
            for node, (listening, advertised) in self.cluster.routed_links.items()
        }
        self.slow_links = 0
        instances = [i for s in (*SERVICES, PORTAL) for i in (s, f"{s}@2")]
        self.processes = ServiceProcesses(
            env={
                "KAFKA_BOOTSTRAP_SERVERS": self.cluster.bootstrap,
                "SMTP_PORT": str(self.smtp_proxy.port),
                "CLOCK_FILE": str(self.clock_file),
                "SCHEDULER_INTERVAL_SECONDS": "0.5",
                "OUTBOX_POLL_SECONDS": "0.1",
                "AUTH_SECRET": SECRET,
                **UNTHROTTLED,
            },
            per_service_env=lambda service: (
                {}
                if service == PORTAL
                else {
                    "DATABASE_URL": self.db_url(self.db_proxies[service].port),
                    "DATABASE_SCHEMA": f"soak_{service}",
                    "KAFKA_GROUP_ID": f"soak-{service}",
                    **(
                        {"KAFKA_BOOTSTRAP_SERVERS": self.cluster.routed_bootstrap}
                        if service == self.kafka_linked
                        else {}
                    ),
                }
            ),
            ports={name: args.http_port + n for n, name in enumerate(instances)},
            log_dir=STATE / "logs",
        )
        self.load = Load()
        self.agents = [f"A-soak-{n}" for n in range(args.agents)]
        self.negligent = set(self.agents[:3])
        """Agents who never supply a missing client contact: opted out for non-compliance."""
        self.sink: MailSink | None = None
        self.http = httpx.AsyncClient(timeout=10, limits=KEEP_ALIVE)
        self.producer: AIOKafkaProducer | None = None
        self.began = 0.0
        self.faults: list[FaultRecord] = []
        self.samples: list[dict[str, Any]] = []
        self.rss: dict[str, list[tuple[float, int]]] = defaultdict(list)
        """`instance pid` -> (seconds into the load, RSS KiB)."""
        self.rss_started: dict[str, float] = {}
        self.handled_mail = 0
        self.pending_answers: list[tuple[float, str, str]] = []
        self.mailed: list[str] = []
        self.closings_sent = 0
        self.agent_tasks: set[asyncio.Task[None]] = set()
        self.exits: list[dict[str, Any]] = []
        """Instances that exited without being told to, and when."""
        self.removals_due: list[tuple[float, str, str]] = []

    @property
    def proxies(self) -> list[TcpProxy]:
        return [self.smtp_proxy, *self.db_proxies.values(), *self.kafka_proxies.values()]

    def db_url(self, port: int) -> str:
        return f"postgresql://ratings:ratings@127.0.0.1:{port}/ratings"

    @property
    def direct_db(self) -> str:
        return self.db_url(self.args.pg_port)

    def t(self) -> float:
        return round(time.monotonic() - self.began, 1)

    # -- the stack ----------------------------------------------------------------------------
    def stack_up(self) -> None:
        shutil.rmtree(STATE, ignore_errors=True)
        (STATE / "logs").mkdir(parents=True)
        FileClock.write(self.clock_file, fixed_at=self.sim_start)
        log(f"starting PostgreSQL on {self.args.pg_port} and Kafka on {self.cluster.bootstrap}")
        self.postgres.start(fresh=True)
        self.cluster.start(fresh=True)

    def stack_down(self) -> None:
        self.processes.stop_all()
        with contextlib.suppress(Exception):
            self.cluster.stop()
        with contextlib.suppress(Exception):
            self.postgres.stop("fast")

    async def main(self) -> int:
        self.stack_up()
        controller = None
        try:
            await ensure_topics(
                self.cluster.bootstrap,
                replication_factor=3,
                min_insync_replicas=2,
                report=lambda _line: None,
            )
            controller, self.sink = start_sink(port=self.args.smtp_port)
            self.sink.bind_loop(asyncio.get_running_loop())
            for proxy in self.proxies:
                await proxy.start()
            for instance in self.processes.ports:
                self.processes.start(instance)
            await asyncio.to_thread(self.processes.wait_ready, 240)
            log(f"{len(self.processes.procs)} service processes ready")
            return await self.soak()
        finally:
            await self.http.aclose()
            if self.producer is not None:
                await self.producer.stop()
            for proxy in self.proxies:
                await proxy.stop()
            await asyncio.to_thread(self.stack_down)
            if controller is not None:
                controller.stop()

    # -- the run ------------------------------------------------------------------------------
    async def soak(self) -> int:
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.cluster.bootstrap, acks="all", enable_idempotence=True
        )
        await self.producer.start()
        for n, agent_id in enumerate(self.agents):
            await self.publish(
                AGENT_UPSERTED,
                AgentUpserted(
                    agent_id=agent_id,
                    name=f"Agent {n}",
                    email=f"agent.soak.{n}@realty.example",
                    office_id="O-soak",
                    member_since=(self.sim_start - timedelta(days=400)).date(),
                    active=True,
                ),
            )
        await asyncio.sleep(3)
        for agent_id in self.agents[::2]:
            await self.agent_put_participation(agent_id, "opt_in_public")
        seconds = self.args.minutes * 60
        plan = plan_faults(seconds, self.args.fault_every, self.args.seed)
        log(
            f"load for {self.args.minutes} min, {len(plan)} fault slots: "
            + ", ".join(f"{p.at:.0f}s {'+'.join(p.kinds)}" for p in plan)
        )
        self.began = time.monotonic()
        producers = [
            self.closings_loop,
            self.leads_loop,
            self.answers_loop,
            self.participation_loop,
            self.erasure_loop,
        ]
        followers = [
            asyncio.create_task(self.supervised(c.__name__, c))
            for c in (self.clock_loop, self.mail_loop, self.moderation_loop, self.supervise)
        ]
        tasks = [asyncio.create_task(self.supervised(c.__name__, c)) for c in producers]
        sampler = asyncio.create_task(self.sample_loop())
        try:
            await self.faults_loop(plan)
            await asyncio.sleep(max(0.0, seconds - (time.monotonic() - self.began)))
        finally:
            await cancel(tasks)
        # the clock goes on past every window (responses, reminders, expiries), agents still
        # respond and moderators still decide; then it stops, for the replay to compare with
        log(f"load over at {self.t():.0f}s; {self.args.drain_days} more simulated days")
        try:
            await asyncio.sleep(self.args.drain_days * self.args.day_seconds)
        finally:
            await cancel(followers)
        drained = await self.drain()
        await cancel([sampler])
        figures = await self.check(drained)
        self.write(figures)
        return 0 if figures["passed"] else 1

    async def publish(self, event_type: EventType, data: Any) -> None:
        """Until the brokers took it: a write whose outcome a fault made unknown is sent again,
        as an MLS feed would (the services must not act twice on the copy)."""
        assert self.producer is not None
        key = str(getattr(data, event_type.key_field))
        record = encode(event_type.ce_type, data, source="/soak", key=key)
        while True:
            try:
                await self.producer.send_and_wait(
                    event_type.topic,
                    value=record.value,
                    key=record.key,
                    headers=list(record.headers.items()),
                )
                return
            except Exception as error:
                self.load.http_errors[f"kafka {type(error).__name__}"] += 1
                await asyncio.sleep(1)

    async def supervised(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        """A load loop that an unexpected error restarts instead of silently ending."""
        while True:
            try:
                await loop()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.load.http_errors[f"{name} {type(error).__name__}"] += 1
                log(f"{name}: {type(error).__name__}: {error}; going on")
                await asyncio.sleep(1)

    def url(self, service: str) -> str:
        """An instance of the service that runs now (either of the two)."""
        running = [i for i in self.processes.procs if service_of(i) == service]
        return self.processes.url(self.rng.choice(running or [service]))

    async def call(
        self,
        method: str,
        service: str,
        path: str,
        *,
        ok: tuple[int, ...] = (200, 201),
        tries: int = 20,
        **kwargs: Any,
    ) -> httpx.Response | None:
        """Retried against either instance while a fault lasts; None if it never succeeded."""
        for _ in range(tries):
            try:
                response = await self.http.request(method, f"{self.url(service)}{path}", **kwargs)
            except httpx.HTTPError:
                self.load.http_errors[f"{service} transport"] += 1
                await asyncio.sleep(1)
                continue
            if response.status_code in ok:
                return response
            if response.status_code < 500 and response.status_code not in (404, 409, 429):
                self.load.http_errors[f"{service} {response.status_code}"] += 1
                return response
            self.load.http_errors[f"{service} {response.status_code}"] += 1
            await asyncio.sleep(1)
        return None

    @staticmethod
    def bearer(sub: str, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(SECRET, sub, role)}"}

    async def agent_put_participation(self, agent_id: str, mode: str) -> None:
        await self.call(
            "PUT",
            "invitations",
            f"/api/v1/agents/{agent_id}/participation",
            json={"mode": mode},
            headers=self.bearer(agent_id, Role.AGENT),
        )

    # -- the load -----------------------------------------------------------------------------
    async def clock_loop(self) -> None:
        while True:
            await asyncio.sleep(self.args.day_seconds)
            self.sim_now += timedelta(days=1)
            FileClock.write(self.clock_file, fixed_at=self.sim_now)

    async def closings_loop(self) -> None:
        while True:
            n = self.closings_sent
            agent_id = self.rng.choice(self.agents)
            clients = []
            for k in range(self.rng.randint(1, 4)):
                address = f"client.soak.{self.run}.{n}.{k}@example.com"
                unlisted = self.rng.random() < 0.06
                clients.append(
                    Client(
                        None if unlisted else address, f"+1 713 {n % 10_000:04d} {k:03d}", address
                    )
                )
            transaction_id = f"T-soak-{self.run}-{n}"
            event = TransactionClosed.model_validate(
                {
                    "transaction_id": transaction_id,
                    "mls_number": f"MLS-soak-{n}",
                    "kind": "sale",
                    "closed_at": (self.sim_now - timedelta(hours=2)).isoformat(),
                    "property": {"street": f"{n} Elm Rd", "city": "Houston", "postcode": "77002"},
                    "representations": [
                        {
                            "agent_id": agent_id,
                            "side": "buyer",
                            "clients": [
                                {
                                    "name": f"Pat Doe {k}",
                                    "email": c.email,
                                    "phone": c.phone if c.email else None,
                                }
                                for k, c in enumerate(clients)
                            ],
                        }
                    ],
                }
            )
            self.load.closings[transaction_id] = (agent_id, clients)
            await self.publish(TRANSACTION_CLOSED, event)
            self.closings_sent = n + 1
            await asyncio.sleep(self.args.closing_seconds)

    async def leads_loop(self) -> None:
        reasons = list(RemovalReason)
        queued = self.removals_due
        while True:
            n = len(self.load.leads)
            lead_id = f"L-soak-{self.run}-{n}"
            agent_id = self.agents[n % len(self.agents)]
            await self.publish(
                LEAD_ASSIGNED,
                LeadAssigned.model_validate(
                    {
                        "lead_id": lead_id,
                        "agent_id": agent_id,
                        "client": {
                            "name": "Sam Lee",
                            "email": f"lead.soak.{self.run}.{n}@example.com",
                            "phone": f"+1 832 {n % 10_000:04d} 100",
                            "preferred_contact": "email",
                        },
                        "assigned_at": (self.sim_now - timedelta(days=30)).isoformat(),
                    }
                ),
            )
            self.load.leads.append(lead_id)
            queued.append((time.monotonic() + 8, lead_id, agent_id))
            while queued and queued[0][0] <= time.monotonic():
                _, due_lead, due_agent = queued.pop(0)
                tried = len(self.load.removals) + sum(self.load.removals_refused.values())
                await self.remove(due_lead, due_agent, reasons[tried % len(reasons)])
            await asyncio.sleep(self.args.closing_seconds * 4)

    async def remove(self, lead_id: str, agent_id: str, reason: RemovalReason) -> None:
        body: dict[str, Any] = {
            "lead_id": lead_id,
            "reason": reason.value,
            "notes": REMOVAL_NOTES[reason],
        }
        if reason is RemovalReason.PRIOR_CLIENT:
            body["proof"] = {"reference": "Closing statement for MLS 612345, signed 2023-04-02."}
        response = await self.call(
            "POST",
            "removals",
            "/api/v1/removals",
            json=body,
            headers=self.bearer(agent_id, Role.AGENT),
            ok=(201,),
        )
        if response is None or response.status_code != 201:
            self.load.removals_refused[reason.value] += 1
            return
        removal = response.json()
        if removal.get("status") == "pending":
            others = [a for a in self.agents if a != agent_id]
            decision = await self.call(
                "POST",
                "removals",
                f"/api/v1/removals/{removal['removal_id']}/decision",
                json={
                    "decision": "approve",
                    "note": "Checked with the agent and the client.",
                    **(
                        {"handed_to_agent_id": self.rng.choice(others)}
                        if reason.value in HANDOFFS
                        else {}
                    ),
                },
                headers=self.bearer("coordinator-1", Role.COORDINATOR),
            )
            if decision is None or decision.status_code != 200:
                self.load.removals_refused[reason.value] += 1
                return
        self.load.removals[lead_id] = reason.value

    async def mail_loop(self) -> None:
        assert self.sink is not None
        while True:
            await asyncio.sleep(0.5)
            messages = self.sink.messages()[self.handled_mail :]
            self.handled_mail += len(messages)
            for message in messages:
                with contextlib.suppress(Exception):
                    await self.on_mail(message)

    async def on_mail(self, message: EmailMessage) -> None:
        to = str(message["To"]).lower()
        text = body_text(message)
        subject = str(message["Subject"])
        if to.startswith("client.soak."):
            pin = PIN.search(text)
            if pin is None or to in self.load.erased or subject.startswith(THANKS_SUBJECT):
                return
            if is_invitation_mail(to, subject):
                self.mailed.append(to)
            if pin.group(1) not in self.load.invited_pins and self.rng.random() < 0.75:
                self.load.invited_pins[pin.group(1)] = to
                delay = self.rng.uniform(1, self.args.day_seconds * 10)
                self.pending_answers.append((time.monotonic() + delay, pin.group(1), to))
            return
        if not to.startswith("agent.soak."):
            return
        # agents act on their mail side by side: one call waiting out a fault must not hold the
        # others' mail past a deadline (a contact owed within 14 simulated days is 42 s here)
        task = asyncio.create_task(self.on_agent_mail(to, subject, text))
        self.agent_tasks.add(task)
        task.add_done_callback(self.agent_tasks.discard)

    async def on_agent_mail(self, to: str, subject: str, text: str) -> None:
        agent_id = f"A-soak-{to.split('.')[2].split('@')[0]}"
        if "client contact" in subject and agent_id not in self.negligent:
            await self.supply(agent_id, text)
        elif "waiting for your response" in subject and (match := REVIEW_PAGE.search(text)):
            self.load.responses += await self.respond_in_portal(agent_id, match.group(1))

    async def respond_in_portal(self, agent_id: str, review_id: str, tries: int = 20) -> bool:
        """As the agent does: open the mail's link in the portal (either instance), sign in
        (the development sign-in), write the response in the review page's form and send it;
        True once the page shows it."""
        for _ in range(tries):
            async with httpx.AsyncClient(base_url=self.url(PORTAL), timeout=10) as browser:
                try:
                    page = await browser.get("/sign-in")
                    await browser.post(
                        "/sign-in/development",
                        data={"sub": agent_id, "role": "agent", "csrf": csrf_of(page.text)},
                    )
                    page = await browser.get(f"/reviews/{review_id}")
                    if page.status_code == 200:
                        await browser.post(
                            f"/agent/reviews/{review_id}/response",
                            data={"text": RESPONSE_TEXT, "csrf": csrf_of(page.text)},
                        )
                        shown = await browser.get(f"/reviews/{review_id}")
                        if shown.status_code == 200 and RESPONSE_TEXT in shown.text:
                            return True
                        if shown.status_code == 200 and 'role="alert"' in shown.text:
                            return False  # refused: the window has ended, say
                    self.load.http_errors[f"portal {page.status_code}"] += 1
                except httpx.HTTPError:
                    self.load.http_errors["portal transport"] += 1
            await asyncio.sleep(1)
        return False

    async def supply(self, agent_id: str, text: str) -> None:
        for transaction_id in set(TRANSACTION_ID.findall(text)):
            _, clients = self.load.closings.get(transaction_id, ("", []))
            missing = [c for c in clients if c.email is None]
            if not missing:
                continue
            response = await self.call(
                "POST",
                "invitations",
                f"/api/v1/transactions/{transaction_id}/clients",
                json={"clients": supplied_contacts(clients)},
                headers=self.bearer(agent_id, Role.AGENT),
            )
            if response is not None and response.status_code == 200:
                self.load.supplied.update(c.hidden_email for c in missing)

    async def answers_loop(self) -> None:
        while True:
            await asyncio.sleep(0.3)
            now = time.monotonic()
            due = [a for a in self.pending_answers if a[0] <= now]
            self.pending_answers = [a for a in self.pending_answers if a[0] > now]
            for _, pin, address in due:
                if address in self.load.erased:
                    continue
                roll = self.rng.random()
                scores, comment = GOOD, "Smooth sale, always reachable."
                if roll < 0.2:
                    scores, comment = BAD, "Slow to answer and vague about the fees."
                elif roll < 0.3:
                    comment = FLAGGED_COMMENT
                response = await self.call(
                    "POST",
                    "reviews",
                    "/api/v1/reviews",
                    ok=(201,),
                    json={"pin": pin, "scores": scores, "comment": comment},
                )
                if response is not None and response.status_code == 201:
                    self.load.answered[response.json()["review_id"]] = address
                    self.load.answered_pins.add(pin)

    async def moderation_loop(self) -> None:
        moderator = self.bearer("moderator-1", Role.MODERATOR)
        while True:
            await asyncio.sleep(5)
            queue = await self.call("GET", "reviews", "/api/v1/moderation/queue", headers=moderator)
            if queue is None or queue.status_code != 200:
                continue
            for item in queue.json().get("items", []):
                decided = await self.call(
                    "POST",
                    "reviews",
                    f"/api/v1/moderation/{item['review_id']}/decision",
                    json={"decision": "approve", "reason": "A made-up number; harmless."},
                    headers=moderator,
                )
                if decided is not None and decided.status_code == 200:
                    self.load.approved_flags += 1

    async def participation_loop(self) -> None:
        while True:
            await asyncio.sleep(7)
            agent_id = self.rng.choice(self.agents)
            mode = self.rng.choice(["opt_in_public", "opt_in_hidden"])
            await self.agent_put_participation(agent_id, mode)
            self.load.participation_changes += 1

    async def erasure_loop(self) -> None:
        ops = self.bearer("ops-1", Role.OPS)
        while True:
            await asyncio.sleep(30)
            if len(self.mailed) < 10:
                continue
            address = self.rng.choice(self.mailed[:-5])
            phone = next(
                (
                    c.phone
                    for _, cs in self.load.closings.values()
                    for c in cs
                    if c.hidden_email == address
                ),
                None,
            )
            response = await self.call(
                "POST",
                "invitations",
                "/api/v1/erasures",
                json={"email": address, "phone": phone},
                headers=ops,
            )
            if response is not None and response.status_code == 200:
                self.load.erased.add(address)

    # -- the faults ---------------------------------------------------------------------------
    async def faults_loop(self, plan: list[PlannedFault]) -> None:
        for planned in plan:
            await asyncio.sleep(max(0.0, planned.at - (time.monotonic() - self.began)))
            record = FaultRecord([str(k) for k in planned.kinds], [], self.t())
            log(f"fault at {record.began:.0f}s: {' + '.join(record.kinds)}")
            try:
                targets = await asyncio.gather(*(self.inject(k) for k in planned.kinds))
                record.target = list(targets)
            except Exception as error:
                record.error = f"{type(error).__name__}: {error}"
                log(f"  fault failed: {record.error}")
            record.healed = self.t()
            self.faults.append(record)
            log(f"  healed at {record.healed:.0f}s ({', '.join(record.target)})")

    async def inject(self, kind: FaultKind) -> str:
        running = sorted(self.processes.procs)
        if kind in (FaultKind.KILL9, FaultKind.SIGTERM):
            instance = self.rng.choice(running)
            if kind is FaultKind.KILL9:
                await asyncio.to_thread(self.processes.kill, instance)
            else:
                await asyncio.to_thread(self.processes.stop, instance)
            await asyncio.sleep(5)
            self.processes.start(instance)
            self.rss_started[instance] = self.t()
            await self.until_ready(instance)
            return instance
        if kind is FaultKind.BROKER_RESTART:
            node = self.rng.choice((1, 2, 3))
            await asyncio.to_thread(self.cluster.kill, node)
            await asyncio.sleep(20)
            await asyncio.to_thread(self.cluster.start_node, node)
            return f"broker {node}"
        if kind is FaultKind.CONTROLLER_KILL:
            node = await asyncio.to_thread(self.cluster.active_controller)
            await asyncio.to_thread(self.cluster.kill, node)
            await asyncio.sleep(20)
            await asyncio.to_thread(self.cluster.start_node, node)
            return f"controller {node}"
        if kind in (FaultKind.PG_STOP_FAST, FaultKind.PG_STOP_IMMEDIATE):
            mode = "fast" if kind is FaultKind.PG_STOP_FAST else "immediate"
            await asyncio.to_thread(self.postgres.stop, mode)
            await asyncio.sleep(10)
            await asyncio.to_thread(self.postgres.start)
            return f"postgres ({mode})"
        if kind in (FaultKind.SMTP_REFUSE, FaultKind.SMTP_DROP):
            if kind is FaultKind.SMTP_REFUSE:
                await self.smtp_proxy.refuse()
            else:
                self.smtp_proxy.dropping = True
                await self.smtp_proxy.cut()
            await asyncio.sleep(30)
            await self.smtp_proxy.heal()
            return "smtp"
        # the slow link alternates: one service and Kafka (every broker), then a service and
        # its database
        self.slow_links += 1
        if self.slow_links % 2:
            slowed, link = list(self.kafka_proxies.values()), f"{self.kafka_linked} <-> kafka"
        else:
            service = self.rng.choice(SERVICES)
            slowed, link = [self.db_proxies[service]], f"{service} <-> postgres"
        for proxy in slowed:
            proxy.delay = 0.05
        await asyncio.sleep(40)
        for proxy in slowed:
            await proxy.heal()
        return link

    async def until_ready(self, instance: str, timeout: float = 300) -> None:
        """Until the instance answers /readyz; one that exits meanwhile (a service started
        while its database is down exits at once) is started again by `supervise`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                await asyncio.to_thread(self.processes.wait_ready, 10, [instance])
                return
            except (RuntimeError, TimeoutError, KeyError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(2)

    async def supervise(self) -> None:
        """What an orchestrator does (Kubernetes' restartPolicy: Always): an instance that
        exited on its own is started again after 5 s, and counted."""
        while True:
            await asyncio.sleep(1)
            for instance, proc in list(self.processes.procs.items()):
                if proc.poll() is None:
                    continue
                self.exits.append({"instance": instance, "t": self.t(), "code": proc.returncode})
                log(f"{instance} exited by itself ({proc.returncode}); starting it again in 5 s")
                self.processes.procs.pop(instance, None)
                await asyncio.sleep(5)
                self.processes.start(instance)
                self.rss_started[instance] = self.t()

    # -- measuring ----------------------------------------------------------------------------
    async def sample_loop(self) -> None:
        lags: dict[str, ConsumerLag] = {}
        assert self.sink is not None
        last = {"closings": 0, "mails": 0, "reviews": 0}
        try:
            while True:
                at = self.t()
                if not lags:
                    for service in SERVICES:
                        # the apps build their dispatchers: read what each one subscribes to
                        lag = ConsumerLag(
                            self.cluster.bootstrap,
                            f"soak-{service}",
                            set(service_dispatcher(service).subscribed),
                        )
                        with contextlib.suppress(Exception):
                            await asyncio.wait_for(lag.start(), 10)
                            lags[service] = lag
                consumer_lag: int | None = 0
                for lag in lags.values():
                    try:
                        measured = await asyncio.wait_for(lag.measure(), 5)
                        consumer_lag = (consumer_lag or 0) + sum(measured.values())
                    except Exception:
                        consumer_lag = None
                        break
                backlog = await self.db_backlog()
                counts = {
                    "closings": len(self.load.closings),
                    "mails": len(self.sink.raw),
                    "reviews": len(self.load.answered),
                }
                self.samples.append(
                    {
                        "t": at,
                        "consumer_lag": consumer_lag,
                        "unsent": backlog,
                        "per_interval": {k: counts[k] - last[k] for k in counts},
                    }
                )
                last = counts
                for instance, proc in list(self.processes.procs.items()):
                    kib = rss_kib(proc.pid)
                    if kib is not None:
                        key = f"{instance} {proc.pid}"
                        self.rss[key].append((at, kib))
                        self.rss_started.setdefault(key, self.rss_started.get(instance, 0.0))
                await asyncio.sleep(5)
        finally:
            for lag in lags.values():
                with contextlib.suppress(Exception):
                    await lag.stop()

    async def db_backlog(self) -> int | None:
        try:
            conn = await asyncpg.connect(self.direct_db, timeout=3)
        except Exception:
            return None
        try:
            total = 0
            for service in SERVICES:
                schema = f"soak_{service}"
                for table, column in (("outbox", "published_at"), ("mail_outbox", "sent_at")):
                    with contextlib.suppress(asyncpg.UndefinedTableError):
                        total += int(
                            await conn.fetchval(
                                f"SELECT count(*) FROM {schema}.{table} WHERE {column} IS NULL"
                            )
                        )
            return total
        except Exception:
            return None
        finally:
            await conn.close()

    def backlog_series(self) -> list[tuple[float, float | None]]:
        series: list[tuple[float, float | None]] = []
        for s in self.samples:
            parts = [s["consumer_lag"], s["unsent"]]
            series.append((s["t"], None if None in parts else float(sum(parts))))
        return series

    # -- the end ------------------------------------------------------------------------------
    async def drain(self) -> dict[str, Any]:
        """Until every effect of the load is there (or 5 minutes passed): no backlog, every
        expected mail, publication and survey seen."""
        started = time.monotonic()
        quiet = 0
        while time.monotonic() - started < 300:
            await asyncio.sleep(5)
            backlog = self.backlog_series()[-1:] or [(0.0, None)]
            if backlog[0][1] is not None and backlog[0][1] <= 6 * len(SERVICES):
                quiet += 1
                if quiet >= 3:
                    break
            else:
                quiet = 0
        return {"drain_seconds": round(time.monotonic() - started, 1)}

    async def check(self, drained: dict[str, Any]) -> dict[str, Any]:
        assert self.sink is not None
        records = {
            topic: await read_topic(self.cluster.bootstrap, topic) for topic in [*PRODUCED_TOPICS]
        }
        events = {topic: decoded(rs) for topic, rs in records.items()}
        strict = {
            t: (a, cs) for t, (a, cs) in self.load.closings.items() if a not in self.negligent
        }
        # invitations: one per client of each closing (strict agents), one mail per client
        expected_inv = {
            t: sum(1 for c in cs if c.email or c.hidden_email in self.load.supplied)
            for t, (_a, cs) in strict.items()
        }
        issued = [e for e in events[Topic.INVITATIONS_EVENTS] if e.type == "invitation.issued.v1"]
        invitations = tally(
            {t: n for t, n in expected_inv.items() if n},
            [str(e.data.get("transaction_id")) for e in issued],
        )
        invited_negligent = tally(
            {t: len(cs) for t, (a, cs) in self.load.closings.items() if a in self.negligent},
            [str(e.data.get("transaction_id")) for e in issued],
        )
        message_ids: dict[str, set[str]] = defaultdict(set)
        for message in self.sink.messages():
            to = str(message["To"]).lower()
            if is_invitation_mail(to, str(message["Subject"])):
                message_ids[to].add(str(message["Message-ID"]))
        mail_expected = [
            c.hidden_email
            for _a, cs in strict.values()
            for c in cs
            if c.email or c.hidden_email in self.load.supplied
        ]
        mails = tally(mail_expected, [a for a, ids in message_ids.items() for _ in ids])
        # reviews: every answer one review (schema), every review one publication (topic)
        conn = await asyncpg.connect(self.direct_db)
        try:
            stored = {
                r["review_id"]
                for r in await conn.fetch(
                    "SELECT review_id FROM soak_reviews.reviews WHERE channel = 'email'"
                )
            }
            unpublished = await conn.fetch(
                "SELECT state, count(*) AS n FROM soak_reviews.reviews "
                "WHERE review_id = ANY($1::text[]) GROUP BY state",
                list(self.load.answered),
            )
            erased_reviews = {
                r["review_id"]
                for r in await conn.fetch(
                    "SELECT DISTINCT review_id FROM soak_reviews.review_decisions "
                    "WHERE action = 'erased'"
                )
            }
        finally:
            await conn.close()
        answers = tally(list(self.load.answered), [r for r in stored])
        publications = [
            e for e in events[Topic.REVIEWS_PUBLISHED] if e.type == "review.published.v1"
        ]
        copies = exact_copies([e.data for e in publications], erased_reviews)
        agent_of = {c.hidden_email: a for a, cs in self.load.closings.values() for c in cs}
        published = tally(
            [r for r, to in self.load.answered.items() if agent_of.get(to) not in self.negligent],
            [str(e.data.get("review_id")) for e in publications],
        )
        exact_duplicates = copies.unexplained
        republished = {k: v for k, v in published.duplicated.items()}
        published.duplicated = {}
        # removals: one survey each
        surveys = tally(
            list(self.load.removals),
            [str(e.data.get("lead_id")) for e in issued if e.data.get("lead_id")],
        )
        # nothing unsent
        left = {s: await stranded(self.direct_db, f"soak_{s}") for s in SERVICES}
        # ratings equal a fresh replay (on the same, now still, clock)
        os.environ["CLOCK_FILE"] = str(self.clock_file)
        live, rebuilt = await live_and_replayed_ratings(
            self.cluster.bootstrap, self.direct_db, "soak_scoring", "soak_replay", self.agents
        )
        # the public stream against the participation history
        modes: dict[str, str] = {}
        for e in events[Topic.AGENTS_PARTICIPATION]:
            modes[str(e.data.get("agent_id"))] = str(e.data.get("mode"))
        site = SiteCopy()
        for topic in (Topic.RATINGS, Topic.REVIEWS_PUBLIC):
            for e in events[topic]:
                site.apply(e.type, e.data)
        public = {a for a, m in modes.items() if m == "opt_in_public"}
        shown = set(site.ratings) | {str(r["agent_id"]) for r in site.reviews.values()}
        withdrawn = {
            str(e.data.get("review_id"))
            for e in events[Topic.REVIEWS_PUBLISHED]
            if e.type == "review.withdrawn.v1"
        }
        owed = {
            str(e.data["review_id"])
            for e in publications
            if e.data.get("agent_id") in public
            and e.data.get("survey") == "transaction"
            and e.data.get("review_id") not in withdrawn
        }
        public_stream = {
            "public_agents": len(public),
            "shown_but_not_public": sorted(shown - public),
            "public_reviews_missing": sorted(owed - set(site.reviews))[:20],
            "public_reviews_missing_count": len(owed - set(site.reviews)),
            "reviews_shown": len(site.reviews),
        }
        # no client email or phone anywhere the services write
        contacts = {c.hidden_email for _a, cs in self.load.closings.values() for c in cs}
        contacts |= {
            p
            for _a, cs in self.load.closings.values()
            for c in cs
            for p in (c.phone, c.phone.replace(" ", ""))
        }
        for n in range(len(self.load.leads)):
            phone = f"+1 832 {n % 10_000:04d} 100"
            contacts |= {f"lead.soak.{self.run}.{n}@example.com", phone, phone.replace(" ", "")}
        leaks: list[str] = []
        needle = re.compile("|".join(re.escape(c) for c in sorted(contacts, key=len, reverse=True)))
        for topic, rs in records.items():
            for r in rs:
                raw = b" ".join(
                    [r.key or b"", r.value or b"", *(v for _, v in r.headers or [])]
                ).decode(errors="replace")
                leaks += [f"{topic}: {m}" for m in needle.findall(raw)]
        log_lines = 0
        for path in sorted(self.processes.log_dir.glob("*.log")):
            text = path.read_text(errors="replace")
            log_lines += text.count("\n")
            leaks += [f"{path.name}: {m}" for m in needle.findall(text)]
        # memory
        growth: dict[str, dict[str, Any]] = {}
        for key, points in self.rss.items():
            g = rss_growth(
                points, max(0.0, self.rss_started.get(key, 0.0)), settle=self.args.rss_settle
            )
            if g is not None:
                growth[key] = {
                    "baseline_kib": g.baseline_kib,
                    "end_kib": g.end_kib,
                    "growth": round(g.fraction, 4),
                    # the whole curve: a plateau is a working set, a steady climb a leak
                    "series": [[round(at), kib] for at, kib in points],
                }
        series = self.backlog_series()
        first_fault = self.faults[0].began if self.faults else float("inf")
        threshold = backlog_threshold(series, first_fault)
        for f in self.faults:
            f.catch_up_seconds = catch_up_seconds(series, f.began, f.healed, threshold)
        tallies: dict[str, Tally] = {
            "invitations": invitations,
            "invitation_mails": mails,
            "reviews_stored": answers,
            "reviews_published": published,
            "removal_surveys": surveys,
        }
        checks = {
            **{name: t.ok for name, t in tallies.items()},
            "no_exact_duplicate_publications": exact_duplicates == 0,
            "negligent_agents_never_invited_twice": not invited_negligent.duplicated,
            "nothing_unsent": all(v == {"outbox": 0, "mail_outbox": 0} for v in left.values()),
            "ratings_equal_replay": live == rebuilt,
            "public_stream_matches_participation": not public_stream["shown_but_not_public"]
            and not public_stream["public_reviews_missing_count"],
            "no_contact_data_leaked": not leaks,
            # no samples is a failure, not a pass: the sampler must have measured every process
            "rss_growth_under_10_percent": bool(growth)
            and all(v["growth"] < 0.10 for v in growth.values()),
            "every_fault_injected": all(f.error is None for f in self.faults),
        }
        kinds = Counter(k for f in self.faults for k in f.kinds)
        happened = {
            "events_by_type": dict(
                Counter(e.type for topic in PRODUCED_TOPICS for e in events[topic])
            ),
            "participation_reasons": dict(
                Counter(str(e.data.get("reason")) for e in events[Topic.AGENTS_PARTICIPATION])
            ),
            "client_reminders": sum(
                1
                for m in self.sink.messages()
                if str(m["To"]).startswith("client.") and str(m["Subject"]).startswith("Reminder")
            ),
            "agent_opt_out_mails": sum(
                1 for m in self.sink.messages() if "opted out" in str(m["Subject"])
            ),
        }
        return {
            "at": datetime.now(UTC).isoformat(),
            "run": self.run,
            "minutes": self.args.minutes,
            "passed": all(checks.values()),
            "checks": checks,
            "load": {
                "closings": len(self.load.closings),
                "clients": sum(len(cs) for _a, cs in self.load.closings.values()),
                "answers": len(self.load.answered),
                "agent_responses": self.load.responses,
                "flagged_approved": self.load.approved_flags,
                "participation_changes": self.load.participation_changes,
                "leads": len(self.load.leads),
                "removals": dict(Counter(self.load.removals.values())),
                "removals_refused": dict(self.load.removals_refused),
                "erasures": len(self.load.erased),
                "contacts_supplied": len(self.load.supplied),
                "mails_received": len(self.sink.raw),
                "simulated_days": (self.sim_now - self.sim_start).days,
                "http_errors_retried": dict(self.load.http_errors),
            },
            "happened": happened,
            "faults_by_kind": dict(kinds),
            "exits_restarted_by_supervisor": self.exits,
            "faults": [f.__dict__ for f in self.faults],
            "catch_up_threshold": threshold,
            "tallies": {name: t.figures() for name, t in tallies.items()},
            "lost_examples": {name: t.lost[:10] for name, t in tallies.items() if t.lost},
            "duplicated_examples": {
                name: dict(list(t.duplicated.items())[:10])
                for name, t in tallies.items()
                if t.duplicated
            },
            "republications": sum(republished.values()),
            "exact_duplicate_publications": exact_duplicates,
            "erasure_republications_of_a_scrubbed_original": copies.after_erasure,
            "answers_by_state": {r["state"]: r["n"] for r in unpublished},
            "negligent_agents": invited_negligent.figures(),
            "unsent": left,
            "ratings": {
                "agents": len(live),
                "equal_replay": live == rebuilt,
                "differing": [
                    list(map(str, a)) for a, b in zip(live, rebuilt, strict=False) if a != b
                ][:10],
            },
            "public_stream": public_stream,
            "pii": {
                "leaks": len(leaks),
                "examples": leaks[:10],
                "topic_records_scanned": sum(len(r) for r in records.values()),
                "log_lines_scanned": log_lines,
            },
            "memory": growth,
            "memory_max_growth": max((v["growth"] for v in growth.values()), default=None),
            "drain": drained,
            "samples": self.samples,
            "machine": {"load_average": os.getloadavg(), "cpus": os.cpu_count()},
        }

    def write(self, figures: dict[str, Any]) -> None:
        OUTPUT.mkdir(parents=True, exist_ok=True)
        (OUTPUT / "soak.json").write_text(json.dumps(figures, indent=2, default=str))
        plot(figures, OUTPUT / "soak.png")
        (OUTPUT / "table.md").write_text(table(figures))
        log(f"figures in {OUTPUT}/soak.json, plot in {OUTPUT}/soak.png")
        print(table(figures))
        log(
            "PASSED"
            if figures["passed"]
            else "FAILED: " + ", ".join(k for k, v in figures["checks"].items() if not v)
        )


def csrf_of(html: str) -> str:
    """The CSRF token of a portal page's form."""
    match = CSRF.search(html)
    if match is None:
        raise httpx.HTTPError("no form on the page")
    return match.group(1)


def is_invitation_mail(to: str, subject: str) -> bool:
    """A client's invitation (or removal survey): not its reminders, and not the thank-you
    after an answer (docs/design.md 1.10), which the invitation check must not count."""
    return (
        to.lower().startswith("client.soak.")
        and not subject.startswith("Reminder")
        and not subject.startswith(THANKS_SUBJECT)
    )


def supplied_contacts(clients: list[Client]) -> list[dict[str, Any]]:
    """What an agent answers a contact request with: each client the MLS listed without a
    contact, by its number in the closing's list (1-based); without the number, two missing
    clients are ambiguous and the request stays open."""
    return [
        {"client": number, "name": f"Pat Doe {number - 1}", "email": c.hidden_email}
        for number, c in enumerate(clients, 1)
        if c.email is None
    ]


async def cancel(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every committed record of the topic, from the beginning to its end now."""
    partitions = [TopicPartition(topic, p) for p in sorted(await partitions_of(bootstrap, topic))]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        idle = 0
        while idle < 3:
            positions = {tp: await consumer.position(tp) for tp in partitions}
            if all(positions[tp] >= ends[tp] for tp in partitions):
                break
            batches = await consumer.getmany(timeout_ms=1000)
            for batch in batches.values():
                records.extend(batch)
            # a transaction marker at a partition's end is passed without a record
            idle = 0 if batches else idle + 1
        return records
    finally:
        with contextlib.suppress(asyncio.CancelledError):  # aiokafka's no-group coordinator
            await consumer.stop()


def decoded(records: list[Any]) -> list[Envelope]:
    found = []
    for record in records:
        try:
            found.append(decode(record.key, record.value, dict(record.headers)))
        except InvalidEvent:
            continue
    return found


def table(figures: dict[str, Any]) -> str:
    t = figures["tallies"]
    exits = figures.get("exits_restarted_by_supervisor", [])
    rows = [
        (
            "run",
            f"{figures['at'][:16]}Z, {figures['minutes']} min, "
            f"{figures['load']['simulated_days']} simulated days",
        ),
        (
            "load",
            f"{figures['load']['closings']} closings ({figures['load']['clients']} "
            f"clients), {figures['load']['answers']} answers, "
            f"{sum(figures['load']['removals'].values())} removals, "
            f"{figures['load']['erasures']} erasures, "
            f"{figures['load']['mails_received']} mails",
        ),
        (
            "what the clock made happen",
            f"{figures['happened']['client_reminders']} client reminders, "
            f"{figures['happened']['events_by_type'].get('invitation.expired.v1', 0)} expiries, "
            f"{figures['happened']['agent_opt_out_mails']} compliance opt-outs, "
            f"{figures['load']['agent_responses']} agent responses",
        ),
        ("faults", ", ".join(f"{k} {v}" for k, v in sorted(figures["faults_by_kind"].items()))),
        (
            "instances that exited by themselves",
            ", ".join(f"{e['instance']} at {e['t']:.0f}s (exit {e['code']})" for e in exits)
            or "none",
        ),
        ("catch-up after a fault (s)", _spread([f["catch_up_seconds"] for f in figures["faults"]])),
        *(
            (name, f"{v['expected']} expected, {v['lost']} lost, {v['duplicated']} duplicated")
            for name, v in t.items()
        ),
        (
            "unsent outbox rows / mails",
            str(sum(v["outbox"] + v["mail_outbox"] for v in figures["unsent"].values())),
        ),
        ("ratings = fresh replay", str(figures["ratings"]["equal_replay"])),
        (
            "public stream = participation",
            str(figures["checks"]["public_stream_matches_participation"]),
        ),
        (
            "client contact on topics/logs",
            f"{figures['pii']['leaks']} "
            f"({figures['pii']['topic_records_scanned']} records, "
            f"{figures['pii']['log_lines_scanned']} log lines)",
        ),
        (
            "max RSS growth after settling",
            "n/a"
            if figures["memory_max_growth"] is None
            else f"{figures['memory_max_growth']:.1%}",
        ),
        (
            "result",
            "passed"
            if figures["passed"]
            else "FAILED: " + ", ".join(k for k, v in figures["checks"].items() if not v),
        ),
    ]
    return "| | |\n|---|---|\n" + "".join(f"| {a} | {b} |\n" for a, b in rows)


def _spread(values: list[float | None]) -> str:
    known = sorted(v for v in values if v is not None)
    never = sum(1 for v in values if v is None)
    if not known:
        return f"none measured ({never} never caught up)" if never else "no faults"
    text = f"median {known[len(known) // 2]:.0f}, max {known[-1]:.0f}"
    return text + (f", {never} not caught up within the run" if never else "")


def plot(figures: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = figures["samples"]
    if not samples:
        return  # nothing was sampled (the table says so: memory unmeasured)
    ts = [s["t"] / 60 for s in samples]
    fig, (top, bottom, memory) = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    gaps = [
        max(1.0, b["t"] - a["t"]) for a, b in zip([samples[0], *samples], samples, strict=False)
    ]
    for key, colour in (("closings", "#1f77b4"), ("mails", "#2ca02c"), ("reviews", "#ff7f0e")):
        rates = [s["per_interval"][key] / gap for s, gap in zip(samples, gaps, strict=True)]
        # the first sample counts everything before the load (the roster's mails): left out
        top.plot(ts[1:], rates[1:], label=f"{key}/s", color=colour)
    for ax in (top, bottom, memory):
        ax.axvline(figures["minutes"], color="#555555", linestyle="--", linewidth=0.8)
    top.set_ylabel("throughput (per s)")
    top.legend(fontsize=7, loc="upper right")
    bottom.plot(ts, [s["consumer_lag"] for s in samples], label="consumer lag (records)")
    bottom.plot(ts, [s["unsent"] for s in samples], label="unsent outbox rows + mails")
    bottom.set_ylabel("backlog")
    bottom.legend(fontsize=7, loc="upper right")
    for key, measured in sorted(figures["memory"].items()):
        points = measured["series"]
        memory.plot(
            [at / 60 for at, _ in points],
            [kib / 1024 for _, kib in points],
            label=key.split(" ")[0],
            linewidth=0.8,
        )
    memory.set_ylabel("RSS (MB)")
    memory.set_xlabel("minutes")
    memory.legend(fontsize=6, loc="upper left", ncol=5)
    for f in figures["faults"]:
        for ax in (top, bottom, memory):
            ax.axvspan(f["began"] / 60, f["healed"] / 60, color="#d62728", alpha=0.12)
        top.annotate(
            "+".join(f["kinds"]),
            (f["began"] / 60, 0),
            fontsize=6,
            rotation=90,
            va="bottom",
            xycoords=("data", "axes fraction"),
        )
    top.set_title("Soak: throughput and backlog; faults shaded")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30, help="how long the load runs")
    parser.add_argument("--fault-every", type=float, default=120, help="seconds between faults")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--agents", type=int, default=24)
    parser.add_argument(
        "--day-seconds", type=float, default=3.0, help="real seconds per simulated day"
    )
    parser.add_argument(
        "--closing-seconds", type=float, default=1.0, help="real seconds between closings"
    )
    parser.add_argument(
        "--drain-days",
        type=int,
        default=40,
        help="simulated days the clock still moves after the load (past every window)",
    )
    parser.add_argument(
        "--rss-settle",
        type=float,
        default=300,
        help="seconds before memory counts (the issue: after the first five minutes)",
    )
    parser.add_argument(
        "--kafka-port",
        type=int,
        default=9892,
        help="node 1's client port; the cluster uses six ports from there",
    )
    parser.add_argument(
        "--pg-port",
        type=int,
        default=5532,
        help="the soak's own PostgreSQL; the database proxies use the next ports",
    )
    parser.add_argument(
        "--smtp-port",
        type=int,
        default=2592,
        help="the SMTP sink; the proxy the services use listens on the next port",
    )
    parser.add_argument(
        "--kafka-link-service",
        choices=SERVICES,
        default="invitations",
        help="the service whose link to Kafka the slow-network fault slows (every other one)",
    )
    parser.add_argument(
        "--http-port", type=int, default=8492, help="the first of the twelve instances' HTTP ports"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # the driver's own Kafka clients complain at every broker fault; the figures say what counts
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    soak = Soak(args)

    def stop(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    return asyncio.run(soak.main())


if __name__ == "__main__":
    sys.exit(main())
