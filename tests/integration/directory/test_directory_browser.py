"""The directory's pages in a real headless browser (Debian's Chromium driven by Playwright) at
desktop and phone widths: search, paging, the profile with its badge and JSON-LD, and axe-core
accessibility checks (no serious or critical violation). Screenshots go to
test-output/directory/."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from shared.contracts.ratings import Status
from tests.integration.directory.conftest import (
    START,
    Directory,
    public_review,
    publish_rating,
    publish_review,
    rating,
    roster,
    unique,
)
from tests.support.browser import DESKTOP, PHONE, assert_accessible, served
from tests.support.kafka import EventPublisher

pytestmark = [pytest.mark.integration, pytest.mark.browser]

SCREENSHOTS = Path(__file__).resolve().parents[3] / "test-output" / "directory"
WIDTHS = {"desktop": DESKTOP, "phone": PHONE}


@pytest.fixture(scope="module")
async def base_url(directory: Directory) -> AsyncIterator[str]:
    """The module's directory app (already started) served over real HTTP for the browser."""
    async with served(directory.app) as url:
        yield url


@pytest.fixture(params=sorted(WIDTHS))
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    width = request.param
    context = await browser.new_context(
        viewport=WIDTHS[width], device_scale_factor=1, is_mobile=width == "phone"
    )
    opened = await context.new_page()
    opened.width_name = width  # type: ignore[attr-defined]
    dialogs: list[str] = []
    opened.on("dialog", lambda dialog: dialogs.append(dialog.message))
    yield opened
    await context.close()
    assert not dialogs, f"a script ran in the page: {dialogs}"


@pytest.fixture(scope="module")
async def office(directory: Directory, kafka_bootstrap: str) -> dict[str, str]:
    """An office of five public agents (gold, silver, none) and one hidden agent; the first has
    reviews with a reply, an anonymous one and hostile text."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        publish = EventPublisher(producer)
        office_id = unique("O")
        people = [
            ("Dana Whitfield", Status.GOLD, 4, 7),
            ("Marcus Oyelaran-Bright", Status.SILVER, 3, 5),
            ("Ana Lee", Status.SILVER, 2, 4),
            ("Tom Ng", Status.NONE, 1, 2),
            ("Priya Raman", Status.NONE, 0, 0),
        ]
        ids: dict[str, str] = {"office": office_id}
        for name, status, stars, positive in people:
            ids[name] = agent_id = unique("A")
            await roster(publish, agent_id, name=name, office_id=office_id)
            await publish_rating(
                publish, rating(agent_id, status=status, stars=stars, positive_3m=positive)
            )
        ids["hidden"] = hidden = unique("A")
        await roster(publish, hidden, name="Hidden Person", office_id=office_id)
        dana = ids["Dana Whitfield"]
        reviews = [
            public_review(
                dana,
                comment="Dana knew every street in the Heights and got us under asking. "
                "Patient with our endless questions, honest about the inspection.",
                display_name="Pat & Sam D.",
                agent_response="Thank you both, it was a pleasure to find your first home!",
                submitted_at=START - timedelta(days=5),
            ),
            public_review(
                dana,
                comment="<script>alert('x')</script> Quick, clear, professional.",
                display_name=None,
                submitted_at=START - timedelta(days=40),
            ),
            public_review(dana, comment="", display_name="Lee", submitted_at=START - timedelta(90)),
        ]
        for review in reviews:
            await publish_review(publish, review)
    finally:
        await producer.stop()
    for name, agent_id in ids.items():
        if name not in ("office", "hidden"):
            await directory.until(f"/agents/{agent_id}", lambda r: r.status_code == 200)
    await directory.until(f"/agents/{dana}", lambda r: "Quick, clear" in r.text and "Lee" in r.text)
    return ids


async def shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    width = page.width_name  # type: ignore[attr-defined]
    await page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)


async def test_search_shows_the_office_in_rank_order_and_pages_forward(
    page: Page, base_url: str, office: dict[str, str]
) -> None:
    await page.goto(f"{base_url}/")
    await page.get_by_label("Office id").fill(office["office"])
    await page.get_by_role("button", name="Search").click()
    names = page.locator("ol.agents a.name")
    await expect(names).to_have_text(["Dana Whitfield", "Marcus Oyelaran-Bright", "Ana Lee"])
    await expect(page.get_by_text("Hidden Person")).to_have_count(0)
    await expect(page.get_by_role("img", name="4 of 5 stars")).to_be_visible()
    await expect(page.locator(".status-gold")).to_have_text("Gold")
    await assert_accessible(page, "search")
    await shoot(page, "search")

    await page.get_by_role("link", name="Next page").click()
    await expect(names).to_have_text(["Tom Ng", "Priya Raman"])
    await expect(page.get_by_role("link", name="Next page")).to_have_count(0)
    await page.get_by_role("link", name="First page").click()
    await expect(names.first).to_have_text("Dana Whitfield")

    await page.get_by_label("Agent name").fill("oyel")
    await page.get_by_label("Office id").fill("")
    await page.get_by_role("button", name="Search").click()
    await expect(names).to_have_text(["Marcus Oyelaran-Bright"])


async def test_the_profile_shows_rating_reviews_reply_badge_and_json_ld(
    page: Page, base_url: str, office: dict[str, str]
) -> None:
    dana = office["Dana Whitfield"]
    await page.goto(f"{base_url}/agents/{dana}")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Dana Whitfield")
    await expect(page.get_by_text("Gold since 31 Oct 2026")).to_be_visible()
    await expect(page.locator("article.review")).to_have_count(3)
    await expect(page.get_by_text("Thank you both")).to_be_visible()
    await expect(page.get_by_text("<script>alert('x')</script> Quick")).to_be_visible()
    await expect(page.get_by_role("heading", name="A verified client")).to_be_visible()
    badge = page.get_by_role("img", name="Client ratings of Dana Whitfield")
    await expect(badge).to_be_visible()
    assert await badge.evaluate("img => img.complete && img.naturalWidth > 0")
    ld = json.loads(await page.locator('script[type="application/ld+json"]').text_content() or "")
    assert ld["aggregateRating"]["reviewCount"] == 3
    assert ld["aggregateRating"]["ratingValue"] == 5
    await page.get_by_role("link", name="How ratings work").first.click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("How ratings work")
    await assert_accessible(page, "how ratings work")
    await page.go_back()
    await assert_accessible(page, "profile")
    await shoot(page, "profile")


async def test_a_hidden_agent_has_a_neutral_page_and_badge(
    page: Page, base_url: str, office: dict[str, str]
) -> None:
    response = await page.goto(f"{base_url}/agents/{office['hidden']}")
    assert response is not None and response.status == 404
    await expect(page.get_by_role("heading", level=1)).to_have_text("No public ratings here")
    await assert_accessible(page, "not public")
    await page.goto(f"{base_url}/agents/{office['hidden']}/badge.svg")
    await expect(page.locator("svg")).to_have_attribute("aria-label", "Client ratings: not public")
