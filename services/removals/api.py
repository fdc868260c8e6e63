"""HTTP routes: agents request removals and record client responses; coordinators decide."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from services.removals import handlers
from services.removals.domain.model import (
    MAX_AGENT_ID_LENGTH,
    MAX_DECISION_NOTE_LENGTH,
    MAX_NOTES_LENGTH,
    MAX_PROOF_LENGTH,
    MIN_NOTES_LENGTH,
    Decision,
    Lead,
    LeadStatus,
    Proof,
    RemovalRequest,
    RemovalStatus,
    valid_reasons,
)
from services.removals.domain.proof import ACCEPTED, ProofDocument, may_read
from services.removals.repository import LeadRecord, RemovalsRepository
from services.removals.settings import RemovalsSettings
from shared.auth import Principal, Role, require_roles
from shared.contracts.base import UtcDatetime
from shared.contracts.leads import LeadClient
from shared.contracts.removals import RemovalReason
from shared.errors import DomainError
from shared.http import ProblemError, domain_problems
from shared.runtime import ServiceRuntime, runtime_of
from shared.uow import UnitOfWork

router = APIRouter(prefix="/api/v1", tags=["removals"])

Agent = Annotated[Principal, Depends(require_roles(Role.AGENT))]
Coordinator = Annotated[Principal, Depends(require_roles(Role.COORDINATOR))]
AgentOrCoordinator = Annotated[Principal, Depends(require_roles(Role.AGENT, Role.COORDINATOR))]
Runtime = Annotated[ServiceRuntime, Depends(runtime_of)]
Limit = Annotated[int, Query(ge=1, le=500, description="At most this many items.")]

T = TypeVar("T")

STATUSES = {
    **dict.fromkeys(("lead_removal_pending", "lead_removed", "lead_completed", "not_pending"), 409),
    "not_your_lead": 403,
    "proof_document_too_large": 413,
    "proof_document_type": 415,
}
"""The HTTP status of each refusal that is not a plain 422."""


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProofBody(Body):
    document_ref: str | None = Field(
        default=None,
        max_length=MAX_PROOF_LENGTH,
        description="Reference of an uploaded document (e.g. a closing statement).",
        examples=["doc-7f3a2c"],
    )
    reference: str | None = Field(
        default=None,
        max_length=MAX_PROOF_LENGTH,
        description="A written reference: what, where and when the earlier relationship was.",
        examples=["Represented the client buying 4 Oak St, MLS 998877, closed May 2023"],
    )
    document_id: str | None = Field(
        default=None,
        max_length=64,
        description="A proof document uploaded for this lead "
        "(`POST /api/v1/leads/{lead_id}/proof-documents`).",
        examples=["3f0c5d2e-8a4b-4c55-9a61-0d7e2b1c9f10"],
    )


class ProofDocumentView(BaseModel):
    document_id: str
    lead_id: str
    agent_id: str = Field(description="The agent who uploaded it.")
    filename: str | None = Field(description="As uploaded (cleaned); null once erased.")
    media_type: str = Field(
        description="Told by the file's bytes, not by what the sender claimed.",
        examples=["application/pdf"],
    )
    size_bytes: int
    sha256: str = Field(description="Hex SHA-256 of the bytes: kept after an erasure.")
    uploaded_at: UtcDatetime
    erased_at: UtcDatetime | None = Field(
        description="When the bytes were erased at the client's request (then 410 on download)."
    )
    href: str = Field(description="Where coordinators and the uploading agent download it.")

    @classmethod
    def of(cls, document: ProofDocument) -> ProofDocumentView:
        return cls(
            document_id=document.document_id,
            lead_id=document.lead_id,
            agent_id=document.agent_id,
            filename=document.filename,
            media_type=document.media_type,
            size_bytes=document.size,
            sha256=document.sha256,
            uploaded_at=document.uploaded_at,
            erased_at=document.erased_at,
            href=f"/api/v1/proof-documents/{document.document_id}",
        )


class ProofView(ProofBody):
    document: ProofDocumentView | None = Field(
        default=None, description="The uploaded document `document_id` names."
    )


class RemovalBody(Body):
    lead_id: str = Field(min_length=1, max_length=64, examples=["L-1"])
    reason: str = Field(
        max_length=64,
        description=f"One of: {', '.join(valid_reasons())}.",
        examples=["changed_mind"],
    )
    notes: str = Field(
        max_length=MAX_NOTES_LENGTH,
        description=f"Required: at least {MIN_NOTES_LENGTH} characters saying what happened.",
        examples=[
            "The client decided to stay in their current home after the job offer fell through."
        ],
    )
    client_ever_responded: bool | None = Field(
        default=None,
        description="Did the client ever respond? no_contact is refused when they did.",
    )
    proof: ProofBody | None = Field(
        default=None, description="Required for prior_client: a document or a written reference."
    )


class DecisionBody(Body):
    decision: Decision = Field(examples=["approve"])
    note: str = Field(
        max_length=MAX_DECISION_NOTE_LENGTH,
        description="Why (for prior_client: how the proof was verified).",
        examples=["Checked the 2023 closing statement."],
    )
    handed_to_agent_id: str | None = Field(
        default=None,
        max_length=MAX_AGENT_ID_LENGTH,
        description="Required when approving active_handoff or bad_fit, refused otherwise: the "
        "agent who takes the client over (the lead becomes theirs, open).",
        examples=["A-2"],
    )


class ClientResponseBody(Body):
    responded_at: UtcDatetime | None = Field(
        default=None, description="When the client responded (default: now)."
    )


class StepView(BaseModel):
    step: str = Field(examples=["requested"])
    actor: str = Field(description="Agent, coordinator, or `system`.", examples=["A-1"])
    at: UtcDatetime
    note: str


class RemovalView(BaseModel):
    removal_id: str
    lead_id: str
    agent_id: str
    reason: RemovalReason
    notes: str
    status: RemovalStatus
    needs_approval: bool
    client_ever_responded: bool | None
    proof: ProofView | None
    referral_fee_owed: bool
    requested_at: UtcDatetime
    decided_by: str | None
    decided_at: UtcDatetime | None
    decision_note: str | None
    completed_at: UtcDatetime | None
    handed_to_agent_id: str | None = Field(
        default=None, description="The agent an approved hand-off gave the client to."
    )
    steps: list[StepView] = Field(description="Every step taken: who, when, why.")

    @classmethod
    def of(
        cls, request: RemovalRequest, documents: dict[str, ProofDocument] | None = None
    ) -> RemovalView:
        proof = request.proof
        document = (documents or {}).get(proof.document_id or "") if proof else None
        return cls(
            removal_id=request.removal_id,
            lead_id=request.lead_id,
            agent_id=request.agent_id,
            reason=request.reason,
            notes=request.notes,
            status=request.status,
            needs_approval=request.needs_approval,
            client_ever_responded=request.client_ever_responded,
            proof=ProofView(
                document_ref=proof.document_ref,
                reference=proof.reference,
                document_id=proof.document_id,
                document=ProofDocumentView.of(document) if document else None,
            )
            if proof
            else None,
            referral_fee_owed=request.referral_fee_owed,
            requested_at=request.requested_at,
            decided_by=request.decided_by,
            decided_at=request.decided_at,
            decision_note=request.decision_note,
            completed_at=request.completed_at,
            handed_to_agent_id=request.handed_to,
            steps=[
                StepView(step=s.kind.value, actor=s.actor, at=s.at, note=s.note)
                for s in request.steps
            ],
        )


class RemovalList(BaseModel):
    items: list[RemovalView]


class LeadView(BaseModel):
    lead_id: str
    agent_id: str
    status: LeadStatus
    assigned_at: UtcDatetime
    client_responded_at: UtcDatetime | None
    client: LeadClient | None = Field(
        default=None, description="Shown to the lead's agent only; null once erased."
    )
    completed_by_transaction: str | None = None
    completed_at: UtcDatetime | None = None
    client_erased_at: UtcDatetime | None = Field(
        default=None, description="When the client's contact was erased at their request."
    )
    handed_from_agent_id: str | None = Field(
        default=None, description="The agent who handed this client to you, if one did."
    )

    @classmethod
    def of(cls, lead: Lead, record: LeadRecord | None = None) -> LeadView:
        return cls(
            lead_id=lead.lead_id,
            agent_id=lead.agent_id,
            status=lead.status,
            assigned_at=lead.assigned_at,
            client_responded_at=lead.client_responded_at,
            client=record.client if record else None,
            completed_by_transaction=record.completed_by_transaction if record else None,
            completed_at=record.completed_at if record else None,
            client_erased_at=record.client_erased_at if record else None,
            handed_from_agent_id=lead.handed_from,
        )


class LeadList(BaseModel):
    items: list[LeadView]


@router.post("/removals", status_code=201, response_model=RemovalView)
async def request_removal(
    body: RemovalBody, agent: Agent, runtime: Runtime, response: Response
) -> RemovalView:
    """Ask to remove one of your leads. Most reasons complete at once; `active_handoff`,
    `bad_fit` and `prior_client` wait for a coordinator."""
    given = body.proof
    proof = Proof(given.document_ref, given.reference, given.document_id) if given else None
    request = await _run(
        runtime,
        lambda uow: handlers.ask_for_removal(
            uow,
            agent_id=agent.sub,
            lead_id=body.lead_id,
            reason=body.reason,
            notes=body.notes,
            client_ever_responded=body.client_ever_responded,
            proof=proof,
        ),
    )
    response.headers["Location"] = f"/api/v1/removals/{request.removal_id}"
    return (await _views(runtime, [request]))[0]


@router.get("/removals", response_model=RemovalList)
async def list_removals(
    principal: AgentOrCoordinator,
    runtime: Runtime,
    status: Annotated[
        RemovalStatus | None,
        Query(description="Agents: any (default all); coordinators: default `pending`, the queue."),
    ] = None,
    agent_id: Annotated[
        str | None, Query(description="Coordinators: only this agent's requests.")
    ] = None,
    limit: Limit = 100,
) -> RemovalList:
    """Agents see their own requests; coordinators see the queue, oldest first."""
    if principal.role is Role.COORDINATOR:
        status = status or RemovalStatus.PENDING
    else:
        agent_id = principal.sub
    async with runtime.unit_of_work() as uow:
        repo = RemovalsRepository(uow.conn, uow.cipher)
        found = await repo.requests(agent_id=agent_id, status=status, limit=limit)
        documents = await repo.proof_documents(_document_ids(found))
    return RemovalList(items=[RemovalView.of(request, documents) for request in found])


@router.get("/removals/{removal_id}", response_model=RemovalView)
async def get_removal(
    removal_id: str, principal: AgentOrCoordinator, runtime: Runtime
) -> RemovalView:
    async with runtime.unit_of_work() as uow:
        request = await RemovalsRepository(uow.conn, uow.cipher).request(removal_id)
    if request is None:
        raise ProblemError(404, "Not Found", f"no removal request {removal_id}")
    if principal.role is Role.AGENT and request.agent_id != principal.sub:
        raise ProblemError(403, "Forbidden", "this removal request is another agent's")
    return (await _views(runtime, [request]))[0]


@router.post("/removals/{removal_id}/decision", response_model=RemovalView)
async def decide_removal(
    removal_id: str, body: DecisionBody, coordinator: Coordinator, runtime: Runtime
) -> RemovalView:
    """Approve (for prior_client: the proof is verified) or deny a pending request. Approving
    active_handoff or bad_fit names the agent who takes the client over (422
    `handoff_agent_required` without one)."""
    request = await _run(
        runtime,
        lambda uow: handlers.decide_removal(
            uow,
            removal_id=removal_id,
            coordinator_id=coordinator.sub,
            decision=body.decision,
            note=body.note,
            handed_to=body.handed_to_agent_id,
        ),
    )
    return (await _views(runtime, [request]))[0]


@router.get("/leads", response_model=LeadList)
async def list_leads(
    agent: Agent,
    runtime: Runtime,
    status: Annotated[LeadStatus | None, Query()] = None,
    limit: Limit = 100,
) -> LeadList:
    """Your leads with their clients' contact details, newest first."""
    async with runtime.unit_of_work() as uow:
        records = await RemovalsRepository(uow.conn, uow.cipher).leads_of(agent.sub, status, limit)
    return LeadList(items=[LeadView.of(record.lead, record) for record in records])


