"""Events from the streams (`events`), commands from the API (`commands`) and timer steps
(`timers`) of the invitations service: load, decide (domain), save, publish and queue mail in
the unit of work's one transaction. What they share is in `issuing` and `mails`; what they are
given beyond the unit of work (`Context`) is built by the composition root, `app.py`.

Client contact data goes only to the sealed tables and the encrypted mail outbox: never into a
published event or a log record.
"""

from services.invitations.handlers.commands import (
    AgentInvitation,
    Erasure,
    Resent,
    Supplied,
    agent_code,
    agent_invitations,
    change_participation,
    erase_client,
    funnel,
    open_requests,
    phone_task_step,
    resend_invitation,
    supply_clients,
    unsubscribe,
)
from services.invitations.handlers.context import TEMPLATES, Context, NotFoundError
from services.invitations.handlers.events import (
    agent_upserted,
    dispatcher,
    lead_assigned,
    removal_completed,
    survey_answered,
    transactions_closed,
)
from services.invitations.handlers.timers import run_compliance, run_invitation_timers

__all__ = [
    "TEMPLATES",
    "AgentInvitation",
    "Context",
    "Erasure",
    "NotFoundError",
    "Resent",
    "Supplied",
    "agent_code",
    "agent_invitations",
    "agent_upserted",
    "change_participation",
    "dispatcher",
    "erase_client",
    "funnel",
    "lead_assigned",
    "open_requests",
    "phone_task_step",
    "removal_completed",
    "resend_invitation",
    "run_compliance",
    "run_invitation_timers",
    "supply_clients",
    "survey_answered",
    "transactions_closed",
    "unsubscribe",
]
