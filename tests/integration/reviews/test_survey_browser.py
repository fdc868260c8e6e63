"""The survey page in a real headless browser (Debian's Chromium driven by Playwright): PIN
entry, the questions, validation messages, escaping, the thank-you page, on a phone-sized screen.
Screenshots are written to test-output/survey/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from shared.crypto import SecretHasher
from shared.topics import Topic
from tests.integration.reviews.conftest import (
    PEPPER,
    Service,
    announce_agent,
    issue_invitation,
    unique,
)
from tests.support.browser import PHONE, served
from tests.support.kafka import EventPublisher

pytestmark = [pytest.mark.integration, pytest.mark.browser]

SCREENSHOTS = Path(__file__).resolve().parents[3] / "test-output" / "survey"


@pytest.fixture(scope="module")
async def base_url(service: Service) -> AsyncIterator[str]:
    """The module's reviews app (already started) served over real HTTP for the browser."""
    async with served(service.app) as url:
        yield url


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    opened = await context.new_page()
    dialogs: list[str] = []
    opened.on("dialog", lambda dialog: dialogs.append(dialog.message))
    yield opened
    await context.close()
    assert not dialogs, f"a script ran in the page: {dialogs}"


async def choose(page: Page, scores: dict[str, int]) -> None:
    for legend, value in scores.items():
        group = page.get_by_role("group", name=legend)
        await group.get_by_label(str(value), exact=False).first.check()


SCORES = {
    "Communication": 5,
    "Friendliness of staff": 4,
    "Professionalism": 5,
    "Knowledge of the area": 4,
    "Overall service": 5,
}


async def test_a_client_answers_the_survey_with_the_pin_in_a_browser(
    service: Service, base_url: str, page: Page, publish_event: EventPublisher, topic_reader
) -> None:
    reviews = await topic_reader(Topic.REVIEWS_PUBLISHED)
    await announce_agent(publish_event, service, "A-browser-1")
    issued = await issue_invitation(publish_event, service, agent_id="A-browser-1")
    assert issued.pin
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    await page.goto(f"{base_url}/survey")
    await expect(page).to_have_title("Enter your survey PIN · Agent Ratings")
    pin_box = page.get_by_label("Survey PIN")
    await pin_box.fill("WRONG-WRONG-WRON")
    await page.get_by_role("button", name="Continue").click()
    await expect(page.get_by_role("alert")).to_contain_text("not one we issued")
    await expect(page.get_by_label("Survey PIN")).to_have_attribute("aria-invalid", "true")

    # people type PINs in lower case with spaces; the page must accept that
    await page.get_by_label("Survey PIN").fill(issued.pin.lower().replace("-", " "))
    await page.get_by_role("button", name="Continue").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "How was your experience with Jo Agent?"
    )
    assert await page.get_by_role("radiogroup").count() == 5

    # sending without scores explains what is missing, keeping what was typed
    await page.get_by_label("Comment").fill("Patient & <b>honest</b>")
    await page.get_by_role("button", name="Send my review").click()
    await expect(page.get_by_role("alert")).to_contain_text("Choose a score from 1 to 5")
    await expect(page.get_by_label("Comment")).to_have_value("Patient & <b>honest</b>")

    await choose(page, SCORES)
    comment = "Patient & <b>honest</b> <script>alert('pwned')</script> <img src=x onerror=alert(1)>"
    await page.get_by_label("Comment").fill(comment)
    await page.get_by_label("Your name").fill("Pat D.")
    await page.screenshot(path=str(SCREENSHOTS / "form-phone.png"), full_page=True)
    await page.get_by_role("button", name="Send my review").click()

    await expect(page.get_by_role("heading", level=1)).to_have_text("Thank you!")
    await expect(page.locator("#your-comment")).to_have_text(comment)  # shown as text, not HTML
    assert (
        await page.locator("#your-comment script, #your-comment img, #your-comment b").count() == 0
    )
    await page.screenshot(path=str(SCREENSHOTS / "thanks-phone.png"), full_page=True)

    published = await reviews.wait_for(lambda e: e.key == "A-browser-1")
    assert published.data["comment"] == comment and published.data["display_name"] == "Pat D."
    assert published.data["scores"]["friendliness"] == 4

    # the same PIN again: a clear message, not a second review
    await page.goto(f"{base_url}/survey")
    await page.get_by_label("Survey PIN").fill(issued.pin)
    await page.get_by_role("button", name="Continue").click()
    await expect(page.get_by_role("alert")).to_contain_text("already been answered")


async def test_the_link_skips_the_pin_and_an_expired_link_says_so(
    service: Service, base_url: str, page: Page, publish_event: EventPublisher
) -> None:
    issued = await issue_invitation(publish_event, service)
    response = await page.goto(f"{base_url}/survey?token={issued.token}")
    assert response is not None and response.status == 200
    await expect(page.get_by_role("button", name="Send my review")).to_be_visible()
    assert await page.get_by_label("Survey PIN").count() == 0

    gone = await page.goto(f"{base_url}/survey?token=not-a-real-token-at-all-000000")
    assert gone is not None and gone.status == 404
    await expect(page.get_by_role("alert")).to_contain_text("not one we issued")


async def test_a_link_opened_before_its_invitation_arrived_says_wait_and_then_opens_without_js(
    service: Service, base_url: str, browser: Browser, publish_event: EventPublisher
) -> None:
    """The mail can reach the client before this service has the invitation: the page says the
    survey is being prepared and reloads itself (meta refresh); with JavaScript off its
    "Try again" link opens the survey once the invitation has arrived."""
    context = await browser.new_context(viewport=PHONE, java_script_enabled=False)
    page = await context.new_page()
    try:
        invitation_id = unique("inv")
        token = SecretHasher(PEPPER).link_token(invitation_id)
        response = await page.goto(f"{base_url}/survey?token={token}")
        assert response is not None and response.status == 503
        await expect(page.get_by_role("heading", level=1)).to_have_text(
            "Your survey is being prepared"
        )
        await expect(page.get_by_role("status")).to_contain_text("try again in a minute")
        refresh = page.locator('meta[http-equiv="refresh"]')
        assert f"url=/survey?token={token}" in (await refresh.get_attribute("content") or "")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENSHOTS / "preparing-phone.png"), full_page=True)

        await issue_invitation(publish_event, service, invitation_id=invitation_id, token=token)
        await page.get_by_role("link", name="Try again").click()
        await expect(page.get_by_role("button", name="Send my review")).to_be_visible()
    finally:
        await context.close()
