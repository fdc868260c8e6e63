"""Mails to agents and staff link to the portal's pages, never to an API route (issue 23)."""

from __future__ import annotations

from shared.portal import clients_page, disputes_page, participation_page, review_page

BASE = "https://portal.example/"


def test_each_page_is_under_the_portal_url_and_no_api_route() -> None:
    pages = [
        review_page(BASE, "R-1"),
        clients_page(BASE),
        disputes_page(BASE),
        participation_page(BASE),
    ]
    for page in pages:
        assert page.startswith("https://portal.example/") and "//agent" not in page
        assert "/api/" not in page
    assert review_page(BASE, "R-1") == "https://portal.example/reviews/R-1"
    assert clients_page(BASE) == "https://portal.example/agent/clients"


def test_ids_are_quoted_in_the_path() -> None:
    assert review_page(BASE, "a/b c") == "https://portal.example/reviews/a%2Fb%20c"
