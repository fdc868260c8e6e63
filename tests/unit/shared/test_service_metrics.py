"""What a service's `/metrics` says about its HTTP requests, its timer jobs and its dead letters,
without the stack: the app is served in-process without its lifespan, the jobs run on a bare runtime."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
from fastapi import APIRouter
from faststream.kafka import KafkaBroker, TestKafkaBroker
from prometheus_client import REGISTRY

from shared.contracts import LEAD_ASSIGNED
from shared.messaging import EventDispatcher
from shared.runtime import ServiceRuntime, create_http_app
from shared.settings import ServiceSettings
from shared.topics import Topic, dlq


def _runtime() -> ServiceRuntime:
    # a service name of its own: the registry is the process's, shared with other tests
    return ServiceRuntime(ServiceSettings(service_name=f"probe{uuid.uuid4().hex[:8]}"))


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_http_requests_are_counted_by_route_template_method_and_status() -> None:
    runtime = _runtime()
    router = APIRouter()

    @router.get("/agents/{agent_id}")
    async def agent(agent_id: str) -> dict[str, str]:
        return {"agent_id": agent_id}

    @router.post("/agents/{agent_id}/boom")
    async def boom(agent_id: str) -> None:
        raise RuntimeError("a bug")

    app = create_http_app(runtime, [router], title="probe")
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        for agent_id in ("A-1", "A-2", "A-3"):
            assert (await client.get(f"/agents/{agent_id}")).status_code == 200
        assert (await client.post("/agents/A-1/boom")).status_code == 500
        assert (await client.get("/wp-login.php")).status_code == 404

    service = runtime.service
    ok = {"service": service, "route": "/agents/{agent_id}", "method": "GET", "status": "200"}
    assert _sample("ratings_http_requests_total", **ok) == 3
    assert _sample("ratings_http_request_duration_seconds_count", **ok) == 3
    failed = {**ok, "route": "/agents/{agent_id}/boom", "method": "POST", "status": "500"}
    assert _sample("ratings_http_requests_total", **failed) == 1
    unmatched = {**ok, "route": "unmatched", "status": "404"}
    assert _sample("ratings_http_requests_total", **unmatched) == 1
    # no series is ever labelled with a raw path
    raw_paths = [
        sample
        for metric in REGISTRY.collect()
        if metric.name.startswith("ratings_http_")
        for sample in metric.samples
        if sample.labels.get("service") == service and "A-" in sample.labels.get("route", "")
    ]
    assert raw_paths == []


async def test_a_timer_job_reports_how_late_it_started_and_how_long_it_ran() -> None:
    runtime = _runtime()
    runs = 0
    second_run = asyncio.Event()

    async def job(_runtime: ServiceRuntime) -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise RuntimeError("first run fails")
        await asyncio.sleep(0.05)
        second_run.set()

    async def hog_the_loop() -> None:
        await asyncio.sleep(0.01)  # the job has run once and sleeps its interval ...
        time.sleep(0.3)  # ... while something holds the event loop well past it

    task = asyncio.create_task(runtime._run_job("tick", 0.05, job))
    await hog_the_loop()
    async with asyncio.timeout(5):
        await second_run.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    labels = {"service": runtime.service, "job": "tick"}
    assert _sample("ratings_scheduler_delay_seconds_count", **labels) >= 2
    # the second run was due 0.05 s after the first; the loop was held for 0.3 s
    assert _sample("ratings_scheduler_delay_seconds_sum", **labels) >= 0.2
    assert _sample("ratings_scheduler_job_duration_seconds_sum", **labels) >= 0.05
    assert _sample("ratings_scheduler_runs_total", **labels, outcome="failed") == 1
    assert _sample("ratings_scheduler_runs_total", **labels, outcome="ok") >= 1
    assert _sample("ratings_scheduler_last_run_timestamp_seconds", **labels) > time.time() - 60


async def test_a_dead_letter_is_counted_under_the_topic_it_was_read_from_and_its_reason() -> None:
    service = f"probe{uuid.uuid4().hex[:8]}"
    dispatcher = EventDispatcher(service)

    @dispatcher.on(LEAD_ASSIGNED)
    async def never_called(event: object, uow: object) -> None:
        raise AssertionError("an undecodable record reaches no handler")

    broker = KafkaBroker()
    no_database: Any = None  # an undecodable record never opens a unit of work
    dispatcher.attach(broker, no_database, group_id="test", max_attempts=1)
    published: list[str] = []

    async def as_sent(message: Any) -> Any:
        return message

    @broker.subscriber(dlq(Topic.LEADS_ASSIGNED), decoder=as_sent)
    async def dead(message: Any) -> None:
        published.append(message.raw_message.topic)

    headers = {
        "ce_specversion": "1.0",
        "ce_id": "x-1",
        "ce_source": "/tests",
        "ce_type": LEAD_ASSIGNED.ce_type,
        "content-type": "application/json",
    }
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(
            b"this is not json", Topic.LEADS_ASSIGNED, key=b"L-1", headers=headers
        )

    assert published == [dlq(Topic.LEADS_ASSIGNED)]
    labels = {"service": service, "topic": Topic.LEADS_ASSIGNED.value, "reason": "value_not_json"}
    assert _sample("ratings_dead_lettered_total", **labels) == 1
    consumed = {"service": service, "topic": Topic.LEADS_ASSIGNED.value, "outcome": "dead_lettered"}
    assert _sample("ratings_events_consumed_total", **consumed) == 1
