"""The directory against real Kafka and PostgreSQL: events on the public topics become the
pages, badge and feed; what stops being public disappears from all of them within seconds."""

from __future__ import annotations

import random
from collections.abc import Iterable
from urllib.parse import quote
from xml.etree import ElementTree

import pytest

from shared.contracts.ratings import Status, Visibility
from tests.integration.directory.conftest import (
    Directory,
    public_agent,
    public_review,
    publish_rating,
    publish_review,
    rating,
    roster,
    unique,
    withdraw_review,
)
from tests.support.kafka import EventPublisher

pytestmark = pytest.mark.integration
ATOM = "{http://www.w3.org/2005/Atom}"


async def test_a_review_withdrawn_upstream_leaves_profile_badge_and_feed_within_seconds(
    directory: Directory, publish_event: EventPublisher
) -> None:
    agent_id = unique("A")
    await public_agent(publish_event, directory, agent_id, name="Dana Whitfield")
    kept = public_review(agent_id, comment="Calm and thorough.", display_name="Lee")
    gone = public_review(agent_id, comment="Found us the house in a week.", display_name="Sam")
    await publish_review(publish_event, kept)
    await publish_review(publish_event, gone)
    profile = await directory.until(
        f"/agents/{agent_id}", lambda r: "Found us the house" in r.text and "Calm" in r.text
    )
    assert "Dana Whitfield" in profile.text and "Silver since" in profile.text
    badge = await directory.client.get(f"/agents/{agent_id}/badge.svg")
    assert "2 reviews" in badge.text and "Silver" in badge.text
    feed = await directory.client.get(f"/agents/{agent_id}/reviews.atom")
    assert "Found us the house" in feed.text

    await withdraw_review(publish_event, agent_id, gone.review_id, reason="moderator: not a client")

    profile = await directory.until(
        f"/agents/{agent_id}", lambda r: "Found us the house" not in r.text, timeout=5
    )
    assert "Calm and thorough." in profile.text
    badge = await directory.client.get(f"/agents/{agent_id}/badge.svg")
    assert "1 review" in badge.text and "2 reviews" not in badge.text
    feed = await directory.client.get(f"/agents/{agent_id}/reviews.atom")
    assert "Found us the house" not in feed.text and "Calm and thorough." in feed.text


@pytest.mark.parametrize(
    ("visibility", "active"),
    [(Visibility.HIDDEN, True), (Visibility.OPTED_OUT, True), (Visibility.PUBLIC, False)],
    ids=["hidden", "opted-out", "inactive"],
)
async def test_hidden_opted_out_and_inactive_agents_appear_nowhere(
    directory: Directory, publish_event: EventPublisher, visibility: Visibility, active: bool
) -> None:
    office = unique("O")
    agent_id, witness = unique("A"), unique("A")
    await public_agent(publish_event, directory, witness, name="Witness Agent", office_id=office)
    await public_agent(publish_event, directory, agent_id, name="Ruled Out", office_id=office)
    review = public_review(agent_id, comment="Secret praise")
    await publish_review(publish_event, review)
    await directory.until(f"/agents/{agent_id}", lambda r: "Secret praise" in r.text)

    if active:
        await publish_rating(publish_event, rating(agent_id, visibility=visibility))
    else:
        await roster(publish_event, agent_id, name="Ruled Out", office_id=office, active=False)

    await directory.until(f"/agents/{agent_id}", lambda r: r.status_code == 404, timeout=5)
    search = await directory.client.get("/", params={"office": office})
    assert "Witness Agent" in search.text and "Ruled Out" not in search.text
    by_name = await directory.client.get("/", params={"name": "ruled"})
    assert "Ruled Out" not in by_name.text
    badge = await directory.client.get(f"/agents/{agent_id}/badge.svg")
    assert badge.status_code == 200 and "not public" in badge.text
    assert "review" not in badge.text and "★" not in badge.text
    feed = await directory.client.get(f"/agents/{agent_id}/reviews.atom")
    assert feed.status_code == 404 and "Secret praise" not in feed.text


