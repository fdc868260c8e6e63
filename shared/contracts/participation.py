"""Agents' participation in the rating program."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from shared.contracts.base import Contract, UtcDatetime


class ParticipationMode(StrEnum):
    OPT_IN_HIDDEN = "opt_in_hidden"
    OPT_IN_PUBLIC = "opt_in_public"
    OPT_OUT = "opt_out"

    @property
    def participating(self) -> bool:
        return self is not ParticipationMode.OPT_OUT


class ParticipationReason(StrEnum):
    AGENT_CHOICE = "agent_choice"
    NON_COMPLIANCE = "non_compliance"
    DEFAULT = "default"


class ParticipationChanged(Contract):
    """`agent.participation.changed.v1` on `agents.participation` (compacted, key agent_id)."""

    agent_id: str = Field(min_length=1, max_length=64, description="Agent id.", examples=["A-1"])
    mode: ParticipationMode = Field(description="New mode.", examples=["opt_in_public"])
    reason: ParticipationReason = Field(description="Why it changed.", examples=["agent_choice"])
    changed_at: UtcDatetime = Field(description="When it changed.")
