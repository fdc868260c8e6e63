"""The agent's pages: dashboard, clients to survey, reviews, participation, leads and removals.

Every page reads and every form writes through the owning service's API with the agent's own
token; a refusal (another agent's review, a wrong address) is the service's."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from services.portal.backends import ApiProblem, Backends, Person
from services.portal.domain.standing import counted, standing
from services.portal.pages import (
    TEMPLATES,
    Api,
    Posted,
    SignedIn,
    back,
    now_of,
    refused,
    render,
)
from services.portal.session import (
    MAX_UPLOAD_FORM_BYTES,
    UploadTooLarge,
    checked_upload,
)
from shared.contracts.participation import ParticipationMode
from shared.contracts.removals import RemovalReason
from shared.templating import shipped_templates

router = APIRouter(tags=["agent"])

REASONS = tuple(reason.value for reason in RemovalReason)
HANDOFF_REASONS = ("active_handoff", "bad_fit")
MODES = tuple(mode.value for mode in ParticipationMode)
PERIODS = (30, 90, 180, 365)
"""The funnel's periods (days up to now) an agent picks from; 90 by default, as the APIs."""
MODE_OF_VISIBILITY = {"public": "opt_in_public", "hidden": "opt_in_hidden", "opted_out": "opt_out"}

# the invitations service's own mail templates: the preview is the mail the client gets
# (plain text, escaped by the page that shows it)
SURVEY_MAILS = shipped_templates(
    Path(__file__).parents[1] / "invitations" / "templates", html=False
)


def survey_mail(reason: str, **values: Any) -> dict[str, str]:
    """Subject and text of the removal survey mail the client gets for `reason`."""
    if reason not in REASONS:
        raise ValueError(reason)
    return {
        part: SURVEY_MAILS.get_template(f"removal_survey_{reason}.{part}.j2")
        .render(**values)
        .strip()
        for part in ("subject", "txt")
    }


TEMPLATES.globals.update(survey_mail=survey_mail, Markup=Markup)


def _base(agent_id: str) -> str:
    return f"/api/v1/agents/{agent_id}"


@router.get("/agent", response_class=HTMLResponse)
async def dashboard(request: Request, person: SignedIn, api: Api) -> Response:
    rating = await api.find(person, "scoring", f"{_base(person.sub)}/rating")
    reviews = await api.get(person, "reviews", f"{_base(person.sub)}/reviews", limit=500)
    requests = await api.get(person, "invitations", f"{_base(person.sub)}/contact-requests")
    now = now_of(request)
    days = _period_days(request.query_params.get("days"))
    period = {"from": (now - timedelta(days=days)).isoformat(), "to": now.isoformat()}
    invited = await api.get(person, "invitations", f"{_base(person.sub)}/funnel", **period)
    answered = await api.get(person, "reviews", f"{_base(person.sub)}/funnel", **period)
    return render(
        request,
        "agent/dashboard.html",
        standing=standing(rating, counted(reviews["reviews"]), now) if rating else None,
        contact_requests=requests["items"],
        awaiting=[r for r in reviews["reviews"] if r["status"] == "awaiting_response"],
        funnel={"invited": invited, "answered": answered},
        days=days,
        periods=PERIODS,
    )


def _period_days(chosen: str | None) -> int:
    return int(chosen) if chosen and chosen.isdigit() and int(chosen) in PERIODS else 90


@router.get("/agent/clients", response_class=HTMLResponse)
async def clients(request: Request, person: SignedIn, api: Api) -> Response:
    requests = await api.get(person, "invitations", f"{_base(person.sub)}/contact-requests")
    sent = await api.get(person, "invitations", f"{_base(person.sub)}/invitations", limit=100)
    return render(
        request, "agent/clients.html", contact_requests=requests["items"], invitations=sent["items"]
    )


@router.post("/agent/invitations/{invitation_id}/resend")
async def resend(invitation_id: str, form: Posted) -> Response:
    """Cancel one client's invitation sent to a wrong address and send it to the right one."""
    return await form.send(
        "invitations",
        f"/api/v1/invitations/{invitation_id}/resend",
        {"email": form.text("email")},
        to="/agent/clients",
        done="resent",
        refused="resend_refused",
    )