async def test_a_republished_review_replaces_the_copy_shown(
    directory: Directory, publish_event: EventPublisher
) -> None:
    agent_id = unique("A")
    await public_agent(publish_event, directory, agent_id)
    first = public_review(agent_id, comment="Slow to call back.", display_name="Kim")
    await publish_review(publish_event, first)
    await directory.until(f"/agents/{agent_id}", lambda r: "Slow to call back." in r.text)

    erased = first.model_copy(
        update={
            "comment": "",
            "display_name": None,
            "agent_response": "Sorry, we fixed our phones.",
        }
    )
    await publish_review(publish_event, erased)

    profile = await directory.until(
        f"/agents/{agent_id}", lambda r: "Sorry, we fixed our phones." in r.text
    )
    assert "Slow to call back." not in profile.text and "Kim" not in profile.text
    assert profile.text.count(f'id="review-{first.review_id}"') == 1


async def test_an_older_rating_delivered_late_never_overwrites_a_newer_one(
    directory: Directory, publish_event: EventPublisher
) -> None:
    agent_id = unique("A")
    await public_agent(publish_event, directory, agent_id)
    newer = rating(agent_id, visibility=Visibility.HIDDEN)
    newer = newer.model_copy(update={"as_of": newer.as_of.replace(year=2027)})
    await publish_rating(publish_event, newer)
    await directory.until(f"/agents/{agent_id}", lambda r: r.status_code == 404)
    await publish_rating(publish_event, rating(agent_id, status=Status.GOLD))
    marker = unique("A")  # a later event on another agent: once it shows, the stale one was read
    await public_agent(publish_event, directory, marker)
    assert (await directory.client.get(f"/agents/{agent_id}")).status_code == 404


async def test_search_orders_by_status_stars_positive_reviews_then_name_in_stable_pages(
    directory: Directory, publish_event: EventPublisher
) -> None:
    office = unique("O")
    agents = {
        "Zoe Gold": rating("A-template", status=Status.GOLD, stars=1, positive_3m=2),
        "Amy Silver": rating("A-template", status=Status.SILVER, stars=5, positive_3m=8),
        "Bob Silver": rating("A-template", status=Status.SILVER, stars=5, positive_3m=8),
        "Cy Silver": rating("A-template", status=Status.SILVER, stars=5, positive_3m=9),
        "Al None": rating("A-template", status=Status.NONE, stars=3, positive_3m=5),
        "Di None": rating("A-template", status=Status.NONE, stars=4, positive_3m=7),
        "Ed None": rating("A-template", status=Status.NONE, stars=0, positive_3m=0),
    }
    ids = {}
    for name, template in agents.items():
        ids[name] = agent_id = unique("A")
        await roster(publish_event, agent_id, name=name, office_id=office)
        await publish_rating(publish_event, template.model_copy(update={"agent_id": agent_id}))
    for agent_id in ids.values():
        await directory.until(f"/agents/{agent_id}", lambda r: r.status_code == 200)

    shown: list[str] = []
    page = await directory.client.get("/", params={"office": office})
    pages = 1
    while True:
        shown += [name for name in _in_page_order(page.text, agents)]
        next_link = _next_link(page.text)
        if next_link is None:
            break
        # an agent rises while the visitor reads page 1: the next page neither repeats nor skips
        if pages == 1:
            await publish_rating(
                publish_event,
                agents["Ed None"].model_copy(
                    update={
                        "agent_id": ids["Ed None"],
                        "stars": 1,
                        "as_of": agents["Ed None"].as_of.replace(hour=16),
                    }
                ),
            )
        page = await directory.client.get(next_link)
        pages += 1
    assert shown == [
        "Zoe Gold",
        "Cy Silver",
        "Amy Silver",
        "Bob Silver",
        "Di None",
        "Al None",
        "Ed None",
    ]
    assert pages == 3
    bad = await directory.client.get("/", params={"after": "not-a-cursor"})
    assert bad.status_code == 400 and "not valid" in bad.text


def _in_page_order(html: str, names: Iterable[str]) -> list[str]:
    found = [(html.index(f">{name}<"), name) for name in names if f">{name}<" in html]
    return [name for _, name in sorted(found)]


