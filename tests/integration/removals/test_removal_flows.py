"""The removals service running on real Kafka and PostgreSQL, driven through its HTTP API."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from services.removals.app import create_app
from shared.auth import Role, issue_token
from shared.clock import FixedClock
from shared.cloudevents import Envelope
from shared.contracts import LEAD_ASSIGNED, TRANSACTION_CLOSED
from shared.topics import Topic
from tests.conftest import running_app
from tests.integration.removals.conftest import START, lead_assigned, removals_settings, unique
from tests.support.builders import client, transaction_closed

pytestmark = pytest.mark.integration

NOTES = "The client decided to keep renting for another year after a job change."
SECRET = "removals-test-secret-of-at-least-32-bytes"


@pytest.fixture(scope="module")
async def service(kafka_bootstrap: str, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """One service instance for the module, in its own schema and consumer group."""
    settings = removals_settings(kafka_bootstrap, database_url, auth_secret=SECRET)
    async with running_app(create_app(settings, clock=FixedClock(START))) as client:
        yield client


def as_agent(agent_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, agent_id, Role.AGENT)}"}


def as_coordinator(staff_id: str = "C-1") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, staff_id, Role.COORDINATOR)}"}


async def eventually_lead(
    client: httpx.AsyncClient, agent_id: str, lead_id: str, status: str = "open"
) -> dict[str, Any]:
    """Wait until the service has consumed the lead (and it has reached `status`)."""
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        response = await client.get("/api/v1/leads", headers=as_agent(agent_id))
        assert response.status_code == 200
        for lead in response.json()["items"]:
            if lead["lead_id"] == lead_id and lead["status"] == status:
                return dict(lead)
        assert asyncio.get_running_loop().time() < deadline, f"lead {lead_id} never {status}"
        await asyncio.sleep(0.2)


async def assigned_lead(client: httpx.AsyncClient, publish_event: Any, agent_id: str) -> str:
    lead_id = unique("L")
    email = f"{unique('client')}@example.com"
    await publish_event(LEAD_ASSIGNED, lead_assigned(lead_id, agent_id, email))
    lead = await eventually_lead(client, agent_id, lead_id)
    assert lead["client"]["email"] == email
    return lead_id


def of_lead(lead_id: str, ce_type: str) -> Any:
    def matches(envelope: Envelope) -> bool:
        return envelope.type == ce_type and envelope.data.get("lead_id") == lead_id

    return matches


async def test_changed_mind_removes_the_lead_at_once_and_publishes_completion(
    service: httpx.AsyncClient, publish_event: Any, topic_reader: Any
) -> None:
    events = await topic_reader(Topic.REMOVALS_EVENTS)
    agent = unique("A")
    lead_id = await assigned_lead(service, publish_event, agent)

    response = await service.post(
        "/api/v1/removals",
        json={"lead_id": lead_id, "reason": "changed_mind", "notes": NOTES},
        headers=as_agent(agent),
    )

    assert response.status_code == 201, response.text
    removal = response.json()
    assert removal["status"] == "completed"
    assert response.headers["Location"] == f"/api/v1/removals/{removal['removal_id']}"
    assert [step["step"] for step in removal["steps"]] == ["requested", "completed"]
    completed = await events.wait_for(of_lead(lead_id, "removal.completed.v1"))
    assert completed.key == lead_id
    assert completed.data == {
        "removal_id": removal["removal_id"],
        "lead_id": lead_id,
        "agent_id": agent,
        "reason": "changed_mind",
        "referral_fee_owed": True,
        "completed_at": "2026-11-20T15:00:00Z",
        "handed_to_agent_id": None,
    }
    requested = await events.wait_for(of_lead(lead_id, "removal.requested.v1"))
    assert requested.data["needs_approval"] is False
    assert (await eventually_lead(service, agent, lead_id, "removed"))["status"] == "removed"


async def test_bad_fit_waits_for_the_coordinator_then_hands_the_client_off(
    service: httpx.AsyncClient, publish_event: Any, topic_reader: Any
) -> None:
    events = await topic_reader(Topic.REMOVALS_EVENTS)
    agent, new_agent = unique("A"), unique("A")
    lead_id = await assigned_lead(service, publish_event, agent)
    client = (await eventually_lead(service, agent, lead_id))["client"]

    response = await service.post(
        "/api/v1/removals",
        json={
            "lead_id": lead_id,
            "reason": "bad_fit",
            "notes": NOTES,
            "client_ever_responded": True,
        },
        headers=as_agent(agent),
    )
    assert response.status_code == 201, response.text
    removal_id = response.json()["removal_id"]
    assert response.json()["status"] == "pending"
    await eventually_lead(service, agent, lead_id, "removal_pending")

    queue = (await service.get("/api/v1/removals", headers=as_coordinator())).json()["items"]
    assert removal_id in [item["removal_id"] for item in queue]
    of_agent = await service.get(f"/api/v1/removals?agent_id={agent}", headers=as_coordinator())
    assert [item["removal_id"] for item in of_agent.json()["items"]] == [removal_id]
    mine = await service.get("/api/v1/removals?status=pending", headers=as_agent(agent))
    assert [item["removal_id"] for item in mine.json()["items"]] == [removal_id]

    unnamed = await service.post(
        f"/api/v1/removals/{removal_id}/decision",
        json={"decision": "approve", "note": "Spoke with both; a better match is available."},
        headers=as_coordinator("C-7"),
    )
    assert unnamed.status_code == 422, unnamed.text
    assert unnamed.headers["content-type"] == "application/problem+json"
    assert unnamed.json()["code"] == "handoff_agent_required"
    assert "handed_to_agent_id" in unnamed.json()["detail"]
    await eventually_lead(service, agent, lead_id, "removal_pending")  # nothing changed

    decision = await service.post(
        f"/api/v1/removals/{removal_id}/decision",
        json={
            "decision": "approve",
            "note": "Spoke with both; a better match is available.",
            "handed_to_agent_id": new_agent,
        },
        headers=as_coordinator("C-7"),
    )
    assert decision.status_code == 200, decision.text
    decided = decision.json()
    assert decided["status"] == "completed"
    assert decided["decided_by"] == "C-7"
    assert decided["handed_to_agent_id"] == new_agent
    assert [(s["step"], s["actor"]) for s in decided["steps"]] == [
        ("requested", agent),
        ("approved", "C-7"),
        ("handoff_requested", "C-7"),
        ("completed", "C-7"),
    ]

    approved = await events.wait_for(of_lead(lead_id, "removal.approved.v1"))
    handoff = await events.wait_for(of_lead(lead_id, "lead.handoff.requested.v1"))
    completed = await events.wait_for(of_lead(lead_id, "removal.completed.v1"))
    assert approved.data["note"] == "Spoke with both; a better match is available."
    assert handoff.data["from_agent_id"] == agent
    assert handoff.data["to_agent_id"] == new_agent
    assert handoff.data["reason"] == "bad_fit"
    assert completed.data["reason"] == "bad_fit"
    assert completed.data["agent_id"] == agent
    assert completed.data["handed_to_agent_id"] == new_agent

    # the client is the new agent's open lead, with the contact, and gone from the old list
    taken_over = await eventually_lead(service, new_agent, lead_id, "open")
    assert taken_over["client"] == client
    assert taken_over["handed_from_agent_id"] == agent
    assert (await eventually_lead(service, agent, lead_id, "removed"))["client"] == client
    ours = [e.type for e in events.envelopes() if e.data.get("lead_id") == lead_id]
    assert ours == [
        "removal.requested.v1",
        "removal.approved.v1",
        "lead.handoff.requested.v1",
        "removal.completed.v1",
    ]

    again = await service.post(
        f"/api/v1/removals/{removal_id}/decision",
        json={"decision": "deny", "note": "changed my mind"},
        headers=as_coordinator(),
    )
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"


async def test_prior_client_without_proof_is_refused(
    service: httpx.AsyncClient, publish_event: Any
) -> None:
    agent = unique("A")
    lead_id = await assigned_lead(service, publish_event, agent)

    response = await service.post(
        "/api/v1/removals",
        json={"lead_id": lead_id, "reason": "prior_client", "notes": NOTES},
        headers=as_agent(agent),
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "proof_required"
    with_proof = await service.post(
        "/api/v1/removals",
        json={
            "lead_id": lead_id,
            "reason": "prior_client",
            "notes": NOTES,
            "proof": {"reference": "Sold them 4 Oak St in May 2023 (MLS 998877)."},
        },
        headers=as_agent(agent),
    )
    assert with_proof.status_code == 201
    assert with_proof.json()["status"] == "pending"
    nobody_to_hand_to = await service.post(
        f"/api/v1/removals/{with_proof.json()['removal_id']}/decision",
        json={"decision": "approve", "note": "Proof checked.", "handed_to_agent_id": "A-2"},
        headers=as_coordinator(),
    )
    assert nobody_to_hand_to.status_code == 422
    assert nobody_to_hand_to.headers["content-type"] == "application/problem+json"
    assert nobody_to_hand_to.json()["code"] == "handoff_agent_not_applicable"


async def test_a_deal_closed_with_the_agent_completes_the_lead_which_is_then_not_removable(
    service: httpx.AsyncClient, publish_event: Any
) -> None:
    agent = unique("A")
    lead_id, email = unique("L"), f"{unique('client')}@example.com"
    await publish_event(LEAD_ASSIGNED, lead_assigned(lead_id, agent, email))
    await eventually_lead(service, agent, lead_id)
    transaction_id = unique("T")
    await publish_event(
        TRANSACTION_CLOSED,
        transaction_closed(
            transaction_id,
            agent,
            [client("Sam Lee", email)],
            closed_at=datetime(2026, 12, 1, 15, 0, tzinfo=UTC),
        ),
    )

    lead = await eventually_lead(service, agent, lead_id, "completed")
    assert lead["completed_by_transaction"] == transaction_id
    response = await service.post(
        "/api/v1/removals",
        json={"lead_id": lead_id, "reason": "changed_mind", "notes": NOTES},
        headers=as_agent(agent),
    )
    assert response.status_code == 409
    assert response.json()["code"] == "lead_completed"


async def test_bad_requests_get_problem_answers(
    service: httpx.AsyncClient, publish_event: Any
) -> None:
    agent, other = unique("A"), unique("A")
    lead_id = await assigned_lead(service, publish_event, agent)

    def removal(**body: Any) -> dict[str, Any]:
        return {"lead_id": lead_id, "reason": "changed_mind", "notes": NOTES, **body}

    unknown_reason = await service.post(
        "/api/v1/removals", json=removal(reason="moved_away"), headers=as_agent(agent)
    )
    assert unknown_reason.status_code == 422
    assert len(unknown_reason.json()["valid_reasons"]) == 11
    assert "lost_touch" in unknown_reason.json()["detail"]

    unknown_lead = await service.post(
        "/api/v1/removals", json=removal(lead_id=unique("L")), headers=as_agent(agent)
    )
    assert unknown_lead.status_code == 404

    someone_elses = await service.post("/api/v1/removals", json=removal(), headers=as_agent(other))
    assert someone_elses.status_code == 403

    short_notes = await service.post(
        "/api/v1/removals", json=removal(notes="moved"), headers=as_agent(agent)
    )
    assert short_notes.status_code == 422
    assert short_notes.json()["code"] == "notes_required"

    missing_notes = await service.post(
        "/api/v1/removals",
        json={"lead_id": lead_id, "reason": "changed_mind"},
        headers=as_agent(agent),
    )
    assert missing_notes.status_code == 422

    # stored, the calendar's first instant came back naive and every later call on the lead
    # failed with a 500 (found by the long fuzz run); the contract refuses it now
    first_instant = await service.post(
        f"/api/v1/leads/{lead_id}/client-responses",
        json={"responded_at": "0001-01-01T00:00:00Z"},
        headers=as_agent(agent),
    )
    assert first_instant.status_code == 422
    recorded = await service.post(
        f"/api/v1/leads/{lead_id}/client-responses", json={}, headers=as_agent(agent)
    )
    assert recorded.status_code == 200
    assert recorded.json()["client_responded_at"] == "2026-11-20T15:00:00Z"
    no_contact = await service.post(
        "/api/v1/removals",
        json=removal(reason="no_contact", client_ever_responded=False),
        headers=as_agent(agent),
    )
    assert no_contact.status_code == 422
    assert "lost_touch" in no_contact.json()["detail"]

    assert (await service.post("/api/v1/removals", json=removal())).status_code == 401
    coordinator_cannot_request = await service.post(
        "/api/v1/removals", json=removal(), headers=as_coordinator()
    )
    assert coordinator_cannot_request.status_code == 403

    first = await service.post("/api/v1/removals", json=removal(), headers=as_agent(agent))
    assert first.status_code == 201
    replay = await service.post("/api/v1/removals", json=removal(), headers=as_agent(agent))
    assert replay.status_code == 409
    assert replay.json()["code"] == "lead_removed"

    removal_id = first.json()["removal_id"]
    assert (
        await service.get(f"/api/v1/removals/{removal_id}", headers=as_agent(agent))
    ).status_code == 200
    assert (
        await service.get(f"/api/v1/removals/{removal_id}", headers=as_agent(other))
    ).status_code == 403
    assert (
        await service.get(f"/api/v1/removals/{uuid.uuid4()}", headers=as_coordinator())
    ).status_code == 404
    agent_cannot_decide = await service.post(
        f"/api/v1/removals/{removal_id}/decision",
        json={"decision": "approve", "note": "ok"},
        headers=as_agent(agent),
    )
    assert agent_cannot_decide.status_code == 403
    not_pending = await service.post(
        f"/api/v1/removals/{removal_id}/decision",
        json={"decision": "approve", "note": "ok"},
        headers=as_coordinator(),
    )
    assert not_pending.status_code == 409


async def test_two_requests_racing_for_one_lead_make_one_removal(
    service: httpx.AsyncClient, publish_event: Any
) -> None:
    agent = unique("A")
    lead_id = await assigned_lead(service, publish_event, agent)
    body = {"lead_id": lead_id, "reason": "active_handoff", "notes": NOTES}

    answers = await asyncio.gather(
        *(service.post("/api/v1/removals", json=body, headers=as_agent(agent)) for _ in range(4))
    )

    assert sorted(answer.status_code for answer in answers) == [201, 409, 409, 409]
    mine = (await service.get("/api/v1/removals", headers=as_agent(agent))).json()["items"]
    assert len(mine) == 1


async def test_the_openapi_document_describes_the_routes(service: httpx.AsyncClient) -> None:
    document = (await service.get("/openapi.json")).json()
    assert {"/api/v1/removals", "/api/v1/removals/{removal_id}/decision"} <= set(document["paths"])
