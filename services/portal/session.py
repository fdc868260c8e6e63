"""The signed-in person, their CSRF token and one-off messages, kept in the session cookie.

The cookie is Starlette's SessionMiddleware: signed with SESSION_SECRET (itsdangerous),
HTTP-only, SameSite=Lax, Secure outside local development. It holds the person's id, role and
name and the CSRF token, never client data.

CSRF: every form carries the session's token in a hidden field, and every POST is refused
unless it matches (the synchronizer-token pattern). The token lives in the signed session, so
it needs no store and no package beyond the one that already signs the cookie; a package such
as starlette-csrf checks a header that only a script can set, and the portal's forms must work
without JavaScript.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import parse_qs

from fastapi import Request

from services.portal.backends import Person

MAX_FORM_BYTES = 64 * 1024


class SignInNeeded(Exception):
    """No one is signed in (or the sign-in expired): go to the sign-in page."""


class CsrfRefused(Exception):
    """A form arrived without the session's token: not sent from the portal's own page."""


def person_of(request: Request) -> Person:
    saved = request.session.get("person")
    if not isinstance(saved, dict):
        raise SignInNeeded
    return Person(sub=saved["sub"], role=saved["role"], name=saved.get("name") or saved["sub"])


def signed_in_person(request: Request) -> Person | None:
    try:
        return person_of(request)
    except SignInNeeded:
        return None


def sign_in(request: Request, person: Person) -> None:
    """A fresh session (what came before, e.g. an OIDC state, is dropped) with a new token."""
    request.session.clear()
    request.session["person"] = {"sub": person.sub, "role": person.role, "name": person.name}
    request.session["csrf"] = secrets.token_urlsafe(32)


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


async def checked_form(request: Request) -> dict[str, str]:
    """The posted form's fields (first value of each), after the CSRF check."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise CsrfRefused
    fields = {
        name: values[0]
        for name, values in parse_qs(
            body.decode("utf-8", "replace"), keep_blank_values=True
        ).items()
    }
    expected = request.session.get("csrf")
    given = fields.pop("csrf", "")
    if not isinstance(expected, str) or not hmac.compare_digest(expected, given):
        raise CsrfRefused
    return fields


def flash(request: Request, key: str, detail: str | None = None, *, error: bool = False) -> None:
    """A message for the next page shown (after a redirect): `key` names its text in
    templates/_flash.html; `detail` is a service's own words (why it refused)."""
    request.session["flash"] = {"key": key, "detail": detail, "error": error}


def take_flash(request: Request) -> dict[str, object] | None:
    message = request.session.pop("flash", None)
    return message if isinstance(message, dict) else None