@router.post("/leads/{lead_id}/client-responses", response_model=LeadView)
async def record_client_response(
    lead_id: str, body: ClientResponseBody, agent: Agent, runtime: Runtime
) -> LeadView:
    """Record that the client responded (the lead's contact history: no_contact is then refused)."""
    lead = await _run(
        runtime,
        lambda uow: handlers.note_client_response(
            uow, agent_id=agent.sub, lead_id=lead_id, responded_at=body.responded_at
        ),
    )
    return LeadView.of(lead)


PROOF_BODY = {
    "required": True,
    "description": "The file's bytes (PDF, PNG or JPEG; the type is told by the bytes, the "
    "Content-Type sent is not trusted).",
    "content": {
        media_type: {"schema": {"type": "string", "format": "binary"}}
        for media_type in (*ACCEPTED, "application/octet-stream")
    },
}
PROBLEMS: dict[str, Any] = {"content": {"application/problem+json": {}}}


@router.post(
    "/leads/{lead_id}/proof-documents",
    status_code=201,
    response_model=ProofDocumentView,
    openapi_extra={"requestBody": PROOF_BODY},
    responses={
        403: {"description": "Another agent's lead.", **PROBLEMS},
        404: {"description": "No such lead.", **PROBLEMS},
        413: {"description": "Larger than `PROOF_MAX_BYTES`.", **PROBLEMS},
        415: {"description": "Not a PDF, PNG or JPEG by its bytes.", **PROBLEMS},
    },
)
async def upload_proof_document(
    lead_id: str,
    request: Request,
    agent: Agent,
    runtime: Runtime,
    response: Response,
    filename: Annotated[
        str | None,
        Query(max_length=255, description="The file's name, shown to the coordinator."),
    ] = None,
) -> ProofDocumentView:
    """Upload proof of an earlier relationship for one of your leads (for a `prior_client`
    removal, whose `proof.document_id` then names it). The body is the file itself."""
    max_bytes = _settings(runtime).proof_max_bytes
    content = await _body_up_to(request, max_bytes)
    document = await _run(
        runtime,
        lambda uow: handlers.upload_proof(
            uow,
            agent_id=agent.sub,
            lead_id=lead_id,
            content=content,
            filename=filename,
            max_bytes=max_bytes,
        ),
    )
    response.headers["Location"] = f"/api/v1/proof-documents/{document.document_id}"
    return ProofDocumentView.of(document)


