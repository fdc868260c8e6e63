"""The removal form with a proof document, and its download, with the services faked over HTTP:
the file goes to the removals service as it is and the request cites it; a refused file, a
form too large and a form without the session token come back as they should."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from services.portal import session
from tests.unit.portal.conftest import FakeServices, csrf_of, sign_in
from tests.unit.portal.test_pages import canned

PDF = b"%PDF-1.7\n%%EOF\n"
DOCUMENT = {"document_id": "D-1", "media_type": "application/pdf", "filename": "closing.pdf"}
FIELDS = {
    "lead_id": "L-1",
    "reason": "prior_client",
    "notes": "Sam bought 4 Oak St with me in 2023 and came back to me.",
}


def upload_answer(status: int, body: dict[str, Any]) -> Callable[..., httpx.Response]:
    def answer(request: httpx.Request, claims: dict[str, Any]) -> httpx.Response:
        return httpx.Response(status, json=body)

    return answer


async def post_removal(
    client: httpx.AsyncClient, *, csrf: str | None, content: bytes = PDF
) -> httpx.Response:
    data = dict(FIELDS) | ({"csrf": csrf} if csrf is not None else {})
    return await client.post(
        "/agent/removals?lead_id=L-1",
        data=data,
        files={"proof_file": ("closing.pdf", content, "image/png")},
    )


async def test_the_file_goes_to_the_removals_service_and_the_request_cites_it(
    portal_factory: Callable[..., Any], services: FakeServices
) -> None:
    canned(services)
    services.routes[("POST", "removals.test", r"/api/v1/leads/L-1/proof-documents")] = (
        upload_answer(201, DOCUMENT)
    )
    services.routes[("POST", "removals.test", r"/api/v1/removals")] = upload_answer(
        201, {"status": "pending"}
    )
    async with portal_factory() as client:
        await sign_in(client, "A-1", "agent")
        form = await client.get("/agent/leads/L-1/removal")
        assert 'enctype="multipart/form-data"' in form.text
        done = await post_removal(client, csrf=csrf_of(form.text))
    assert done.status_code == 303 and done.headers["location"] == "/agent/leads"
    posts = [c for c in services.calls if c[0] == "POST"]
    assert [where for _, where, _, _ in posts] == [
        "removals.test/api/v1/leads/L-1/proof-documents",
        "removals.test/api/v1/removals",
    ]
    assert posts[0][3] == PDF, "the bytes as chosen, for the service to tell their type"
    assert json.loads(posts[1][3])["proof"] == {"reference": None, "document_id": "D-1"}


async def test_a_refused_file_brings_the_form_back_as_typed_with_the_services_words(
    portal_factory: Callable[..., Any], services: FakeServices
) -> None:
    canned(services)
    services.routes[("POST", "removals.test", r"/api/v1/leads/L-1/proof-documents")] = (
        upload_answer(
            415,
            {"status": 415, "detail": "the proof document must be a PDF, PNG or JPEG file"},
        )
    )
    async with portal_factory() as client:
        await sign_in(client, "A-1", "agent")
        form = await client.get("/agent/leads/L-1/removal")
        page = await post_removal(client, csrf=csrf_of(form.text), content=b"<html>")
    assert page.status_code == 422
    assert "must be a PDF, PNG or JPEG" in page.text
    assert FIELDS["notes"] + "</textarea>" in page.text
    assert not any(where.endswith("/api/v1/removals") for _, where, _, _ in services.calls)


async def test_a_form_with_a_file_and_without_the_session_token_is_refused(
    portal_factory: Callable[..., Any], services: FakeServices
) -> None:
    canned(services)
    async with portal_factory() as client:
        await sign_in(client, "A-1", "agent")
        before = len(services.calls)
        refused = await post_removal(client, csrf="forged")
    assert refused.status_code == 403 and "Form expired" in refused.text
    assert len(services.calls) == before


async def test_a_form_larger_than_the_portal_reads_is_not_read(
    portal_factory: Callable[..., Any], services: FakeServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    canned(services)
    monkeypatch.setattr(session, "MAX_UPLOAD_FORM_BYTES", 1024)
    async with portal_factory() as client:
        await sign_in(client, "A-1", "agent")
        form = await client.get("/agent/leads/L-1/removal")
        page = await post_removal(client, csrf=csrf_of(form.text), content=PDF + b"0" * 2048)
    assert page.status_code == 422
    assert "The request was not accepted" in page.text
    assert not any("proof-documents" in where for _, where, _, _ in services.calls)


async def test_a_proof_document_is_passed_on_as_a_download(
    portal_factory: Callable[..., Any], services: FakeServices
) -> None:
    def download(request: httpx.Request, claims: dict[str, Any]) -> httpx.Response:
        return httpx.Response(
            200,
            content=PDF,
            headers={
                "Content-Type": "application/pdf",
                "Content-Disposition": "attachment; filename*=UTF-8''closing.pdf",
            },
        )

    services.routes[("GET", "removals.test", r"/api/v1/proof-documents/D-1")] = download
    services.routes[("GET", "removals.test", r"/api/v1/proof-documents/D-2")] = upload_answer(
        410, {"status": 410, "detail": "erased at the client's request"}
    )
    async with portal_factory() as client:
        await sign_in(client, "C-1", "coordinator")
        found = await client.get("/proof-documents/D-1")
        erased = await client.get("/proof-documents/D-2")
        missing = await client.get("/proof-documents/D-3")
    assert found.status_code == 200 and found.content == PDF
    assert found.headers["content-type"] == "application/pdf"
    assert found.headers["content-disposition"].startswith("attachment;")
    assert found.headers["x-content-type-options"] == "nosniff"
    assert erased.status_code == 410 and "Erased" in erased.text
    assert missing.status_code == 404
    assert {claims["role"] for _, where, claims, _ in services.calls} == {"coordinator"}
