"""HTTP routes: the public search, agent profiles, embeddable badges and Atom feeds. Pages are
rendered on the server from templates (no JavaScript); every value is escaped by them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.responses import HTMLResponse

from services.directory.domain.listing import (
    BadCursor,
    SortKey,
    normalized_name_query,
    usable_id,
)
from services.directory.domain.profile import (
    CATEGORY_LABELS,
    STATUS_LABELS,
    PublicAgent,
    badge_text,
    etag_matches,
    etag_of,
    json_ld,
    stars_label,
    stars_text,
)
from services.directory.repository import DirectoryRepository
from services.directory.settings import DirectorySettings
from shared.runtime import ServiceRuntime, runtime_of
from shared.templating import shipped_templates

pages = APIRouter(tags=["directory"])

Runtime = Annotated[ServiceRuntime, Depends(runtime_of)]

TEMPLATES = shipped_templates(Path(__file__).parent / "templates")


def _date(value: datetime | None) -> str:
    return "" if value is None else f"{value.day} {value:%b %Y}"


TEMPLATES.filters["date"] = _date
TEMPLATES.globals.update(
    stars_text=stars_text,
    stars_label=stars_label,
    status_labels=STATUS_LABELS,
    categories=CATEGORY_LABELS,
)


def _settings(runtime: ServiceRuntime) -> DirectorySettings:
    settings = runtime.settings
    if not isinstance(settings, DirectorySettings):
        raise TypeError(f"the directory runs with DirectorySettings, not {type(settings)}")
    return settings


def _page(template: str, status: int = 200, **context: object) -> HTMLResponse:
    html = TEMPLATES.get_template(template).render(**context)
    # pages change within seconds of an event upstream: caches must ask every time
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-cache"})


def _cacheable(
    body: bytes, media_type: str, max_age: int, if_none_match: str | None, status: int = 200
) -> Response:
    """A response a CDN may keep for `max_age` seconds and then revalidate with its ETag."""
    etag = etag_of(body)
    headers = {
        "Cache-Control": f"public, max-age={max_age}, s-maxage={max_age}",
        "ETag": etag,
        "Vary": "Accept-Encoding",
    }
    if status == 200 and etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, status_code=status, media_type=media_type, headers=headers)


def _not_shown(base_url: str) -> HTMLResponse:
    return _page("not_public.html", 404, base_url=base_url)


@pages.get("/", response_class=HTMLResponse, summary="Search public agents")
async def search(
    runtime: Runtime,
    office: Annotated[str | None, Query(max_length=64, description="Office id.")] = None,
    name: Annotated[str | None, Query(max_length=100, description="Start of a name.")] = None,
    after: Annotated[str | None, Query(max_length=600, description="Page cursor.")] = None,
) -> HTMLResponse:
    """Public agents of an office or by name, by status, stars, positive reviews in three
    months, then name; a page at a time with a cursor that stays valid as ratings change."""
    settings = _settings(runtime)
    office = usable_id(office)
    name_query = normalized_name_query(name)
    try:
        cursor = SortKey.decode(after) if after else None
    except BadCursor:
        return _page(
            "search.html",
            400,
            agents=[],
            office=office,
            name=name or "",
            next_url=None,
            first_url=None,
            error="That page link is not valid any more. Start again from the first page.",
        )
    async with runtime.unit_of_work() as uow:
        repo = DirectoryRepository(uow.conn)
        found = await repo.search(
            office_id=office, name=name_query, after=cursor, limit=settings.page_size + 1
        )
    agents, more = found[: settings.page_size], len(found) > settings.page_size
    criteria = {k: v for k, v in (("office", office), ("name", name_query)) if v}
    next_url = None
    if more:
        last = agents[-1]
        key = SortKey.of(
            last.status, last.stars, last.positive_reviews_3m, last.name, last.agent_id
        )
        next_url = "/?" + urlencode({**criteria, "after": key.encode()})
    first_url = ("/?" + urlencode(criteria)) if cursor is not None else None
    return _page(
        "search.html",
        agents=agents,
        office=office,
        name=name or "",
        next_url=next_url,
        first_url=first_url,
        error=None,
    )


async def _shown(runtime: ServiceRuntime, agent_id: str) -> tuple[PublicAgent | None, int]:
    async with runtime.unit_of_work() as uow:
        repo = DirectoryRepository(uow.conn)
        agent = await repo.shown_agent(agent_id)
        count = await repo.review_count(agent_id) if agent else 0
    return agent, count


@pages.get("/agents/{agent_id}", response_class=HTMLResponse, summary="An agent's profile")
async def profile(agent_id: str, runtime: Runtime) -> HTMLResponse:
    """Stars, status and since when, category averages and every public review, with the
    schema.org JSON-LD of the same. A 404 without detail when the agent is not public."""
    base_url = _settings(runtime).base_url
    async with runtime.unit_of_work() as uow:
        repo = DirectoryRepository(uow.conn)
        agent = await repo.shown_agent(agent_id)
        reviews = await repo.reviews_of(agent_id) if agent else []
    if agent is None:
        return _not_shown(base_url)
    url = f"{base_url}/agents/{agent.agent_id}"
    return _page(
        "profile.html",
        agent=agent,
        reviews=reviews,
        url=url,
        base_url=base_url,
        json_ld=json_ld(agent, reviews, url),
        snippet=TEMPLATES.get_template("badge_snippet.html").render(
            url=url, base_url=base_url, agent=agent
        ),
    )


@pages.get("/agents/{agent_id}/badge.svg", summary="An agent's embeddable badge")
async def badge(
    agent_id: str,
    runtime: Runtime,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """Stars, status and public reviews; a neutral "not public" badge otherwise (same URL, so
    a page embedding it never breaks). Cacheable by CDNs; revalidated by ETag."""
    agent, count = await _shown(runtime, agent_id)
    label, message = badge_text(agent, count)
    svg = TEMPLATES.get_template("badge.svg").render(
        label=label,
        message=message,
        status=agent.status.value if agent else "hidden",
        label_width=_text_width(label),
        message_width=_text_width(message),
    )
    return _cacheable(
        svg.encode(), "image/svg+xml", _settings(runtime).badge_max_age_seconds, if_none_match
    )


@pages.get("/agents/{agent_id}/badge.html", summary="HTML to embed an agent's badge")
async def badge_snippet(agent_id: str, runtime: Runtime) -> Response:
    base_url = _settings(runtime).base_url
    agent, _ = await _shown(runtime, agent_id)
    html = TEMPLATES.get_template("badge_snippet.html").render(
        url=f"{base_url}/agents/{agent_id}", base_url=base_url, agent=agent
    )
    return Response(
        html + "\n",
        media_type="text/html; charset=utf-8",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@pages.get("/agents/{agent_id}/reviews.atom", summary="An agent's public reviews as Atom")
async def feed(
    agent_id: str,
    runtime: Runtime,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    settings = _settings(runtime)
    async with runtime.unit_of_work() as uow:
        repo = DirectoryRepository(uow.conn)
        agent = await repo.shown_agent(agent_id)
        reviews = await repo.reviews_of(agent_id) if agent else []
    if agent is None:
        return _not_shown(settings.base_url)
    url = f"{settings.base_url}/agents/{agent.agent_id}"
    updated = max([r.updated_at for r in reviews] + [agent.as_of])
    atom = TEMPLATES.get_template("reviews.atom").render(
        agent=agent, reviews=reviews, url=url, updated=updated
    )
    return _cacheable(
        atom.encode(),
        "application/atom+xml; charset=utf-8",
        settings.badge_max_age_seconds,
        if_none_match,
    )


@pages.get("/how-ratings-work", response_class=HTMLResponse, summary="How ratings work")
async def how_ratings_work() -> HTMLResponse:
    return _page("how_ratings_work.html")


def _text_width(text: str) -> int:
    """Approximate width in pixels of `text` at the badge's 11px sans-serif (as shields.io
    does): wide glyphs (stars, capitals) count more."""
    width = 0.0
    for char in text:
        if char in "★☆":
            width += 11
        elif char.isupper() or char in "mwMW":
            width += 8
        elif char in "il.·' ":
            width += 4
        else:
            width += 6.5
    return int(width) + 12
