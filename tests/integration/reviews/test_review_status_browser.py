"""The client's status page in a real headless browser (Debian's Chromium, Playwright): from the
thank-you page's link to the state, the moderator's reason and the one resubmission (pages
without scripts), at phone width, checked with axe-core (docs/design.md 1.10). Screenshots go
to test-output/review-status/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from shared.auth import Role
from tests.integration.reviews.conftest import (
    GOOD,
    Service,
    announce_agent,
    bearer,
    issue_invitation,
    unique,
)
from tests.support.browser import PHONE, assert_accessible, served
from tests.support.kafka import EventPublisher

pytestmark = [pytest.mark.integration, pytest.mark.browser]

SCREENSHOTS = Path(__file__).resolve().parents[3] / "test-output" / "review-status"


@pytest.fixture(scope="module")
async def base_url(service: Service) -> AsyncIterator[str]:
    async with served(service.app) as url:
        yield url


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    # JavaScript stays on for axe-core (it runs in the page); the pages themselves have none
    context = await browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    opened = await context.new_page()
    yield opened
    await context.close()


async def test_a_client_follows_the_link_reads_why_and_sends_the_review_again(
    service: Service, base_url: str, page: Page, publish_event: EventPublisher
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    agent_id = unique("A")
    await announce_agent(publish_event, service, agent_id)
    issued = await issue_invitation(publish_event, service, agent_id=agent_id)
    assert issued.token

    await page.goto(f"{base_url}/survey?token={issued.token}")
    for category, label in (
        ("communication", "Communication"),
        ("friendliness", "Friendliness of staff"),
        ("professionalism", "Professionalism"),
        ("area_knowledge", "Knowledge of the area"),
        ("overall", "Overall service"),
    ):
        group = page.get_by_role("group", name=label)
        await group.get_by_label(str(GOOD[category]), exact=False).first.check()
    await page.get_by_label("Comment").fill("Great, call me on 713-555-0188.")
    await page.get_by_role("button", name="Send my review").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Thank you!")

    await page.get_by_role("link", name="See your review's state at any time").click()
    await expect(page.locator("#review-status")).to_have_text("Being checked")
    await assert_accessible(page, "held", scriptless=True)
    await page.screenshot(path=str(SCREENSHOTS / "held-phone.png"), full_page=True)
    status_url = page.url
    review_id = status_url.split("token=", 1)[1].split(".", 1)[0]

    rejected = await service.client.post(
        f"/api/v1/moderation/{review_id}/decision",
        json={"decision": "reject", "reason": "Please leave out the phone number."},
        headers=bearer("M-1", Role.MODERATOR),
    )
    assert rejected.status_code == 200, rejected.text
    await page.goto(status_url)
    await expect(page.locator("#review-status")).to_have_text("Not published")
    await expect(page.locator("#moderator-reason")).to_have_text(
        "Please leave out the phone number."
    )
    await expect(page.get_by_label("Comment")).to_have_value("Great, call me on 713-555-0188.")
    await assert_accessible(page, "rejected", scriptless=True)
    await page.screenshot(path=str(SCREENSHOTS / "rejected-phone.png"), full_page=True)

    await page.get_by_label("Comment").fill("Great agent, knew every street.")
    await page.get_by_role("button", name="Send my edited review").click()
    await expect(page.locator("#resubmitted")).to_contain_text("your edited review was sent")
    await expect(page.locator("#review-status")).to_have_text("Published")
    await expect(page.locator("#your-comment")).to_have_text("Great agent, knew every street.")
    await expect(page.locator("form")).to_have_count(0)
    await assert_accessible(page, "published", scriptless=True)
    await page.screenshot(path=str(SCREENSHOTS / "published-phone.png"), full_page=True)
