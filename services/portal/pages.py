"""What every page shares: the templates (every word on a page is in them), the signed-in
person, and how a service's refusal is shown."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.portal.backends import ApiProblem, Backends, Person, Service
from services.portal.session import (
    checked_form,
    csrf_token,
    flash,
    person_of,
    signed_in_person,
    take_flash,
)
from services.portal.settings import PortalSettings
from shared.clock import Clock
from shared.templating import shipped_templates

ROLES = ("agent", "moderator", "coordinator", "surveyor")
"""The people the portal serves (operations' erasures stay an API call)."""

HOMES = {
    "agent": "/agent",
    "moderator": "/moderation",
    "coordinator": "/coordination",
    "surveyor": "/phone-tasks",
}

TEMPLATES = shipped_templates(Path(__file__).parent / "templates")


def _instant(value: datetime | str | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _date(value: datetime | str | None) -> str:
    when = _instant(value)
    return "" if when is None else f"{when.day} {when:%b %Y}"


def _datetime(value: datetime | str | None) -> str:
    when = _instant(value)
    return "" if when is None else f"{when.day} {when:%b %Y, %H:%M} UTC"


def _days_until(value: datetime | str | None, now: datetime) -> int | None:
    """Whole days left (negative once past), for countdowns."""
    when = _instant(value)
    return None if when is None else (when - now).days


def _file_kind(media_type: str) -> str:
    return {"application/pdf": "PDF", "image/png": "PNG image", "image/jpeg": "JPEG image"}.get(
        media_type, media_type
    )


TEMPLATES.filters.update(date=_date, datetime=_datetime)
TEMPLATES.globals.update(file_kind=_file_kind)
TEMPLATES.globals.update(days_until=_days_until, homes=HOMES)


def home_of(role: str) -> str:
    return HOMES.get(role, "/sign-in")


def settings_of(request: Request) -> PortalSettings:
    settings: PortalSettings = request.app.state.settings
    return settings


def backends_of(request: Request) -> Backends:
    backends: Backends = request.app.state.backends
    return backends


def now_of(request: Request) -> datetime:
    clock: Clock = request.app.state.clock
    return clock.now().astimezone(UTC)


SignedIn = Annotated[Person, Depends(person_of)]
Api = Annotated[Backends, Depends(backends_of)]


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = TEMPLATES.get_template(template).render(
        person=signed_in_person(request),
        csrf=csrf_token(request),
        flash=take_flash(request),
        now=now_of(request),
        path=request.url.path,
        **context,
    )
    return HTMLResponse(
        html,
        status_code=status,
        # pages show one person's data: never cached, never framed, no referrer to others
        headers={
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
            "frame-ancestors 'none'; form-action 'self'",
            "Referrer-Policy": "same-origin",
        },
    )


def refused(request: Request, problem: ApiProblem) -> HTMLResponse:
    """A service said no to this person (403), or has nothing for them (404)."""
    if problem.status == 403:
        return render(request, "problem.html", 403, problem="forbidden", detail=problem.detail)
    if problem.status == 404:
        return render(request, "problem.html", 404, problem="not_found", detail=problem.detail)
    return render(request, "problem.html", 502, problem="service_error", detail=problem.detail)


def back(request: Request, to: str, key: str, problem: ApiProblem | None = None) -> Response:
    """After a form: back to `to` with what happened (Post/Redirect/Get). A refusal the person
    can act on (409, 410, 422: their input or the item's state) is shown there; any other
    refusal is a page of its own."""
    if problem is not None and problem.status not in (409, 410, 422):
        return refused(request, problem)
    flash(request, key, problem.detail if problem else None, error=problem is not None)
    return RedirectResponse(to, status_code=303)


class Form:
    """A form the signed-in person posted (its CSRF token checked), and its answer: the owning
    service is called with what it carries, then the person goes back to a page (`back`)."""

    def __init__(
        self, request: Request, person: Person, api: Backends, fields: dict[str, str]
    ) -> None:
        self.request, self.person, self.api, self.fields = request, person, api, fields

    def text(self, name: str) -> str:
        """A field as typed, without surrounding blanks ("" when absent)."""
        return self.fields.get(name, "").strip()

    async def send(
        self,
        service: Service,
        path: str,
        body: dict[str, Any],
        *,
        to: str,
        done: str,
        refused: str,
        method: str = "POST",
        correctable: Collection[int] = (),
        refused_to: str | None = None,
    ) -> Response:
        """Send `body` to the service, then back to `to` with the message `done`, or with
        `refused` and the service's words to `refused_to` (default `to`). `correctable`: other
        statuses that mean the person's input is wrong here (a 404 for an address with no
        closing), shown on the form rather than as a page of their own."""
        try:
            await self.api.call(self.person, service, method, path, json=body)
        except ApiProblem as problem:
            if problem.status in correctable:
                problem = ApiProblem(422, problem.detail, problem.code)
            return back(self.request, refused_to or to, refused, problem)
        return back(self.request, to, done)


async def posted_form(request: Request, person: SignedIn, api: Api) -> Form:
    return Form(request, person, api, await checked_form(request))


Posted = Annotated[Form, Depends(posted_form)]
"""A route's posted form (sign-in, then CSRF, checked before the route runs)."""
