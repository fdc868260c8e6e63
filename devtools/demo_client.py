"""The demo's simulated people talking to the services over their public HTTP APIs."""

from __future__ import annotations

import re
from typing import Any

import httpx

from devtools.world import World
from shared.auth import Role, issue_token
from shared.contracts.removals import RemovalReason
from shared.http import KEEP_ALIVE
from shared.settings import ServiceSettings

REMOVAL_NOTES = {
    RemovalReason.NO_CONTACT: "Called, emailed and texted for three weeks; never any reply.",
    RemovalReason.LOST_TOUCH: "We toured four homes in May, then the client stopped answering.",
    RemovalReason.CHANGED_MIND: "The client decided to renovate and stay in their current home.",
    RemovalReason.OUT_OF_AREA: "The client now searches in Austin, outside my service area.",
    RemovalReason.ACTIVE_HANDOFF: "I am on leave for two months; the client is actively touring.",
    RemovalReason.BAD_FIT: "The client prefers an agent who speaks Vietnamese fluently.",
    RemovalReason.CANT_QUALIFY: "The lender could not pre-approve the client this year.",
    RemovalReason.WORKING_WITH_OTHER_AGENT: "The client signed with a friend who is an agent.",
    RemovalReason.LEASE_OR_RENTAL: "The client wants a 12-month lease, not a purchase.",
    RemovalReason.PRIOR_CLIENT: "I sold this client's previous home in 2023 (MLS 612345).",
    RemovalReason.SEEKING_LISTING_AGENT: "The client only wanted the listing agent of one house.",
}
HANDOFFS = (RemovalReason.ACTIVE_HANDOFF.value, RemovalReason.BAD_FIT.value)
TRANSACTION_ID = re.compile(r"\b(T-[A-Za-z0-9\-]+)\b")
REVIEW_ID = re.compile(r"review[ _-]?(?:id)?[:# ]+([0-9a-fA-F\-]{8,})", re.IGNORECASE)


DEV_AUTH_SECRET: str = ServiceSettings.model_fields["auth_secret"].default
"""The services' local default: the demo signs its agents' and staff's tokens with it."""


class ServiceClient:
    def __init__(self, urls: dict[str, str], auth_secret: str = DEV_AUTH_SECRET) -> None:
        self.urls = urls
        self.secret = auth_secret
        self.http = httpx.AsyncClient(timeout=15, limits=KEEP_ALIVE)

    def _as(self, sub: str, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(self.secret, sub, role)}"}

    async def close(self) -> None:
        await self.http.aclose()

    async def set_participation(self, agent_id: str, mode: str) -> bool:
        response = await self.http.put(
            f"{self.urls['invitations']}/api/v1/agents/{agent_id}/participation",
            json={"mode": mode},
            headers=self._as(agent_id, Role.AGENT),
        )
        return response.status_code < 300

    async def supply_contacts(self, agent_id: str, mail_text: str, world: World) -> int:
        """The agent reads the request, looks the clients up in their own records, supplies them."""
        supplied = 0
        for transaction_id in set(TRANSACTION_ID.findall(mail_text)):
            closing = next(
                (
                    c
                    for day in world.closings_by_day.values()
                    for c in day
                    if c.event.transaction_id == transaction_id
                ),
                None,
            )
            if closing is None:
                continue
            clients = [{"name": p.name, "email": p.hidden_email} for p in closing.clients]
            response = await self.http.post(
                f"{self.urls['invitations']}/api/v1/transactions/{transaction_id}/clients",
                json={"clients": clients},
                headers=self._as(agent_id, Role.AGENT),
            )
            if response.status_code < 300:
                supplied += len(clients)
        return supplied

    async def submit_review(self, pin: str, scores: dict[str, int], comment: str) -> bool:
        response = await self.http.post(
            f"{self.urls['reviews']}/api/v1/reviews",
            json={"pin": pin, "scores": scores, "comment": comment},
        )
        return response.status_code == 201

    async def respond_to_review(self, agent_id: str, mail_text: str) -> bool:
        review_ids = set(REVIEW_ID.findall(mail_text))
        if not review_ids:
            listing = await self.http.get(
                f"{self.urls['reviews']}/api/v1/agents/{agent_id}/reviews",
                headers=self._as(agent_id, Role.AGENT),
            )
            if listing.status_code == 200:
                body: Any = listing.json()
                items = body if isinstance(body, list) else body.get("reviews", [])
                review_ids = {i["review_id"] for i in items if not i.get("agent_response")}
        responded = False
        for review_id in review_ids:
            response = await self.http.post(
                f"{self.urls['reviews']}/api/v1/reviews/{review_id}/response",
                json={
                    "text": "Thank you for the honest feedback; I have called you to make "
                    "this right."
                },
                headers=self._as(agent_id, Role.AGENT),
            )
            responded = responded or response.status_code < 300
        return responded

    async def request_removal(
        self, agent_id: str, lead_id: str, reason: RemovalReason, hand_to: str | None = None
    ) -> bool:
        """An agent asks to remove a lead; a coordinator approves what waits for one, handing
        the client to `hand_to` when the reason is a hand-off."""
        body: dict[str, Any] = {
            "lead_id": lead_id,
            "reason": reason.value,
            "notes": REMOVAL_NOTES[reason],
        }
        if reason is RemovalReason.PRIOR_CLIENT:
            body["proof"] = {"reference": "Closing statement for MLS 612345, signed 2023-04-02."}
        response = await self.http.post(
            f"{self.urls['removals']}/api/v1/removals",
            json=body,
            headers=self._as(agent_id, Role.AGENT),
        )
        if response.status_code != 201:
            return False
        removal = response.json()
        if removal.get("status") == "pending":
            decision = await self.http.post(
                f"{self.urls['removals']}/api/v1/removals/{removal['removal_id']}/decision",
                json={
                    "decision": "approve",
                    "note": "Checked with the agent and the client.",
                    **(
                        {"handed_to_agent_id": hand_to} if removal.get("reason") in HANDOFFS else {}
                    ),
                },
                headers=self._as("coordinator-1", Role.COORDINATOR),
            )
            return decision.status_code < 300
        return True

    async def rating(self, agent_id: str) -> dict[str, Any] | None:
        response = await self.http.get(
            f"{self.urls['scoring']}/api/v1/agents/{agent_id}/rating",
            headers=self._as(agent_id, Role.AGENT),
        )
        return response.json() if response.status_code == 200 else None

    async def ranking(self, limit: int = 25) -> list[dict[str, Any]]:
        response = await self.http.get(
            f"{self.urls['scoring']}/api/v1/agents", params={"limit": limit}
        )
        if response.status_code != 200:
            return []
        body: Any = response.json()
        return list(body if isinstance(body, list) else body.get("agents", []))
