"""Where the portal's pages are: every mail to an agent or staff member links to the page where
the action is taken (never to an API route). One place, so the portal and the mails agree."""

from __future__ import annotations

from urllib.parse import quote

DEFAULT_PORTAL_URL = "http://127.0.0.1:8007"


def _join(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + path


def review_page(base_url: str, review_id: str) -> str:
    """One review's page (the agent's own, or any for a moderator): respond, dispute, see a
    dispute's answer."""
    return _join(base_url, f"/reviews/{quote(review_id, safe='')}")


def clients_page(base_url: str) -> str:
    """The agent's clients to survey: supply contacts, generate a code, cancel and re-send."""
    return _join(base_url, "/agent/clients")


def disputes_page(base_url: str) -> str:
    """The moderators' queue of agents' disputes."""
    return _join(base_url, "/moderation/disputes")


def participation_page(base_url: str) -> str:
    """The agent's participation: the three modes, the current one, change it."""
    return _join(base_url, "/agent/participation")
