"""`make demo`: the whole system on a simulated MLS feed.

Starts the local stack on a demo Kafka port (fresh each run), the services as separate
processes sharing one simulated clock (CLOCK_FILE), then plays months of closings and leads.
Simulated clients read their invitations from the SMTP sink and answer through the real survey
API; simulated agents supply missing emails (some never do), answer negative reviews and choose
participation; the clock advances day by day. Ends with a ranking table and a chart.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import random
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from devtools.demo_client import ServiceClient
from devtools.processes import ROOT, SERVICE_PORTS, ServiceProcesses
from devtools.smtp_sink import MailSink, body_text, start_sink
from devtools.world import LeadPlan, World, build_world, survey_answers
from examples.public_site import SiteCopy
from examples.public_site import read as read_public_site
from shared.clock import FileClock
from shared.cloudevents import encode
from shared.contracts import AGENT_UPSERTED, LEAD_ASSIGNED, TRANSACTION_CLOSED, EventType
from shared.topics import ensure_topics

console = Console()
PIN = re.compile(r"\b([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})\b")
DEMO_KAFKA_PORT = 9192
DEMO_SMTP_PORT = 2526


@dataclass
class DemoState:
    world: World
    rng: random.Random
    now: datetime
    answered: set[str] = field(default_factory=set)
    handled_mail: int = 0
    pending_answers: list[tuple[datetime, str, str]] = field(
        default_factory=list
    )  # due, pin, email
    history: dict[str, list[tuple[datetime, int, str]]] = field(default_factory=dict)
    counts: dict[str, int] = field(
        default_factory=lambda: {
            "closings": 0,
            "invitations": 0,
            "reviews": 0,
            "contacts_supplied": 0,
            "responses": 0,
            "removals": 0,
            "opt_outs": 0,
        }
    )


def demo_schema(service: str) -> str:
    """The demo's own schema for a service, dropped at the start of every run: a run that
    found the last run's rows would dedupe its closings and show the last run's ratings."""
    return f"demo_{service}"


def run(command: list[str], env: dict[str, str] | None = None) -> None:
    subprocess.run(command, check=True, cwd=ROOT, env={**os.environ, **(env or {})})


class Demo:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.state_dir = ROOT / ".local"
        self.clock_file = self.state_dir / "demo-clock.json"
        self.start = datetime(2026, 1, 5, 8, tzinfo=UTC)
        self.bootstrap = f"127.0.0.1:{DEMO_KAFKA_PORT}"
        self.database_url = os.environ.get(
            "DATABASE_URL", "postgresql://ratings:ratings@127.0.0.1:5432/ratings"
        )
        self.out_dir = ROOT / "demo-output"

    # -- the stack ---------------------------------------------------------------------------
    def stack_up(self) -> None:
        console.rule("[bold]Setting up the local stack")
        run([str(ROOT / "deploy/local/postgres.sh"), "start"])
        # a fresh broker each run, so the demo never replays another run's events
        shutil.rmtree(self.state_dir / f"kafka-{DEMO_KAFKA_PORT}", ignore_errors=True)
        run(
            [str(ROOT / "deploy/local/kafka.sh"), "start"],
            {"KAFKA_PORT": str(DEMO_KAFKA_PORT)},
        )
        asyncio.run(ensure_topics(self.bootstrap))
        asyncio.run(self._fresh_schemas())

    def stack_down(self) -> None:
        run([str(ROOT / "deploy/local/kafka.sh"), "stop"], {"KAFKA_PORT": str(DEMO_KAFKA_PORT)})

    async def _fresh_schemas(self) -> None:
        conn = await asyncpg.connect(self.database_url)
        try:
            for service in SERVICE_PORTS:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{demo_schema(service)}" CASCADE')
        finally:
            await conn.close()

    def service_env(self) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "DATABASE_URL": self.database_url,
            "SMTP_PORT": str(DEMO_SMTP_PORT),
            "CLOCK_FILE": str(self.clock_file),
            "SCHEDULER_INTERVAL_SECONDS": "0.5",
            "LOG_LEVEL": "WARNING",
        }

    @staticmethod
    def per_service_env(service: str) -> dict[str, str]:
        return {"DATABASE_SCHEMA": demo_schema(service)}

    # -- the simulation ----------------------------------------------------------------------
    def main(self) -> int:
        missing = [
            name
            for name in SERVICE_PORTS
            if importlib.util.find_spec(f"services.{name}.app") is None
        ]
        if missing:
            console.print(
                f"[bold red]The demo needs all the services; not implemented yet: "
                f"{', '.join(missing)}.[/] See the open issues (`issues list`)."
            )
            return 2
        world = build_world(
            self.args.seed,
            start=self.start,
            days=self.args.days,
            agents=self.args.agents,
            closings=self.args.closings,
            leads=self.args.leads,
            tag="demo",
        )
        state = DemoState(world=world, rng=random.Random(self.args.seed + 1), now=self.start)
        FileClock.write(self.clock_file, fixed_at=self.start)
        self.stack_up()
        controller, sink = start_sink(port=DEMO_SMTP_PORT, directory=self.state_dir / "demo-mail")
        services = ServiceProcesses(
            env={**self.service_env()},
            per_service_env=self.per_service_env,
            log_dir=self.state_dir / "demo-logs",
        )
        try:
            for name in list(services.ports):
                services.start(name)
            console.print(f"starting the {len(services.ports)} services as processes...")
            services.wait_ready(120)
            for name in services.ports:
                os.environ.setdefault(f"DEMO_{name.upper()}", services.url(name))
            asyncio.run(self.simulate(state, sink, services))
            if sys.stdin.isatty():  # leave the pages up for clicking through the story
                input("The services keep running: press Enter to stop them. ")
        finally:
            services.stop_all()
            controller.stop()
            self.stack_down()
        return 0

    async def simulate(self, state: DemoState, sink: MailSink, services: ServiceProcesses) -> None:
        sink.bind_loop(asyncio.get_running_loop())
        client = ServiceClient({name: services.url(name) for name in services.ports})
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await producer.start()
        try:
            for agent in state.world.agents:
                await self.publish(producer, AGENT_UPSERTED, agent.upserted())
            await asyncio.sleep(2)
            for agent in state.world.agents:
                if agent.wants_public:
                    await client.set_participation(agent.agent_id, "opt_in_public")
            with Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total} days"),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                console=console,
            ) as progress:
                task = progress.add_task("simulating", total=state.world.days, status="")
                for day in range(state.world.days):
                    state.now = self.start + timedelta(days=day)
                    FileClock.write(self.clock_file, fixed_at=state.now)
                    await self.play_day(day, state, producer, client)
                    await asyncio.sleep(self.args.day_seconds)
                    await self.read_mail(state, sink, client)
                    await self.answer_due_surveys(state, client)
                    if day % 7 == 0:
                        await self.sample_ratings(state, client)
                    progress.update(
                        task,
                        advance=1,
                        status=(
                            f"{state.now:%Y-%m-%d} closings {state.counts['closings']} "
                            f"invites {state.counts['invitations']} reviews {state.counts['reviews']}"
                        ),
                    )
            await asyncio.sleep(3)
            await self.sample_ratings(state, client)
            await self.report(state, client)
        finally:
            await producer.stop()
            await client.close()

    async def publish(self, producer: AIOKafkaProducer, event_type: EventType, data: Any) -> None:
        key = str(getattr(data, event_type.key_field))
        record = encode(event_type.ce_type, data, source="/demo/mls-simulator", key=key)
        await producer.send_and_wait(
            event_type.topic,
            value=record.value,
            key=record.key,
            headers=list(record.headers.items()),
        )

    async def play_day(
        self, day: int, state: DemoState, producer: AIOKafkaProducer, client: ServiceClient
    ) -> None:
        for closing in state.world.closings_by_day.get(day, []):
            await self.publish(producer, TRANSACTION_CLOSED, closing.event)
            state.counts["closings"] += 1
        for plan in state.world.leads_by_day.get(day, []):
            await self.publish(producer, LEAD_ASSIGNED, plan.event)
        for past_day, plans in state.world.leads_by_day.items():
            for plan in plans:
                if plan.removal is not None and past_day + plan.remove_after_days == day:
                    await self.remove_lead(plan, client, state)

    async def remove_lead(self, plan: LeadPlan, client: ServiceClient, state: DemoState) -> None:
        # the coordinator names who takes a handed-off client over: another agent, chosen
        # from the lead id so that a second run hands the same clients to the same agents
        others = [a.agent_id for a in state.world.agents if a.agent_id != plan.event.agent_id]
        hand_to = others[sum(map(ord, plan.event.lead_id)) % len(others)]
        if plan.removal is not None and await client.request_removal(
            plan.event.agent_id, plan.event.lead_id, plan.removal, hand_to
        ):
            state.counts["removals"] += 1

    async def read_mail(self, state: DemoState, sink: MailSink, client: ServiceClient) -> None:
        messages = sink.messages()[state.handled_mail :]
        state.handled_mail += len(messages)
        for message in messages:
            await self.on_mail(message, state, client)

    async def on_mail(self, message: EmailMessage, state: DemoState, client: ServiceClient) -> None:
        to = str(message["To"])
        text = body_text(message)
        subject = str(message["Subject"]).lower()
        pin = PIN.search(text)
        if pin and to.startswith(("client.", "lead.")):
            state.counts["invitations"] += 1
            persona = self.persona(state.world, to)
            if persona is None or persona.answers:
                delay = persona.delay_days if persona else 2
                state.pending_answers.append((state.now + timedelta(days=delay), pin.group(1), to))
            return
        agent = next((a for a in state.world.agents if a.email == to), None)
        if agent is None:
            return
        if "opted out" in subject or "opt-out" in subject:
            state.counts["opt_outs"] += 1
        elif "contact" in subject or ("client" in subject and "email" in text.lower()):
            if state.rng.random() < agent.diligence:
                supplied = await client.supply_contacts(agent.agent_id, text, state.world)
                state.counts["contacts_supplied"] += supplied
        elif (
            ("respond" in subject or "response" in subject)
            and state.rng.random() < 0.8
            and await client.respond_to_review(agent.agent_id, text)
        ):
            state.counts["responses"] += 1

    def persona(self, world: World, address: str) -> Any:
        for closings in world.closings_by_day.values():
            for closing in closings:
                for persona in closing.clients:
                    if persona.hidden_email == address:
                        return persona
        return None

    async def answer_due_surveys(self, state: DemoState, client: ServiceClient) -> None:
        due = [item for item in state.pending_answers if item[0] <= state.now]
        state.pending_answers = [item for item in state.pending_answers if item[0] > state.now]
        for _, pin, address in due:
            agent_quality = self.quality_for(state.world, address)
            scores, comment = survey_answers(state.rng, agent_quality)
            if await client.submit_review(pin, scores, comment):
                state.counts["reviews"] += 1

    def quality_for(self, world: World, address: str) -> float:
        for closings in world.closings_by_day.values():
            for closing in closings:
                if any(p.hidden_email == address for p in closing.clients):
                    return world.agent(closing.agent_id).quality
        return 0.7

    async def sample_ratings(self, state: DemoState, client: ServiceClient) -> None:
        for agent in state.world.agents[: self.args.chart_agents]:
            rating = await client.rating(agent.agent_id)
            if rating and rating.get("stars") is not None:
                state.history.setdefault(agent.agent_id, []).append(
                    (state.now, int(rating["stars"]), str(rating["status"]))
                )

    async def report(self, state: DemoState, client: ServiceClient) -> None:
        console.rule("[bold]Ranking (public agents)")
        ranking = await client.ranking(limit=25)
        table = Table("#", "agent", "name", "status", "stars", "positive 3m", "visibility")
        names = {a.agent_id: a.name for a in state.world.agents}
        for i, row in enumerate(ranking, 1):
            table.add_row(
                str(i),
                row["agent_id"],
                names.get(row["agent_id"], ""),
                str(row.get("status")),
                "★" * int(row.get("stars") or 0),
                str(row.get("positive_reviews_3m")),
                str(row.get("visibility", "public")),
            )
        console.print(table)
        await self.report_directory(client)
        self.report_portal(client, [str(row["agent_id"]) for row in ranking])
        hidden = [a for a in state.world.agents if not a.wants_public]
        console.print(
            f"{len(hidden)} agents keep their rating hidden (default opt_in_hidden); "
            f"{state.counts['opt_outs']} were opted out for non-compliance."
        )
        # what a downstream site sees: only the public topics, read as examples/public_site.py does
        site = await read_public_site(self.bootstrap, SiteCopy())
        shown_agents = {r["agent_id"] for r in site.reviews.values()}
        console.print(
            f"reviews.public shows {len(site.reviews)} reviews of {len(shown_agents)} public "
            f"agents ({state.counts['reviews']} reviews were written in all); `ratings` shows "
            f"{len(site.ratings)} public ratings."
        )
        console.print(" ".join(f"{k}={v}" for k, v in state.counts.items()))
        chart = self.chart(state)
        console.print(f"[bold]Chart:[/bold] {chart}")

    @staticmethod
    async def report_directory(client: ServiceClient) -> None:
        """The same ranking as the public directory shows it (services.directory)."""
        url = client.urls.get("directory")
        if url is None:
            return
        page = await client.http.get(f"{url}/")
        listed = page.text.count('class="name"')
        more = " and more on the next pages" if 'rel="next"' in page.text else ""
        console.print(
            f"[bold]Directory[/bold] (public search, profiles, badges, feeds): {url}/ "
            f"lists {listed} public agents on its first page{more}."
        )

    @staticmethod
    def report_portal(client: ServiceClient, ranked: list[str]) -> None:
        """Where a newcomer clicks through the story as its people (services.portal)."""
        url = client.urls.get("portal")
        if url is None:
            return
        agent = ranked[0] if ranked else "A-1"
        console.print(
            f"[bold]Portal[/bold] (agents' and staff's pages; development sign-in): "
            f"{url}/sign-in?sub={agent}&role=agent — or as role=moderator, coordinator, surveyor."
        )

    def chart(self, state: DemoState) -> Path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.dates as mdates
        import matplotlib.pyplot as plt

        self.out_dir.mkdir(exist_ok=True)
        fig, ax = plt.subplots(figsize=(10, 5))
        colours = {"none": "#999999", "silver": "#8a9bb0", "gold": "#d4a017"}
        for agent_id, points in state.history.items():
            if not points:
                continue
            xs = [float(mdates.date2num(p[0])) for p in points]
            ax.step(xs, [p[1] for p in points], where="post", label=agent_id)
            ax.scatter(
                xs,
                [p[1] for p in points],
                c=[colours.get(p[2], "#000") for p in points],
                s=14,
                zorder=3,
            )
        ax.set_ylim(-0.2, 5.4)
        ax.set_ylabel("stars (dots: status none/silver/gold)")
        ax.set_title("Stars and status over simulated months")
        ax.legend(fontsize=7, ncol=2)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %Y"))
        fig.autofmt_xdate()
        path = self.out_dir / "ratings-over-time.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        return path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--days", type=int, default=240, help="simulated days")
    parser.add_argument("--agents", type=int, default=30)
    parser.add_argument("--closings", type=int, default=300)
    parser.add_argument("--leads", type=int, default=60)
    parser.add_argument(
        "--day-seconds",
        type=float,
        default=0.6,
        help="real seconds per simulated day (lets timers and consumers catch up)",
    )
    parser.add_argument("--chart-agents", type=int, default=6)
    return parser.parse_args(argv)


if __name__ == "__main__":
    started = time.monotonic()
    code = Demo(parse_args()).main()
    console.print(f"demo finished in {time.monotonic() - started:.0f}s")
    sys.exit(code)
