"""The portal in a real headless browser (Debian's Chromium driven by Playwright) against the
four real services: every page of every role at desktop and phone width with axe-core (no
serious or critical violation) and a screenshot under test-output/portal/, then each role's
journey, refusals included, with JavaScript off: every core action is a plain form."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.integration.portal.conftest import Story
from tests.support.browser import DESKTOP, PHONE, assert_accessible

pytestmark = [pytest.mark.integration, pytest.mark.browser]

SCREENSHOTS = Path(__file__).resolve().parents[3] / "test-output" / "portal"
WIDTHS = {"desktop": DESKTOP, "phone": PHONE}


async def open_context(browser: Browser, width: str, *, javascript: bool) -> BrowserContext:
    return await browser.new_context(
        viewport=WIDTHS[width],
        device_scale_factor=1,
        is_mobile=width == "phone",
        java_script_enabled=javascript,
    )


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A desktop page with JavaScript off: the journeys need none (and so axe-core, a script,
    runs only in scripted contexts)."""
    context = await open_context(browser, "desktop", javascript=False)
    context.set_default_timeout(15_000)
    yield await context.new_page()
    await context.close()


async def sign_in(page: Page, story: Story, sub: str, role: str) -> None:
    await page.context.clear_cookies()  # whoever was signed in before
    await page.goto(f"{story.portal}/sign-in")
    await page.get_by_label("Agent id or staff id").fill(sub)
    await page.get_by_label("Role").select_option(role)
    await page.get_by_role("button", name="Sign in").click()


async def shoot(page: Page, name: str, width: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)


def pages_of(story: Story) -> dict[str, list[tuple[str, str]]]:
    return {
        "agent": [
            ("agent-dashboard", "/agent"),
            ("agent-clients", "/agent/clients"),
            ("agent-reviews", "/agent/reviews"),
            ("agent-review", f"/reviews/{story.answered_negative}"),
            ("agent-participation", "/agent/participation"),
            ("agent-leads", "/agent/leads"),
            ("agent-removal", f"/agent/leads/{story.lead}/removal"),
            ("agent-survey-preview", "/agent/removal-reasons/prior_client"),
        ],
        "moderator": [
            ("moderator-queue", "/moderation"),
            ("moderator-disputes", "/moderation/disputes"),
            ("moderator-review", f"/reviews/{story.published_positive}"),
        ],
        "coordinator": [("coordinator-queue", "/coordination")],
        "surveyor": [("surveyor-tasks", "/phone-tasks")],
    }


@pytest.mark.parametrize("width", sorted(WIDTHS))
async def test_every_page_of_every_role_passes_axe_and_is_shot(
    browser: Browser, story: Story, width: str
) -> None:
    people = {
        "agent": story.agent,
        "moderator": story.moderator,
        "coordinator": story.coordinator,
        "surveyor": story.surveyor,
    }
    for role, pages in pages_of(story).items():
        context = await open_context(browser, width, javascript=True)
        page = await context.new_page()
        await sign_in(page, story, people[role], role)
        for name, path in pages:
            response = await page.goto(f"{story.portal}{path}")
            assert response is not None and response.status == 200, f"{name}: {path}"
            await assert_accessible(page, f"{name} ({width})")
            await shoot(page, name, width)
        await context.close()
    context = await open_context(browser, width, javascript=True)
    page = await context.new_page()
    await page.goto(f"{story.portal}/sign-in")
    await assert_accessible(page, f"sign-in ({width})")
    await shoot(page, "sign-in", width)
    await context.close()


async def test_the_agent_reads_the_rating_in_words_and_answers_a_review_once(
    page: Page, story: Story
) -> None:
    await sign_in(page, story, story.agent, "agent")
    await expect(page.get_by_role("heading", name="Your rating")).to_be_visible()
    await expect(page.get_by_text("2 positive reviews in the last 3 months")).to_be_visible()
    await expect(page.get_by_text("Your stars: 1 of 5")).to_be_visible()
    await expect(
        page.get_by_text("2 more positive reviews within 3 months give you 2 stars")
    ).to_be_visible()
    closings = page.get_by_role("row", name="Closings")
    await expect(closings.get_by_role("cell")).to_have_text("3")
    answered = page.get_by_role("row", name="Answered")
    await expect(answered.get_by_role("cell")).to_have_text("4")
    await expect(page.get_by_role("link", name="1 review waits for your response")).to_be_visible()

    await page.get_by_role("link", name="Reviews", exact=True).click()
    await expect(page.get_by_text("Held for your response", exact=True)).to_be_visible()
    await expect(page.get_by_text("1 review is with a moderator")).to_be_visible()
    held = page.locator("article", has=page.get_by_text("Slow to call back"))
    await held.get_by_role("link", name="Respond").click()
    await page.get_by_label("Your response").fill(
        "Sorry for the slow calls, Pat: thank you for sticking with me."
    )
    await page.get_by_role("button", name="Publish my response").click()
    await expect(page.get_by_role("status")).to_have_text(
        "Your response is saved; it shows publicly with the review."
    )
    await expect(page.get_by_text("Published", exact=True)).to_be_visible()
    await expect(page.get_by_role("button", name="Publish my response")).to_have_count(0)


