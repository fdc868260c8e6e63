"""Proof documents of prior_client removals on the real stack: an agent uploads one for their own
lead and cites it, the coordinator reads it; wrong types, large files and other agents are
refused; an erasure of the client takes the bytes."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.removals import handlers
from services.removals.app import create_app
from shared.auth import Role, issue_token
from shared.clock import FixedClock
from shared.contracts.erasures import ErasureRequested
from shared.uow import UnitOfWorkFactory
from tests.conftest import running_app
from tests.integration.removals.conftest import (
    START,
    lead_assigned,
    removals_settings,
    unique,
)
from tests.integration.removals.test_removal_flows import SECRET, assigned_lead
from tests.support.kafka import dispatcher_of, start_group_at_end

pytestmark = pytest.mark.integration

LIMIT = 64 * 1024
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
NOTES = "Pat bought 4 Oak St with me in 2023; she came back through the partner site."


@pytest.fixture(scope="module")
async def service(kafka_bootstrap: str, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = removals_settings(
        kafka_bootstrap, database_url, auth_secret=SECRET, proof_max_bytes=LIMIT
    )
    app = create_app(settings, clock=FixedClock(START))
    # only this module's events: not every earlier test's from the start of the shared topics
    await start_group_at_end(kafka_bootstrap, settings.group_id, dispatcher_of(app).subscribed)
    async with running_app(app) as client:
        yield client


def bearer(sub: str, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, sub, role)}"}


async def upload(
    service: httpx.AsyncClient,
    agent: str,
    lead_id: str,
    content: bytes,
    content_type: str = "application/pdf",
) -> httpx.Response:
    return await service.post(
        f"/api/v1/leads/{lead_id}/proof-documents",
        params={"filename": "../closing statement 2023.pdf"},
        content=content,
        headers={**bearer(agent, Role.AGENT), "Content-Type": content_type},
    )


async def test_the_agent_uploads_proof_cites_it_and_only_the_coordinator_and_agent_read_it(
    service: httpx.AsyncClient, publish_event: Any
) -> None:
    agent, other = unique("A"), unique("A")
    lead_id = await assigned_lead(service, publish_event, agent)

    # the content type claimed is wrong on purpose: the bytes say PDF
    uploaded = await upload(service, agent, lead_id, PDF, content_type="image/png")

    assert uploaded.status_code == 201, uploaded.text
    document = uploaded.json()
    assert document["media_type"] == "application/pdf"
    assert document["filename"] == "closing statement 2023.pdf"
    assert document["size_bytes"] == len(PDF)
    assert document["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert uploaded.headers["Location"] == document["href"]

    asked = await service.post(
        "/api/v1/removals",
        json={
            "lead_id": lead_id,
            "reason": "prior_client",
            "notes": NOTES,
            "proof": {"document_id": document["document_id"]},
        },
        headers=bearer(agent, Role.AGENT),
    )
    assert asked.status_code == 201, asked.text
    assert asked.json()["status"] == "pending"
    assert asked.json()["proof"]["document"]["href"] == document["href"]

    queue = await service.get("/api/v1/removals", headers=bearer("C-1", Role.COORDINATOR))
    (pending,) = [r for r in queue.json()["items"] if r["lead_id"] == lead_id]
    assert pending["proof"]["document"]["filename"] == "closing statement 2023.pdf"
    read = await service.get(document["href"], headers=bearer("C-1", Role.COORDINATOR))
    assert read.status_code == 200
    assert read.content == PDF
    assert read.headers["Content-Type"] == "application/pdf"
    assert read.headers["Content-Disposition"].startswith("attachment;")
    assert read.headers["X-Content-Type-Options"] == "nosniff"
    assert (await service.get(document["href"], headers=bearer(agent, Role.AGENT))).content == PDF

    refused = await service.get(document["href"], headers=bearer(other, Role.AGENT))
    assert refused.status_code == 403
    assert refused.headers["Content-Type"] == "application/problem+json"
    moderator = await service.get(document["href"], headers=bearer("M-1", Role.MODERATOR))
    assert moderator.status_code == 403
    missing = await service.get(
        f"/api/v1/proof-documents/{uuid.uuid4()}", headers=bearer("C-1", Role.COORDINATOR)
    )
    assert missing.status_code == 404


async def test_another_agent_can_neither_upload_for_the_lead_nor_cite_its_document(
    service: httpx.AsyncClient, publish_event: Any
) -> None:
    agent, other = unique("A"), unique("A")
    lead_id = await assigned_lead(service, publish_event, agent)
    others_lead = await assigned_lead(service, publish_event, other)

    refused = await upload(service, other, lead_id, PDF)
    assert refused.status_code == 403
    assert refused.json()["code"] == "not_your_lead"
    document = (await upload(service, agent, lead_id, PNG)).json()
    assert document["media_type"] == "image/png"

    cited = await service.post(
        "/api/v1/removals",
        json={
            "lead_id": others_lead,
            "reason": "prior_client",
            "notes": NOTES,
            "proof": {"document_id": document["document_id"]},
        },
        headers=bearer(other, Role.AGENT),
    )
    assert cited.status_code == 422
    assert cited.json()["code"] == "unknown_proof_document"
    assert (await upload(service, agent, unique("L"), PDF)).status_code == 404


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b"<html><script>alert(1)</script></html>", 415, "proof_document_type"),
        (b"MZ\x90\x00 an executable named closing.pdf", 415, "proof_document_type"),
        (b"%PDF-1.7\n" + b"0" * LIMIT, 413, "proof_document_too_large"),
        (b"", 422, "proof_document_empty"),
    ],
    ids=["html", "executable", "too-large", "empty"],
)
async def test_what_is_not_a_pdf_png_or_jpeg_of_at_most_the_limit_is_refused(
    service: httpx.AsyncClient, publish_event: Any, content: bytes, status: int, code: str
) -> None:
    agent = unique("A")
    lead_id = await assigned_lead(service, publish_event, agent)

    refused = await upload(service, agent, lead_id, content)

    assert refused.status_code == status, refused.text
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert refused.json()["code"] == code


async def test_a_streamed_body_past_the_limit_is_refused_while_it_is_read(
    service: httpx.AsyncClient, publish_event: Any
) -> None:
    agent = unique("A")
    lead_id = await assigned_lead(service, publish_event, agent)

    async def chunks() -> AsyncIterator[bytes]:
        yield b"%PDF-1.7\n"
        for _ in range(4):
            yield b"0" * (LIMIT // 2)

    refused = await service.post(
        f"/api/v1/leads/{lead_id}/proof-documents",
        content=chunks(),
        headers=bearer(agent, Role.AGENT),
    )
    assert refused.status_code == 413
    assert refused.json()["code"] == "proof_document_too_large"


async def test_the_upload_route_is_in_the_openapi_document(service: httpx.AsyncClient) -> None:
    paths = (await service.get("/openapi.json")).json()["paths"]
    upload_route = paths["/api/v1/leads/{lead_id}/proof-documents"]["post"]
    assert set(upload_route["requestBody"]["content"]) >= {"application/pdf", "image/jpeg"}
    assert {"413", "415"} <= set(upload_route["responses"])
    assert "/api/v1/proof-documents/{document_id}" in paths


async def test_an_erasure_takes_the_documents_bytes_and_name_and_keeps_the_record(
    units: UnitOfWorkFactory,
) -> None:
    agent, lead_id, email = unique("A"), unique("L"), f"{unique('pat')}@example.com"
    async with units() as uow:
        await handlers.lead_assigned(lead_assigned(lead_id, agent, email), uow)
        document = await handlers.upload_proof(
            uow,
            agent_id=agent,
            lead_id=lead_id,
            content=PDF,
            filename="pat-doe-closing.pdf",
            max_bytes=LIMIT,
        )
    async with units.pool.acquire() as conn:
        sealed = bytes(await conn.fetchval("SELECT content_sealed FROM proof_documents"))
    assert b"Catalog" not in sealed  # sealed at rest, like the lead's contact

    async with units() as uow:
        await handlers.erasure_requested(
            ErasureRequested(
                erasure_id=str(uuid.uuid4()),
                requested_at=START,
                client_indexes=[units.cipher.blind_index(email)],
                invitation_ids=[],
            ),
            uow,
        )

    async with units.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT filename, content_sealed, erased_at, sha256, size_bytes FROM proof_documents"
            " WHERE document_id = $1",
            document.document_id,
        )
    assert row["filename"] is None
    assert row["content_sealed"] is None
    assert row["erased_at"] == START
    assert (row["sha256"], row["size_bytes"]) == (hashlib.sha256(PDF).hexdigest(), len(PDF))