@router.get(
    "/proof-documents/{document_id}",
    response_class=Response,
    responses={
        200: {
            "description": "The file, as uploaded.",
            "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in ACCEPTED},
        },
        403: {"description": "Another agent's document.", **PROBLEMS},
        404: {"description": "No such document.", **PROBLEMS},
        410: {"description": "Erased at the client's request.", **PROBLEMS},
    },
)
async def download_proof_document(
    document_id: str, principal: AgentOrCoordinator, runtime: Runtime
) -> Response:
    """A proof document: coordinators (who verify it) and the agent who uploaded it."""
    async with runtime.unit_of_work() as uow:
        repo = RemovalsRepository(uow.conn, uow.cipher)
        document = await repo.proof_document(document_id)
        if document is None:
            raise ProblemError(404, "Not Found", f"no proof document {document_id}")
        if not may_read(
            document, subject=principal.sub, is_coordinator=principal.role is Role.COORDINATOR
        ):
            raise ProblemError(403, "Forbidden", "this proof document is another agent's")
        content = await repo.proof_content(document_id)
    if content is None:
        raise ProblemError(410, "Gone", "the proof document was erased at the client's request")
    name = document.filename or document_id
    return Response(
        content,
        media_type=document.media_type,
        headers={
            # a download, never rendered as a page of this origin; the bytes were sniffed on
            # the way in, and the browser may not sniff them again
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "no-store",
        },
    )