async def test_the_agent_supplies_a_contact_and_generates_a_code(page: Page, story: Story) -> None:
    await sign_in(page, story, story.agent, "agent")
    await page.get_by_role("link", name="Clients to survey").click()
    closing = page.locator(
        "section.card",
        has=page.get_by_role("heading", name=f"Closing {story.missing_transaction}", exact=True),
    )
    await expect(closing.get_by_text("days left")).to_be_visible()
    await expect(closing.get_by_role("heading", name="Kim Park")).to_have_count(0)  # phone given
    sam = closing.locator("form", has=page.get_by_role("heading", name="Sam Ortiz"))
    await sam.get_by_label("Email", exact=True).fill("sam.ortiz@client.example")
    await sam.get_by_role("button", name="Send the survey to Sam Ortiz").click()
    await expect(page.get_by_role("status")).to_have_text(
        "Thank you: the client gets the survey by email."
    )
    await expect(
        page.get_by_role("heading", name=f"Closing {story.missing_transaction}", exact=True)
    ).to_have_count(0)
    sent = page.locator("li.card", has=page.get_by_text("sam.ortiz@client.example"))
    await sent.get_by_label("Right email for Sam Ortiz").fill("sam.ortiz@clients.example")
    await sent.get_by_role("button", name="Cancel and send again").click()
    await expect(page.get_by_role("status")).to_contain_text("a new one went to the right address")
    await expect(page.get_by_text("sam.ortiz@clients.example")).to_be_visible()

    await page.get_by_label("Client's email").fill("jo.bell@client.example")
    await page.get_by_label("Road name").fill("4 oak st.")
    await page.get_by_label("Postcode").fill("77002")
    await page.get_by_role("button", name="Generate code").click()
    await expect(page.get_by_role("status")).to_contain_text("The code is generated")
    await expect(
        page.get_by_role("heading", name=f"Closing {story.code_transaction}", exact=True)
    ).to_have_count(0)

    await page.get_by_label("Client's email").fill("jo.bell@client.example")
    await page.get_by_label("Road name").fill("1 Wrong Way")
    await page.get_by_label("Postcode").fill("77002")
    await page.get_by_role("button", name="Generate code").click()
    await expect(page.get_by_role("alert")).to_contain_text("No code was generated.")


async def test_the_agent_changes_participation(page: Page, story: Story) -> None:
    await sign_in(page, story, story.agent, "agent")
    await page.get_by_role("link", name="Participation").click()
    await expect(page.get_by_label("Participate privately")).to_be_checked()
    await page.get_by_label("Participate publicly").check()
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_contain_text("You now participate publicly")


async def test_the_agent_requests_a_removal_after_reading_the_reason_and_its_survey(
    page: Page, story: Story
) -> None:
    await sign_in(page, story, story.agent, "agent")
    await page.get_by_role("link", name="Leads and removals").click()
    await expect(page.get_by_text("Waiting for a coordinator")).to_be_visible()  # the hand-off
    await page.get_by_role("link", name=f"Request removal of lead {story.lead}").click()
    await expect(page.locator("input[name=reason]")).to_have_count(11)
    await page.get_by_role("link", name="The survey the client gets for Changed their mind").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Changed their mind")
    await expect(page.locator("pre.mail")).to_contain_text(
        f"{story.agent} tells us you have stopped searching"
    )
    await page.go_back()
    await page.get_by_label("Changed their mind").check()
    await page.get_by_role("button", name="Request removal").click()
    # notes are required: the browser asks for them before anything is sent
    await expect(page).to_have_url(f"{story.portal}/agent/leads/{story.lead}/removal")
    await page.get_by_label("Notes (required)").fill("short")
    await page.get_by_role("button", name="Request removal").click()
    await expect(page.get_by_role("alert")).to_contain_text("The request was not accepted")
    await expect(page.get_by_label("Changed their mind")).to_be_checked()
    await page.get_by_label("Notes (required)").fill(
        "Rae decided to stay in her current home after the job offer fell through."
    )
    await page.get_by_role("button", name="Request removal").click()
    await expect(page.get_by_role("status")).to_have_text(
        "The client is removed; they get the removal survey."
    )
    await expect(
        page.get_by_role("heading", name=f"Lead {story.lead}: Changed their mind")
    ).to_be_visible()


