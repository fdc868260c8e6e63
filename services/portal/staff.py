"""The staff consoles: the moderator's queue, the coordinator's removal approvals and the phone
surveyor's tasks. Each page calls the owning service with the staff member's own token, so a
moderator opening the coordinator's queue is refused by the removals service itself."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.portal.backends import ApiProblem
from services.portal.pages import Api, Posted, SignedIn, back, render
from services.portal.session import checked_form

router = APIRouter(tags=["staff"])

CATEGORIES = ("communication", "friendliness", "professionalism", "area_knowledge", "overall")
HANDOFF_REASONS = ("active_handoff", "bad_fit")
REVIEW_DONE = {"approve": "review_approved", "reject": "review_rejected"}
REMOVAL_DONE = {"approve": "removal_approved", "deny": "removal_denied"}
"""The message (templates/_flash.html) after each decision the services accepted."""


@router.get("/moderation", response_class=HTMLResponse)
async def moderation_queue(request: Request, person: SignedIn, api: Api) -> Response:
    queue = await api.get(person, "reviews", "/api/v1/moderation/queue", limit=100)
    return render(request, "staff/moderation.html", items=queue["items"])


@router.get("/moderation/disputes", response_class=HTMLResponse)
async def dispute_queue(request: Request, person: SignedIn, api: Api) -> Response:
    queue = await api.get(person, "reviews", "/api/v1/moderation/disputes", limit=100)
    return render(request, "staff/disputes.html", items=queue["items"])


@router.post("/moderation/disputes/{review_id}/decision")
async def answer_dispute(review_id: str, form: Posted) -> Response:
    decision = form.fields.get("decision", "")
    return await form.send(
        "reviews",
        f"/api/v1/moderation/disputes/{review_id}/decision",
        {"decision": decision, "reason": form.text("reason")},
        to="/moderation/disputes",
        done=f"dispute_{decision}",
        refused="dispute_answer_refused",
    )


@router.get("/moderation/find")
async def find_review(request: Request, person: SignedIn) -> Response:
    review_id = request.query_params.get("review_id", "").strip()[:64]
    if not review_id:
        return RedirectResponse("/moderation", status_code=303)
    return RedirectResponse(f"/reviews/{review_id}", status_code=303)


@router.post("/moderation/{review_id}/decision")
async def decide(review_id: str, form: Posted) -> Response:
    decision = form.fields.get("decision", "")
    return await form.send(
        "reviews",
        f"/api/v1/moderation/{review_id}/decision",
        {"decision": decision, "reason": form.text("reason")},
        to="/moderation",
        done=REVIEW_DONE.get(decision, ""),
        refused="decision_refused",
    )


@router.post("/moderation/{review_id}/withdrawal")
async def withdraw(review_id: str, form: Posted) -> Response:
    return await form.send(
        "reviews",
        f"/api/v1/reviews/{review_id}/withdrawal",
        {"reason": form.text("reason")},
        to=f"/reviews/{review_id}",
        done="review_withdrawn",
        refused="withdrawal_refused",
    )


@router.get("/coordination", response_class=HTMLResponse)
async def coordination(request: Request, person: SignedIn, api: Api) -> Response:
    pending = await api.get(person, "removals", "/api/v1/removals", status="pending")
    return render(
        request,
        "staff/coordination.html",
        items=pending["items"],
        handoff_reasons=HANDOFF_REASONS,
    )


@router.post("/coordination/{removal_id}/decision")
async def decide_removal(removal_id: str, form: Posted) -> Response:
    decision = form.fields.get("decision", "")
    body: dict[str, Any] = {"decision": decision, "note": form.text("note")}
    handed_to = form.text("handed_to_agent_id")
    if handed_to and decision == "approve":
        # the removals service has no roster (design.md 1.6): scoring's knows who is on it
        rated = await form.api.find(form.person, "scoring", f"/api/v1/agents/{handed_to}/rating")
        if rated is None:
            return back(
                form.request, "/coordination", "handoff_unknown_agent", ApiProblem(422, handed_to)
            )
        body["handed_to_agent_id"] = handed_to
    return await form.send(
        "removals",
        f"/api/v1/removals/{removal_id}/decision",
        body,
        to="/coordination",
        done=REMOVAL_DONE.get(decision, ""),
        refused="removal_decision_refused",
    )


@router.get("/phone-tasks", response_class=HTMLResponse)
async def phone_tasks(request: Request, person: SignedIn, api: Api) -> Response:
    tasks = await api.get(person, "invitations", "/api/v1/phone-tasks", limit=200)
    return render(request, "staff/phone_tasks.html", tasks=tasks["items"])


@router.post("/phone-tasks/{invitation_id}/claim")
async def claim(invitation_id: str, request: Request, person: SignedIn, api: Api) -> Response:
    await checked_form(request)
    try:
        await api.post(person, "invitations", f"/api/v1/phone-tasks/{invitation_id}/claim", {})
    except ApiProblem as problem:
        return back(request, "/phone-tasks", "claim_refused", problem)
    return RedirectResponse(f"/phone-tasks/{invitation_id}", status_code=303)


@router.get("/phone-tasks/{invitation_id}", response_class=HTMLResponse)
async def claimed_task(
    invitation_id: str, request: Request, person: SignedIn, api: Api
) -> Response:
    """A task this surveyor claimed: the client's name and phone, and the answers form.
    Claiming again is how the invitations service shows them (it is a no-op for the claimer);
    a task not claimed yet is not claimed by opening this page."""
    tasks = await api.get(person, "invitations", "/api/v1/phone-tasks", limit=500)
    task = next((t for t in tasks["items"] if t["invitation_id"] == invitation_id), None)
    if task is None or task["claimed_by"] != person.sub:
        return render(request, "problem.html", 409, problem="claim_first", detail="")
    contact = await api.post(
        person, "invitations", f"/api/v1/phone-tasks/{invitation_id}/claim", {}
    )
    return render(
        request, "staff/phone_task.html", task=task, contact=contact, categories=CATEGORIES
    )


@router.post("/phone-tasks/{invitation_id}/answers")
async def enter_answers(
    invitation_id: str, request: Request, person: SignedIn, api: Api
) -> Response:
    form = await checked_form(request)
    to = f"/phone-tasks/{invitation_id}"
    if not all(form.get(c, "").isdigit() for c in CATEGORIES):
        return back(request, to, "answers_incomplete", ApiProblem(422, ""))
    body = {
        "scores": {c: int(form[c]) for c in CATEGORIES},
        "comment": form.get("comment", "").strip(),
        "display_name": form.get("display_name", "").strip() or None,
    }
    try:
        await api.post(person, "reviews", f"/api/v1/phone-surveys/{invitation_id}/answers", body)
    except ApiProblem as problem:
        return back(request, to, "answers_refused", problem)
    try:
        await api.post(person, "invitations", f"/api/v1/phone-tasks/{invitation_id}/done", {})
    except ApiProblem as problem:
        if problem.status != 409:  # 409: the answers' event closed it first
            raise
    return back(request, "/phone-tasks", "answers_entered")


@router.post("/phone-tasks/{invitation_id}/done")
async def close_task(invitation_id: str, form: Posted) -> Response:
    """Close without answers (the client declined or never picked up)."""
    return await form.send(
        "invitations",
        f"/api/v1/phone-tasks/{invitation_id}/done",
        {},
        to="/phone-tasks",
        done="task_closed",
        refused="close_refused",
        refused_to=f"/phone-tasks/{invitation_id}",
    )
