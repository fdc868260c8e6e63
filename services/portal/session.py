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
from dataclasses import dataclass
from urllib.parse import parse_qs

from fastapi import Request
from starlette.datastructures import UploadFile

from services.portal.backends import Person

MAX_FORM_BYTES = 64 * 1024
MAX_UPLOAD_FORM_BYTES = 12 * 1024 * 1024
"""A form with a file: room for the removals service's largest proof (PROOF_MAX_BYTES, 5 MiB by
default), which decides; the portal only bounds what it reads."""


class SignInNeeded(Exception):
    """No one is signed in (or the sign-in expired): go to the sign-in page."""


class CsrfRefused(Exception):
    """A form arrived without the session's token: not sent from the portal's own page."""


class UploadTooLarge(Exception):
    """A form with a file larger than the portal reads (or of no declared length)."""


@dataclass(frozen=True)
class Upload:
    """A file a form carried: its bytes and the name the browser gave (the type is the
    service's to tell, from the bytes)."""

    filename: str | None
    content: bytes


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


async def checked_upload(request: Request, file_field: str) -> tuple[dict[str, str], Upload | None]:
    """A multipart form's text fields and its one file (None when none was chosen), after the
    CSRF check. The declared length is checked before anything is read."""
    declared = request.headers.get("content-length", "")
    if not declared.isdigit() or int(declared) > MAX_UPLOAD_FORM_BYTES:
        raise UploadTooLarge
    async with request.form(max_files=1, max_fields=50, max_part_size=MAX_FORM_BYTES) as form:
        fields = {name: value for name, value in form.items() if isinstance(value, str)}
        chosen = form.get(file_field)
        upload = None
        if isinstance(chosen, UploadFile) and (content := await chosen.read()):
            upload = Upload(chosen.filename, content)
    expected = request.session.get("csrf")
    given = fields.pop("csrf", "")
    if not isinstance(expected, str) or not hmac.compare_digest(expected, given):
        raise CsrfRefused
    return fields, upload


def flash(request: Request, key: str, detail: str | None = None, *, error: bool = False) -> None:
    """A message for the next page shown (after a redirect): `key` names its text in
    templates/_flash.html; `detail` is a service's own words (why it refused)."""
    request.session["flash"] = {"key": key, "detail": detail, "error": error}


def take_flash(request: Request) -> dict[str, object] | None:
    message = request.session.pop("flash", None)
    return message if isinstance(message, dict) else None