async def test_an_agent_cannot_open_another_agents_review(page: Page, story: Story) -> None:
    await sign_in(page, story, story.other_agent, "agent")
    response = await page.goto(f"{story.portal}/reviews/{story.answered_negative}")
    assert response is not None and response.status == 404
    await expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    await expect(page.get_by_text("Slow to call back")).to_have_count(0)


async def test_the_moderator_rejects_with_a_reason_and_withdraws_a_published_review(
    page: Page, story: Story
) -> None:
    await sign_in(page, story, story.moderator, "moderator")
    await expect(page.get_by_role("heading", name="Moderation queue")).to_be_visible()
    held = page.locator("article", has=page.get_by_text("713 555 0199"))
    await expect(held.locator(".flagged").first).to_have_text("a phone number")
    await held.get_by_label("Reason").fill("Please leave out phone numbers; the rest can stay.")
    await held.get_by_role("button", name="Reject").click()
    await expect(page.get_by_role("status")).to_have_text("Rejected: the client reads your reason.")
    await expect(page.get_by_text("713 555 0199")).to_have_count(0)

    await page.get_by_label("Open a review by id").fill(story.published_positive)
    await page.get_by_role("button", name="Open").click()
    await page.get_by_label("Reason").fill("The client asked us to take it down.")
    await page.get_by_role("button", name="Withdraw the review").click()
    await expect(page.get_by_role("status")).to_have_text(
        "The review is withdrawn from public view."
    )
    await expect(page.get_by_text("Withdrawn", exact=True)).to_be_visible()


async def test_a_moderator_cannot_open_the_coordinators_queue(page: Page, story: Story) -> None:
    await sign_in(page, story, story.moderator, "moderator")
    await expect(page.get_by_role("link", name="Removal approvals")).to_have_count(0)
    response = await page.goto(f"{story.portal}/coordination")
    assert response is not None and response.status == 403
    await expect(page.get_by_role("heading", level=1)).to_have_text("Not for you")
    await expect(page.get_by_text("Lou is moving")).to_have_count(0)


async def test_the_coordinator_approves_a_handoff_naming_the_agent_who_takes_over(
    page: Page, story: Story
) -> None:
    await sign_in(page, story, story.coordinator, "coordinator")
    request = page.locator("article", has=page.get_by_text("Lou is moving to Austin"))
    await request.get_by_label("Agent who takes the client over").fill("A-nobody")
    await request.get_by_label("Note").fill("Marcus covers Austin.")
    await request.get_by_role("button", name="Approve").click()
    await expect(page.get_by_role("alert")).to_contain_text(
        "No agent with this id is on the roster"
    )
    await request.get_by_label("Agent who takes the client over").fill(story.other_agent)
    await request.get_by_label("Note").fill("Marcus covers Austin.")
    await request.get_by_role("button", name="Approve").click()
    await expect(page.get_by_role("status")).to_contain_text("Approved: the client is removed")
    await expect(page.get_by_text("Lou is moving to Austin")).to_have_count(0)

    await sign_in(page, story, story.other_agent, "agent")
    await page.get_by_role("link", name="Leads and removals").click()
    await expect(page.get_by_text("Lou Chen")).to_be_visible()
    await expect(page.get_by_text(f"handed to you by agent {story.agent}")).to_be_visible()


PROOF_PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


async def test_the_agent_uploads_proof_of_a_prior_client_and_the_coordinator_downloads_it(
    browser: Browser, page: Page, story: Story, tmp_path: Path
) -> None:
    proof, not_a_pdf = tmp_path / "closing-2023.pdf", tmp_path / "statement.pdf"
    proof.write_bytes(PROOF_PDF)
    not_a_pdf.write_bytes(b"<html><body>a web page renamed .pdf</body></html>")
    await sign_in(page, story, story.agent, "agent")
    await page.get_by_role("link", name="Leads and removals").click()
    await page.get_by_role("link", name=f"Request removal of lead {story.proof_lead}").click()
    await page.get_by_label("My prior client").check()
    notes = "Quinn bought 9 Elm Rd with me in 2023 and came back to me directly."
    await page.get_by_label("Notes (required)").fill(notes)
    document = page.get_by_label("Document (PDF, PNG or JPEG")
    await document.set_input_files(str(not_a_pdf))
    await page.get_by_role("button", name="Request removal").click()
    # told by the bytes, not the name: refused, and the form comes back as it was typed
    await expect(page.get_by_role("alert")).to_contain_text("must be a PDF, PNG or JPEG")
    await expect(page.get_by_label("My prior client")).to_be_checked()
    await expect(page.get_by_label("Notes (required)")).to_have_value(notes)
    await shoot(page, "agent-removal-file-refused", "desktop")
    await document.set_input_files(str(proof))
    await page.get_by_role("button", name="Request removal").click()
    await expect(page.get_by_role("status")).to_have_text(
        "Your request waits for a coordinator's decision."
    )
    await expect(page.get_by_role("link", name="closing-2023.pdf")).to_be_visible()
    await shoot(page, "agent-leads-proof", "desktop")

    await sign_in(page, story, story.coordinator, "coordinator")
    request = page.locator("article", has=page.get_by_text("Quinn bought 9 Elm Rd"))
    await expect(request.get_by_text("PDF, 77 Bytes")).to_be_visible()
    link = request.get_by_role("link", name="Download closing-2023.pdf")
    async with page.expect_download() as downloading:
        await link.click()
    download = await downloading.value
    assert download.suggested_filename == "closing-2023.pdf"
    assert Path(await download.path()).read_bytes() == PROOF_PDF
    href = await link.get_attribute("href")
    scripted = await open_context(browser, "desktop", javascript=True)
    checked = await scripted.new_page()
    await sign_in(checked, story, story.coordinator, "coordinator")
    await assert_accessible(checked, "coordinator queue with a proof")
    await shoot(checked, "coordinator-queue-proof", "desktop")
    await scripted.close()
    await request.get_by_label("Note").fill("Checked the 2023 closing statement: Quinn bought.")
    await request.get_by_role("button", name="Approve").click()
    await expect(page.get_by_role("status")).to_contain_text("Approved")

    await sign_in(page, story, story.other_agent, "agent")
    response = await page.goto(f"{story.portal}{href}")
    assert response is not None and response.status == 403
    await expect(page.get_by_role("heading", level=1)).to_have_text("Not for you")