def _settings(runtime: ServiceRuntime) -> RemovalsSettings:
    settings = runtime.settings
    if not isinstance(settings, RemovalsSettings):
        raise TypeError("the removals routes run on RemovalsSettings")
    return settings


async def _body_up_to(request: Request, max_bytes: int) -> bytes:
    """The request body, refused (413) as soon as it is larger than `max_bytes`: a declared
    length is checked before anything is read, a streamed body while it is read."""
    too_large = ProblemError(
        413,
        "Content Too Large",
        f"the proof document is larger than {max_bytes} bytes",
        code="proof_document_too_large",
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    received = bytearray()
    async for chunk in request.stream():
        received.extend(chunk)
        if len(received) > max_bytes:
            raise too_large
    return bytes(received)


def _document_ids(requests: list[RemovalRequest]) -> list[str]:
    return [r.proof.document_id for r in requests if r.proof and r.proof.document_id]


async def _views(runtime: ServiceRuntime, requests: list[RemovalRequest]) -> list[RemovalView]:
    """The requests as shown, with their proof documents' details."""
    documents: dict[str, ProofDocument] = {}
    if ids := _document_ids(requests):
        async with runtime.unit_of_work() as uow:
            documents = await RemovalsRepository(uow.conn, uow.cipher).proof_documents(ids)
    return [RemovalView.of(request, documents) for request in requests]


async def _run(runtime: ServiceRuntime, command: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    """Run a command in one transaction; a refused command rolls back and answers a problem."""
    async with domain_problems(STATUSES, extra=_extra), runtime.unit_of_work() as uow:
        return await command(uow)


def _extra(refused: DomainError) -> dict[str, Any]:
    """An unknown reason is answered with the reasons there are."""
    return {"valid_reasons": valid_reasons()} if refused.code == "unknown_reason" else {}