@router.post("/agent/clients/{transaction_id}")
async def supply_contact(transaction_id: str, form: Posted) -> Response:
    client: dict[str, Any] = {
        "name": form.text("name"),
        "email": form.text("email") or None,
        "phone": form.text("phone") or None,
    }
    if form.fields.get("client", "").isdigit():
        client["client"] = int(form.fields["client"])
    if not client["email"] and not client["phone"]:
        return back(form.request, "/agent/clients", "contact_missing", ApiProblem(422, ""))
    return await form.send(
        "invitations",
        f"/api/v1/transactions/{transaction_id}/clients",
        {"clients": [client]},
        to="/agent/clients",
        done="contact_sent" if client["email"] else "phone_task",
        refused="contact_refused",
    )


@router.post("/agent/codes")
async def generate_code(form: Posted) -> Response:
    body: dict[str, Any] = {
        "client_email": form.text("client_email"),
        "street": form.text("street"),
        "postcode": form.text("postcode"),
    }
    if form.fields.get("client", "").isdigit():
        body["client"] = int(form.fields["client"])
    return await form.send(
        "invitations",
        f"{_base(form.person.sub)}/codes",
        body,
        to="/agent/clients",
        done="code_sent",
        refused="code_refused",
        correctable=(404,),  # no closing of yours at that address: a typo to correct
    )


@router.get("/agent/reviews", response_class=HTMLResponse)
async def reviews(request: Request, person: SignedIn, api: Api) -> Response:
    found = await api.get(person, "reviews", f"{_base(person.sub)}/reviews", limit=500)
    return render(
        request, "agent/reviews.html", reviews=found["reviews"], under_review=found["under_review"]
    )


@router.get("/reviews/{review_id}", response_class=HTMLResponse)
async def review(review_id: str, request: Request, person: SignedIn, api: Api) -> Response:
    """One review: an agent's own (the reviews service answers 404 for anyone else's), or any
    review for a moderator, who may withdraw it."""
    found = await api.get(person, "reviews", f"/api/v1/reviews/{review_id}")
    dispute = await api.find(person, "reviews", f"/api/v1/reviews/{review_id}/dispute")
    return render(request, "review.html", review=found, dispute=dispute)


@router.post("/agent/reviews/{review_id}/dispute")
async def dispute(review_id: str, form: Posted) -> Response:
    return await form.send(
        "reviews",
        f"/api/v1/reviews/{review_id}/dispute",
        {"reason": form.text("reason")},
        to=f"/reviews/{review_id}",
        done="disputed",
        refused="dispute_refused",
    )


@router.post("/agent/reviews/{review_id}/response")
async def respond(review_id: str, form: Posted) -> Response:
    return await form.send(
        "reviews",
        f"/api/v1/reviews/{review_id}/response",
        {"text": form.fields.get("text", "")},
        to=f"/reviews/{review_id}",
        done="response_published",
        refused="response_refused",
    )


@router.get("/agent/participation", response_class=HTMLResponse)
async def participation(request: Request, person: SignedIn, api: Api) -> Response:
    rating = await api.find(person, "scoring", f"{_base(person.sub)}/rating")
    visibility = rating["visibility"] if rating else None
    return render(
        request,
        "agent/participation.html",
        modes=MODES,
        current=MODE_OF_VISIBILITY.get(visibility or ""),
    )


@router.post("/agent/participation")
async def change_participation(form: Posted) -> Response:
    return await form.send(
        "invitations",
        f"{_base(form.person.sub)}/participation",
        {"mode": form.fields.get("mode", "")},
        method="PUT",
        to="/agent/participation",
        done=f"mode_{form.fields.get('mode')}",
        refused="participation_refused",
    )


@router.get("/agent/leads", response_class=HTMLResponse)
async def leads(request: Request, person: SignedIn, api: Api) -> Response:
    found = await api.get(person, "removals", "/api/v1/leads", status="open")
    removals = await api.get(person, "removals", "/api/v1/removals")
    pending = {r["lead_id"] for r in removals["items"] if r["status"] == "pending"}
    return render(
        request,
        "agent/leads.html",
        leads=found["items"],
        removals=removals["items"],
        pending=pending,
    )