async def test_the_surveyor_claims_a_task_sees_the_contact_and_enters_the_answers(
    browser: Browser, page: Page, story: Story
) -> None:
    await sign_in(page, story, story.surveyor, "surveyor")
    task = page.locator("li.card", has=page.get_by_text(f"for agent {story.agent}"))
    await expect(page.get_by_text("+1 713 555 0142")).to_have_count(0)
    await task.get_by_role("button", name="Claim").click()
    await expect(page.get_by_role("heading", name="Call Kim Park")).to_be_visible()
    await expect(page.get_by_text("+1 713 555 0142")).to_be_visible()
    await shoot(page, "surveyor-task", "desktop")
    # axe-core is a script: it runs in a second, scripted, context of the same surveyor
    scripted = await open_context(browser, "phone", javascript=True)
    checked = await scripted.new_page()
    await sign_in(checked, story, story.surveyor, "surveyor")
    await checked.goto(page.url)
    await expect(checked.get_by_role("heading", name="Call Kim Park")).to_be_visible()
    await assert_accessible(checked, "surveyor task")
    await shoot(checked, "surveyor-task", "phone")
    await scripted.close()
    for category in (
        "Communication",
        "Friendliness of staff",
        "Professionalism",
        "Knowledge of the area",
        "Overall service",
    ):
        await page.get_by_role("group", name=category).get_by_label("4").check()
    await page.get_by_label("What the client said").fill("Very patient with our questions.")
    await page.get_by_role("button", name="Save the answers and close").click()
    await expect(page.get_by_role("status")).to_have_text(
        "The answers are saved and the task is closed."
    )
    await expect(page.get_by_text(f"for agent {story.agent}")).to_have_count(0)


async def test_a_surveyor_cannot_open_the_moderation_queue(page: Page, story: Story) -> None:
    await sign_in(page, story, story.surveyor, "surveyor")
    response = await page.goto(f"{story.portal}/moderation")
    assert response is not None and response.status == 403
    await expect(page.get_by_role("heading", level=1)).to_have_text("Not for you")


async def test_the_agent_disputes_a_review_and_a_moderator_answers_it(
    page: Page, story: Story
) -> None:
    await sign_in(page, story, story.agent, "agent")
    await page.goto(f"{story.portal}/reviews/{story.to_dispute}")
    await page.get_by_label("Why it should not stand").fill(
        "The buyer was never my client: the closing names another agent."
    )
    await page.get_by_role("button", name="Dispute the review").click()
    await expect(page.get_by_role("status")).to_contain_text("Your dispute is with a moderator")
    await expect(page.get_by_text("a moderator answers by")).to_be_visible()
    await expect(page.get_by_role("button", name="Dispute the review")).to_have_count(0)

    await sign_in(page, story, story.moderator, "moderator")
    await page.get_by_role("link", name="Disputes").click()
    disputed = page.locator("article", has=page.get_by_text("The buyer was never my client"))
    await expect(disputed.get_by_text("Answer by")).to_be_visible()
    await shoot(page, "moderator-disputed", "desktop")
    await disputed.get_by_label("Your answer").fill("The closing lists you for this buyer.")
    await disputed.get_by_role("button", name="Keep the review").click()
    await expect(page.get_by_role("status")).to_contain_text("Answered: the review stays")
    await expect(page.get_by_text("The buyer was never my client")).to_have_count(0)