def _next_link(html: str) -> str | None:
    marker = 'rel="next"'
    if marker not in html:
        return None
    tag_start = html.rindex("<a ", 0, html.index(marker))
    href = html[tag_start:].split('href="', 1)[1].split('"', 1)[0]
    return href.replace("&amp;", "&")


async def test_badge_and_feed_carry_validators_a_cdn_can_use(
    directory: Directory, publish_event: EventPublisher
) -> None:
    agent_id = unique("A")
    await public_agent(publish_event, directory, agent_id, name="Cache Agent")
    review = public_review(agent_id, comment="Fast & fair <3")
    await publish_review(publish_event, review)
    await directory.until(f"/agents/{agent_id}", lambda r: "Fast &amp; fair" in r.text)

    badge = await directory.client.get(f"/agents/{agent_id}/badge.svg")
    assert badge.headers["content-type"] == "image/svg+xml"
    assert badge.headers["cache-control"] == "public, max-age=60, s-maxage=60"
    etag = badge.headers["etag"]
    again = await directory.client.get(
        f"/agents/{agent_id}/badge.svg", headers={"If-None-Match": etag}
    )
    assert again.status_code == 304 and again.content == b""

    feed = await directory.client.get(f"/agents/{agent_id}/reviews.atom")
    assert feed.headers["content-type"].startswith("application/atom+xml")
    root = ElementTree.fromstring(feed.content)  # noqa: S314 - our own feed, in a test
    entries = root.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}content") for e in entries] == ["Fast & fair <3"]
    assert (
        await directory.client.get(
            f"/agents/{agent_id}/reviews.atom", headers={"If-None-Match": feed.headers["etag"]}
        )
    ).status_code == 304

    snippet = await directory.client.get(f"/agents/{agent_id}/badge.html")
    assert f'src="http://directory.test/agents/{agent_id}/badge.svg"' in snippet.text

    # a change upstream changes the validator: the CDN's revalidation gets the new badge
    await withdraw_review(publish_event, agent_id, review.review_id)
    changed = await directory.until(
        f"/agents/{agent_id}/badge.svg", lambda r: "0 reviews" in r.text, timeout=5
    )
    assert changed.headers["etag"] != etag


async def test_the_directory_publishes_nothing_so_runs_no_relay(directory: Directory) -> None:
    runtime = directory.app.state.runtime
    assert runtime.outbox_relay is None and runtime.mail_relay is None


@pytest.mark.parametrize(
    "path",
    [
        "/?name=%00",
        "/?office=O%00",
        "/agents/A%00x",
        "/agents/A%00x/badge.svg",
        "/agents/A%00x/reviews.atom",
        "/?after=WzAsMCwtMTA5OTUxMTYyNzc3NiwiQW5uIiwiQS0xIl0",
        "/?name=%25_%5C",
    ],
    ids=["nul-name", "nul-office", "nul-agent", "nul-badge", "nul-feed", "huge-cursor", "like"],
)
async def test_hostile_input_gets_an_answer_not_a_server_error(
    directory: Directory, path: str
) -> None:
    response = await directory.client.get(path)
    assert response.status_code in (200, 400, 404), response.text


async def test_random_text_in_every_parameter_never_gets_a_server_error(
    directory: Directory,
) -> None:
    rng = random.Random(24)
    alphabet = "aZ09 _%\\'\"<>&;\x00\x01\u00e9\u2605\U0001f3e0-=/?#"
    values = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80))) for _ in range(60)]
    values += ["A" * 600, "-" * 64, "WzAsMCwwLCIiLCIiXQ", "W10" * 100]
    for value in values:
        for params in ({"name": value}, {"office": value}, {"after": value}):
            response = await directory.client.get("/", params=params)
            assert response.status_code in (200, 400, 422), (params, response.text[:300])
        for suffix in ("", "/badge.svg", "/badge.html", "/reviews.atom"):
            response = await directory.client.get(f"/agents/{quote(value, safe='')}{suffix}")
            assert response.status_code in (200, 404), (value, suffix, response.text[:300])