@router.get("/agent/leads/{lead_id}/removal", response_class=HTMLResponse)
async def removal_form(lead_id: str, request: Request, person: SignedIn, api: Api) -> Response:
    return await _removal_page(request, person, api, lead_id)


async def _removal_page(
    request: Request,
    person: Person,
    api: Backends,
    lead_id: str,
    posted: dict[str, str] | None = None,
    problem: ApiProblem | None = None,
) -> Response:
    """The form, again with what was typed and the service's reason when it was refused."""
    found = await api.get(person, "removals", "/api/v1/leads", status="open")
    lead = next((item for item in found["items"] if item["lead_id"] == lead_id), None)
    if lead is None:
        return refused(request, ApiProblem(404, ""))
    return render(
        request,
        "agent/removal.html",
        422 if problem else 200,
        lead=lead,
        reasons=REASONS,
        handoff_reasons=HANDOFF_REASONS,
        posted=posted or {},
        error=problem.detail if problem else None,
    )


@router.get("/agent/removal-reasons/{reason}", response_class=HTMLResponse)
async def survey_preview(reason: str, request: Request, person: SignedIn) -> Response:
    if reason not in REASONS:
        return refused(request, ApiProblem(404, ""))
    return render(request, "agent/survey_preview.html", reason=reason)


@router.post("/agent/removals")
async def request_removal(request: Request, person: SignedIn, api: Api) -> Response:
    """The removal form (multipart: it may carry a proof document). A file is uploaded to the
    removals service first, and the request cites it; the service tells its type and refuses
    what it does not accept, shown on the form again."""
    lead_id = request.query_params.get("lead_id", "")
    try:
        form, upload = await checked_upload(request, "proof_file")
    except UploadTooLarge:
        return await _removal_page(
            request,
            person,
            api,
            lead_id,
            problem=ApiProblem(413, f"the form is larger than {MAX_UPLOAD_FORM_BYTES} bytes"),
        )
    lead_id = form.get("lead_id", lead_id)
    body: dict[str, Any] = {
        "lead_id": lead_id,
        "reason": form.get("reason", ""),
        "notes": form.get("notes", "").strip(),
    }
    if form.get("client_ever_responded") in ("yes", "no"):
        body["client_ever_responded"] = form["client_ever_responded"] == "yes"
    proof: dict[str, Any] = {"reference": form.get("proof_reference", "").strip() or None}
    try:
        if upload is not None:
            uploaded = await api.raw(
                person,
                "removals",
                "POST",
                f"/api/v1/leads/{lead_id}/proof-documents",
                content=upload.content,
                params={"filename": upload.filename} if upload.filename else None,
            )
            proof["document_id"] = uploaded.json()["document_id"]
        if any(proof.values()):
            body["proof"] = proof
        created = await api.post(person, "removals", "/api/v1/removals", body)
    except ApiProblem as problem:
        if problem.status not in (409, 413, 415, 422):
            return refused(request, problem)
        return await _removal_page(request, person, api, lead_id, form, problem)
    return back(request, "/agent/leads", f"removal_{created['status']}")


@router.get("/proof-documents/{document_id}")
async def proof_document(
    document_id: str, request: Request, person: SignedIn, api: Api
) -> Response:
    """A proof document, for the coordinator who verifies it or the agent who uploaded it (the
    removals service decides who may), passed on as a download."""
    try:
        found = await api.raw(person, "removals", "GET", f"/api/v1/proof-documents/{document_id}")
    except ApiProblem as problem:
        if problem.status == 410:
            return render(request, "problem.html", 410, problem="erased", detail=problem.detail)
        return refused(request, problem)
    return Response(
        found.content,
        media_type=found.headers.get("content-type", "application/octet-stream"),
        headers={
            name: found.headers[name]
            for name in ("content-disposition", "content-security-policy")
            if name in found.headers
        }
        | {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"},
    )
