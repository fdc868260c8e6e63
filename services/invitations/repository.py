"""asyncpg queries on the invitations schema. Client contacts are sealed with the PiiCipher and
found by blind index; every method runs in the caller's transaction."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.invitations.domain.funnel import ClosingCount
from services.invitations.domain.model import (
    ClientContact,
    ContactRequest,
    ContactRequestStatus,
    Invitation,
    InvitationStatus,
    PhoneTask,
)
from shared.contracts.mls import AgentUpserted, Side, TransactionClosed, TransactionKind
from shared.contracts.participation import ParticipationMode, ParticipationReason
from shared.contracts.removals import RemovalReason
from shared.crypto import PiiCipher


@dataclass(frozen=True)
class Agent:
    agent_id: str
    name: str
    email: str
    mode: ParticipationMode
    active: bool


@dataclass(frozen=True)
class Transaction:
    transaction_id: str
    kind: TransactionKind
    closed_at: datetime
    street: str
    city: str
    postcode: str


@dataclass(frozen=True)
class Representation:
    transaction: Transaction
    agent_id: str
    side: Side
    clients: list[ClientContact]


@dataclass(frozen=True)
class NewInvitation:
    invitation_id: str
    agent_id: str
    survey: str
    channel: str
    client: ClientContact
    client_index: str
    issued_at: datetime
    expires_at: datetime
    transaction_id: str | None = None
    lead_id: str | None = None
    removal_reason: str | None = None
    pin_hash: str | None = None
    token_hash: str | None = None
    unsubscribe_hash: str | None = None
    supplied_by_agent: bool = False
    trust_flags: tuple[str, ...] = ()
    origin: str = "mls"
    replaces: str | None = None
    corrections: int = 0


@dataclass(frozen=True)
class Erased:
    """How many rows an erasure emptied of a client's contact data."""

    invitations: int
    leads: int
    representations: int


@dataclass(frozen=True)
class StoredInvitation:
    invitation: Invitation
    survey: str
    transaction_id: str | None
    client: ClientContact | None
    client_index: str


class InvitationsRepository:
    def __init__(self, conn: asyncpg.Connection, cipher: PiiCipher) -> None:
        self.conn = conn
        self.cipher = cipher

    def index(self, value: str) -> str:
        return self.cipher.blind_index(value)

    def indexes(self, value: str) -> list[str]:
        """The value's index under the current and each retired PII key (design.md 3.5)."""
        return self.cipher.blind_indexes(value)

    def _seal(self, client: ClientContact) -> bytes:
        return self.cipher.encrypt(
            json.dumps({"name": client.name, "email": client.email, "phone": client.phone})
        )

    def _open(self, sealed: bytes | None) -> ClientContact | None:
        if sealed is None:
            return None
        return ClientContact(**json.loads(self.cipher.decrypt(bytes(sealed))))

    def client_indexes(self, clients: list[ClientContact]) -> list[str]:
        return sorted({self.index(v) for c in clients for v in (c.email, c.phone) if v})

    async def serialise(self, *keys: str) -> None:
        """Transaction-scoped advisory locks, taken in sorted order (no deadlocks).

        Two topics race: a transaction and the roster entry naming its agent (or a lead and its
        removal) may be handled at once by two consumers, each missing the other's uncommitted
        row. Locking the shared key first makes the second wait and then see the first's rows.
        """
        if keys:
            await self.conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(k)) FROM unnest($1::text[]) AS k ORDER BY k",
                sorted(set(keys)),
            )

    # agents and participation

    async def upsert_agent(self, agent: AgentUpserted, now: datetime) -> bool:
        """Save the roster entry; True the first time the agent is seen (default participation)."""
        inserted = await self.conn.fetchval(
            """INSERT INTO agents (agent_id, name, email, office_id, member_since, active, mode,
                                   mode_reason, mode_changed_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
               ON CONFLICT (agent_id) DO UPDATE SET name = EXCLUDED.name,
                   email = EXCLUDED.email, office_id = EXCLUDED.office_id,
                   member_since = EXCLUDED.member_since, active = EXCLUDED.active
               RETURNING xmax = 0""",
            agent.agent_id,
            agent.name,
            str(agent.email),
            agent.office_id,
            agent.member_since,
            agent.active,
            ParticipationMode.OPT_IN_HIDDEN.value,
            ParticipationReason.DEFAULT.value,
            now,
        )
        return bool(inserted)

    async def agent(self, agent_id: str, *, for_update: bool = False) -> Agent | None:
        row = await self.conn.fetchrow(
            "SELECT agent_id, name, email, mode, active FROM agents WHERE agent_id = $1"
            + (" FOR UPDATE" if for_update else ""),
            agent_id,
        )
        return _agent(row) if row is not None else None

    async def agents(self, agent_ids: Iterable[str]) -> dict[str, Agent]:
        rows = await self.conn.fetch(
            "SELECT agent_id, name, email, mode, active FROM agents "
            "WHERE agent_id = ANY($1::text[])",
            sorted(set(agent_ids)),
        )
        return {row["agent_id"]: _agent(row) for row in rows}

    async def set_mode(
        self, agent_id: str, mode: ParticipationMode, reason: ParticipationReason, now: datetime
    ) -> None:
        await self.conn.execute(
            "UPDATE agents SET mode = $2, mode_reason = $3, mode_changed_at = $4 "
            "WHERE agent_id = $1",
            agent_id,
            mode.value,
            reason.value,
            now,
        )

    async def waive_requests_of(self, agent_id: str, now: datetime) -> None:
        await self.conn.execute(
            "UPDATE contact_requests SET status = 'waived', resolved_at = $2 "
            "WHERE agent_id = $1 AND status = 'open'",
            agent_id,
            now,
        )

    # transactions and representations

    async def save_transactions(self, events: Sequence[TransactionClosed]) -> None:
        """The closings and their representations, two statements for any number of events;
        replays (same transaction again) change nothing."""
        await self.conn.execute(
            """INSERT INTO transactions (transaction_id, mls_number, kind, closed_at, street, city,
                                         postcode)
               SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[],
                                    $5::text[], $6::text[], $7::text[])
               ON CONFLICT (transaction_id) DO NOTHING""",
            [e.transaction_id for e in events],
            [e.mls_number for e in events],
            [e.kind.value for e in events],
            [e.closed_at for e in events],
            [e.property.street for e in events],
            [e.property.city for e in events],
            [e.property.postcode for e in events],
        )
        rows = []
        for event in events:
            for rep in event.representations:
                clients = [
                    ClientContact(c.name, c.email and str(c.email), c.phone) for c in rep.clients
                ]
                rows.append(
                    (
                        event.transaction_id,
                        rep.agent_id,
                        rep.side.value,
                        self.cipher.encrypt(json.dumps([c.__dict__ for c in clients])),
                        json.dumps(self.client_indexes(clients)),
                    )
                )
        await self.conn.execute(
            """INSERT INTO representations (transaction_id, agent_id, side, clients_sealed,
                                            client_indexes)
               SELECT t, a, s, c, ARRAY(SELECT jsonb_array_elements_text(i::jsonb))
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::text[])
                      AS r(t, a, s, c, i)
               ON CONFLICT (transaction_id, agent_id) DO NOTHING""",
            *(list(column) for column in zip(*rows, strict=True)) if rows else ([],) * 5,
        )

    async def transaction(self, transaction_id: str) -> Transaction | None:
        row = await self.conn.fetchrow(
            "SELECT * FROM transactions WHERE transaction_id = $1", transaction_id
        )
        return _transaction(row) if row else None

    async def unplanned_representations_of(
        self, transaction_ids: Sequence[str]
    ) -> list[Representation]:
        rows = await self.conn.fetch(
            """SELECT t.*, r.agent_id, r.side, r.clients_sealed
               FROM representations r JOIN transactions t USING (transaction_id)
               WHERE r.planned_at IS NULL AND r.transaction_id = ANY($1::text[])
               ORDER BY t.closed_at, r.transaction_id, r.agent_id FOR UPDATE OF r""",
            list(transaction_ids),
        )
        return [self._representation(row) for row in rows]

    async def unplanned_representations_of_agent(self, agent_id: str) -> list[Representation]:
        rows = await self.conn.fetch(
            """SELECT t.*, r.agent_id, r.side, r.clients_sealed
               FROM representations r JOIN transactions t USING (transaction_id)
               WHERE r.planned_at IS NULL AND r.agent_id = $1
               ORDER BY t.closed_at, r.transaction_id FOR UPDATE OF r""",
            agent_id,
        )
        return [self._representation(row) for row in rows]

    def _representation(self, row: asyncpg.Record) -> Representation:
        return Representation(
            _transaction(row),
            row["agent_id"],
            Side(row["side"]),
            self._clients(row["clients_sealed"]),
        )

    def _clients(self, sealed: bytes | None) -> list[ClientContact]:
        if sealed is None:
            return []
        return [ClientContact(**c) for c in json.loads(self.cipher.decrypt(bytes(sealed)))]

    async def mark_planned(self, keys: Sequence[tuple[str, str]], now: datetime) -> None:
        """(transaction_id, agent_id) pairs whose invitations, tasks and requests are made."""
        await self.conn.execute(
            """UPDATE representations r SET planned_at = $3
                 FROM unnest($1::text[], $2::text[]) AS k(transaction_id, agent_id)
                WHERE r.transaction_id = k.transaction_id AND r.agent_id = k.agent_id""",
            [transaction_id for transaction_id, _ in keys],
            [agent_id for _, agent_id in keys],
            now,
        )

    async def representation_clients(
        self, transaction_id: str, agent_id: str
    ) -> list[ClientContact] | None:
        """The clients as the MLS listed them, in order; [] once erased; None: no such side."""
        row = await self.conn.fetchrow(
            "SELECT clients_sealed FROM representations WHERE transaction_id = $1 "
            "AND agent_id = $2",
            transaction_id,
            agent_id,
        )
        return self._clients(row["clients_sealed"]) if row is not None else None

    async def representation_side(self, transaction_id: str, agent_id: str) -> Side | None:
        side = await self.conn.fetchval(
            "SELECT side FROM representations WHERE transaction_id = $1 AND agent_id = $2",
            transaction_id,
            agent_id,
        )
        return Side(side) if side else None

    async def transactions_of_agent_at(self, agent_id: str, postcode: str) -> list[Transaction]:
        rows = await self.conn.fetch(
            """SELECT t.* FROM transactions t JOIN representations r USING (transaction_id)
               WHERE r.agent_id = $1 AND lower(replace(t.postcode, ' ', ''))
                     = lower(replace($2, ' ', '')) ORDER BY t.closed_at DESC""",
            agent_id,
            postcode,
        )
        return [_transaction(row) for row in rows]

    # invitations

    async def add_invitations(self, news: Sequence[NewInvitation]) -> set[str]:
        """Insert each unless the same client was invited for its transaction/lead before;
        the ids inserted. One statement for the lot."""
        if not news:
            return set()
        rows = await self.conn.fetch(
            """INSERT INTO invitations (invitation_id, agent_id, survey, channel, transaction_id,
                   lead_id, removal_reason, client_index, contact_sealed, pin_hash, token_hash,
                   unsubscribe_hash, issued_at, expires_at, supplied_by_agent, trust_flags,
                   origin, replaces, corrections)
               SELECT i, a, s, c, t, l, r, x, cs, p, tk, u, ia, ea, sa,
                   coalesce(string_to_array(nullif(f, ''), ','), '{}'), o, rp, co
               FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                   $6::text[], $7::text[], $8::text[], $9::bytea[], $10::text[], $11::text[],
                   $12::text[], $13::timestamptz[], $14::timestamptz[], $15::boolean[],
                   $16::text[], $17::text[], $18::text[], $19::integer[])
                   AS n(i, a, s, c, t, l, r, x, cs, p, tk, u, ia, ea, sa, f, o, rp, co)
               ON CONFLICT DO NOTHING RETURNING invitation_id""",
            [n.invitation_id for n in news],
            [n.agent_id for n in news],
            [n.survey for n in news],
            [n.channel for n in news],
            [n.transaction_id for n in news],
            [n.lead_id for n in news],
            [n.removal_reason for n in news],
            [n.client_index for n in news],
            [self._seal(n.client) for n in news],
            [n.pin_hash for n in news],
            [n.token_hash for n in news],
            [n.unsubscribe_hash for n in news],
            [n.issued_at for n in news],
            [n.expires_at for n in news],
            [n.supplied_by_agent for n in news],
            [",".join(n.trust_flags) for n in news],  # unnest cannot take a ragged text[][]
            [n.origin for n in news],
            [n.replaces for n in news],
            [n.corrections for n in news],
        )
        return {row["invitation_id"] for row in rows}

    async def supplied_indexes(self, transaction_id: str, agent_id: str) -> set[str]:
        """Blind indexes of the contacts this agent entered for their side of the closing."""
        rows = await self.conn.fetch(
            """SELECT DISTINCT client_index FROM invitations
               WHERE transaction_id = $1 AND agent_id = $2 AND supplied_by_agent
                 AND replaced_by IS NULL""",
            transaction_id,
            agent_id,
        )
        return {row["client_index"] for row in rows}

    async def agents_supplying(self, client_indexes: list[str], agent_id: str) -> dict[str, int]:
        """Per contact (blind index): how many other agents entered it for a client."""
        rows = await self.conn.fetch(
            """SELECT client_index, count(DISTINCT agent_id) AS agents FROM invitations
               WHERE client_index = ANY($1::text[]) AND supplied_by_agent AND agent_id <> $2
               GROUP BY client_index""",
            client_indexes,
            agent_id,
        )
        return {row["client_index"]: row["agents"] for row in rows}

    async def due_invitations(
        self, now: datetime, remind_before: datetime, limit: int
    ) -> list[StoredInvitation]:
        """Open invitations to expire or remind, locked so instances never share one."""
        rows = await self.conn.fetch(
            """SELECT * FROM invitations
               WHERE status = 'open' AND (expires_at <= $1
                     OR (channel = 'email' AND reminded_at IS NULL AND issued_at <= $2))
               ORDER BY issued_at LIMIT $3 FOR UPDATE SKIP LOCKED""",
            now,
            remind_before,
            limit,
        )
        return [self._stored(row) for row in rows]

    async def close_invitation(
        self, invitation_id: str, status: InvitationStatus, now: datetime
    ) -> None:
        await self.conn.execute(
            "UPDATE invitations SET status = $2, closed_at = $3 WHERE invitation_id = $1",
            invitation_id,
            status.value,
            now,
        )

    async def mark_answered(self, invitation_id: str, at: datetime) -> bool:
        """The survey was answered: no reminder, no expiry from now on."""
        status = await self.conn.execute(
            """UPDATE invitations SET status = 'done', closed_at = $2
               WHERE invitation_id = $1 AND status = 'open'""",
            invitation_id,
            at,
        )
        return bool(status.endswith(" 1"))

    async def mark_reminded(self, invitation_id: str, now: datetime) -> None:
        await self.conn.execute(
            "UPDATE invitations SET reminded_at = $2 WHERE invitation_id = $1", invitation_id, now
        )

    async def add_unsubscribe_link(
        self, unsubscribe_hash: str, invitation_id: str, now: datetime
    ) -> None:
        """A later mail's link (a reminder's), beside the first mail's, which keeps working."""
        await self.conn.execute(
            "INSERT INTO unsubscribe_links (unsubscribe_hash, invitation_id, created_at) "
            "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            unsubscribe_hash,
            invitation_id,
            now,
        )

    async def invitation_by_unsubscribe(
        self, unsubscribe_hashes: list[str]
    ) -> StoredInvitation | None:
        """The invitation whose mail carried the link: the first mail or any later one (the
        link token's hash under each pepper: design.md 3.5)."""
        row = await self.conn.fetchrow(
            """SELECT * FROM invitations WHERE unsubscribe_hash = ANY($1::text[])
               UNION ALL
               SELECT i.* FROM unsubscribe_links l JOIN invitations i USING (invitation_id)
                WHERE l.unsubscribe_hash = ANY($1::text[])
               LIMIT 1""",
            unsubscribe_hashes,
        )
        return self._stored(row) if row else None

    def _stored(self, row: asyncpg.Record) -> StoredInvitation:
        return StoredInvitation(
            Invitation(
                row["invitation_id"],
                row["agent_id"],
                row["issued_at"],
                row["expires_at"],
                InvitationStatus(row["status"]),
                row["reminded_at"],
                row["channel"],
            ),
            row["survey"],
            row["transaction_id"],
            self._open(row["contact_sealed"]),
            row["client_index"],
        )

    # corrections and the agent's view of their invitations (docs/design.md 1.10)

    async def agent_invitation(
        self, invitation_id: str, agent_id: str, *, for_update: bool = False
    ) -> tuple[StoredInvitation, asyncpg.Record] | None:
        """One of the agent's invitations (None if not theirs), with its raw row."""
        row = await self.conn.fetchrow(
            "SELECT * FROM invitations WHERE invitation_id = $1 AND agent_id = $2"
            + (" FOR UPDATE" if for_update else ""),
            invitation_id,
            agent_id,
        )
        return (self._stored(row), row) if row else None

    async def mark_replaced(self, invitation_id: str, replaced_by: str) -> None:
        await self.conn.execute(
            "UPDATE invitations SET replaced_by = $2 WHERE invitation_id = $1",
            invitation_id,
            replaced_by,
        )

    async def invitations_of_agent(
        self, agent_id: str, transaction_id: str | None, limit: int
    ) -> list[tuple[StoredInvitation, asyncpg.Record]]:
        """The agent's invitations for closings (newest first), of one closing if named."""
        rows = await self.conn.fetch(
            """SELECT * FROM invitations
               WHERE agent_id = $1 AND survey = 'transaction'
                 AND ($2::text IS NULL OR transaction_id = $2)
               ORDER BY issued_at DESC, invitation_id LIMIT $3""",
            agent_id,
            transaction_id,
            limit,
        )
        return [(self._stored(row), row) for row in rows]

    async def funnel_closings(
        self, agent_id: str, start: datetime, end: datetime
    ) -> list[ClosingCount]:
        """Per side of a closing of the agent's in [start, end): clients listed, and the
        invitations of its clients not replaced by a correction, by route."""
        rows = await self.conn.fetch(
            """SELECT r.clients_sealed,
                      count(i.invitation_id) FILTER (
                          WHERE i.channel = 'email' AND i.origin IS DISTINCT FROM 'code') AS email,
                      count(i.invitation_id) FILTER (WHERE i.channel = 'phone') AS phone,
                      count(i.invitation_id) FILTER (WHERE i.origin = 'code') AS code
                 FROM representations r
                 JOIN transactions t ON t.transaction_id = r.transaction_id
                 LEFT JOIN invitations i
                        ON i.transaction_id = r.transaction_id AND i.agent_id = r.agent_id
                       AND i.survey = 'transaction' AND i.replaced_by IS NULL
                WHERE r.agent_id = $1 AND t.closed_at >= $2 AND t.closed_at < $3
                GROUP BY r.transaction_id, r.clients_sealed""",
            agent_id,
            start,
            end,
        )
        return [
            ClosingCount(
                len(self._clients(row["clients_sealed"])), row["email"], row["phone"], row["code"]
            )
            for row in rows
        ]

    # suppression and erasure

    async def suppressed_among(self, email_indexes: list[str]) -> set[str]:
        rows = await self.conn.fetch(
            "SELECT email_index FROM suppressions WHERE email_index = ANY($1::text[])",
            email_indexes,
        )
        return {row["email_index"] for row in rows}

    async def suppress(self, email_index: str, now: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO suppressions (email_index, suppressed_at) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING",
            email_index,
            now,
        )

    async def invitation_ids_of_clients(self, client_indexes: Sequence[str]) -> list[str]:
        """Every invitation these clients had (transaction and removal surveys, any status)."""
        rows = await self.conn.fetch(
            "SELECT invitation_id FROM invitations WHERE client_index = ANY($1::text[]) "
            "ORDER BY issued_at, invitation_id",
            list(client_indexes),
        )
        return [row["invitation_id"] for row in rows]

    async def open_invitations_of_clients(
        self, client_indexes: Sequence[str]
    ) -> list[StoredInvitation]:
        rows = await self.conn.fetch(
            "SELECT * FROM invitations WHERE client_index = ANY($1::text[]) AND status = 'open' "
            "ORDER BY invitation_id FOR UPDATE",
            list(client_indexes),
        )
        return [self._stored(row) for row in rows]

    async def erase_clients(self, client_indexes: Sequence[str], now: datetime) -> Erased:
        """Forget the contact data and names of the clients with these blind indexes; the
        indexes stay, so replays still never re-invite them. Safe to run twice."""
        wanted = list(client_indexes)
        # the leads and representations first: their row locks make a survey being planned
        # for this client now either finish before the invitations are erased below, or wait
        # and find the client erased (`lead_client` reads FOR SHARE)
        leads = await self.conn.execute(
            "UPDATE leads SET client_sealed = NULL WHERE client_indexes && $1::text[] "
            "AND client_sealed IS NOT NULL",
            wanted,
        )
        representations = await self._erase_from_representations(set(wanted), now)
        invitations = await self.conn.execute(
            "UPDATE invitations SET contact_sealed = NULL WHERE client_index = ANY($1::text[]) "
            "AND contact_sealed IS NOT NULL",
            wanted,
        )
        return Erased(
            invitations=_count(invitations), leads=_count(leads), representations=representations
        )

    async def _erase_from_representations(self, erased: set[str], now: datetime) -> int:
        """A representation seals all its clients in one list: seal it again without the erased
        ones. One left with no client is marked planned, so that its agent is not asked for the
        erased client's contact when the roster names them."""
        rows = await self.conn.fetch(
            """SELECT transaction_id, agent_id, clients_sealed FROM representations
               WHERE client_indexes && $1::text[] AND clients_sealed IS NOT NULL
               ORDER BY transaction_id, agent_id FOR UPDATE""",
            sorted(erased),
        )
        changed = 0
        for row in rows:
            clients = [
                ClientContact(**item)
                for item in json.loads(self.cipher.decrypt(bytes(row["clients_sealed"])))
            ]
            others = [c for c in clients if not erased & set(self.client_indexes([c]))]
            if len(others) == len(clients):
                continue
            await self.conn.execute(
                """UPDATE representations SET clients_sealed = $3,
                       planned_at = CASE WHEN $3::bytea IS NULL THEN COALESCE(planned_at, $4)
                                         ELSE planned_at END
                   WHERE transaction_id = $1 AND agent_id = $2""",
                row["transaction_id"],
                row["agent_id"],
                self.cipher.encrypt(json.dumps([c.__dict__ for c in others])) if others else None,
                now,
            )
            changed += 1
        return changed

    # contact requests

    async def add_contact_request(self, request: ContactRequest) -> bool:
        return bool(
            await self.conn.fetchval(
                """INSERT INTO contact_requests (transaction_id, agent_id, closed_at, deadline,
                                                 clients_missing, clients_listed)
                   VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING true""",
                request.transaction_id,
                request.agent_id,
                request.closed_at,
                request.deadline,
                list(request.missing),
                request.clients_listed,
            )
        )

    async def contact_request(self, transaction_id: str, agent_id: str) -> ContactRequest | None:
        """One agent's request for one closing, locked for the answer."""
        row = await self.conn.fetchrow(
            "SELECT * FROM contact_requests WHERE transaction_id = $1 AND agent_id = $2 FOR UPDATE",
            transaction_id,
            agent_id,
        )
        return _request(row) if row else None

    async def save_request(self, request: ContactRequest, now: datetime) -> None:
        """The clients still missing and the status (`answer_request`'s result)."""
        await self.conn.execute(
            """UPDATE contact_requests SET clients_missing = $3, status = $4,
                      resolved_at = CASE WHEN $4 = 'open' THEN NULL ELSE $5::timestamptz END
               WHERE transaction_id = $1 AND agent_id = $2""",
            request.transaction_id,
            request.agent_id,
            list(request.missing),
            request.status.value,
            now,
        )

    async def open_requests_of(
        self, agent_id: str, *, for_update: bool = False
    ) -> list[ContactRequest]:
        rows = await self.conn.fetch(
            "SELECT * FROM contact_requests WHERE agent_id = $1 AND status = 'open' "
            "ORDER BY deadline" + (" FOR UPDATE" if for_update else ""),
            agent_id,
        )
        return [_request(row) for row in rows]

    async def save_clocks(self, requests: Sequence[ContactRequest]) -> None:
        """Deadlines and pauses of these requests, one statement for the lot."""
        if requests:
            await self.conn.execute(
                """UPDATE contact_requests c SET deadline = k.deadline, paused_at = k.paused_at
                     FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[])
                          AS k(transaction_id, agent_id, deadline, paused_at)
                    WHERE c.transaction_id = k.transaction_id AND c.agent_id = k.agent_id""",
                [r.transaction_id for r in requests],
                [r.agent_id for r in requests],
                [r.deadline for r in requests],
                [r.paused_at for r in requests],
            )

    async def due_requests(
        self, now: datetime, remind_if_deadline_before: datetime, limit: int
    ) -> list[ContactRequest]:
        """Open requests past their deadline or due a reminder, locked (SKIP LOCKED); paused
        clocks (the agent is inactive) are never due."""
        rows = await self.conn.fetch(
            """SELECT * FROM contact_requests
               WHERE status = 'open' AND paused_at IS NULL AND (deadline <= $1
                     OR (reminded_at IS NULL AND deadline <= $2))
               ORDER BY deadline LIMIT $3 FOR UPDATE SKIP LOCKED""",
            now,
            remind_if_deadline_before,
            limit,
        )
        return [_request(row) for row in rows]

    async def resolve_request(
        self, request: ContactRequest, status: ContactRequestStatus, now: datetime
    ) -> None:
        await self.conn.execute(
            "UPDATE contact_requests SET status = $3, resolved_at = $4 "
            "WHERE transaction_id = $1 AND agent_id = $2",
            request.transaction_id,
            request.agent_id,
            status.value,
            now,
        )

    async def mark_request_reminded(self, request: ContactRequest, now: datetime) -> None:
        await self.conn.execute(
            "UPDATE contact_requests SET reminded_at = $3 WHERE transaction_id = $1 AND agent_id = $2",
            request.transaction_id,
            request.agent_id,
            now,
        )

    # phone tasks

    async def phone_tasks(self, limit: int) -> list[asyncpg.Record]:
        return list(
            await self.conn.fetch(
                """SELECT invitation_id, agent_id, transaction_id, lead_id, survey, removal_reason,
                          issued_at, expires_at, claimed_by, claimed_at, status
                   FROM invitations WHERE channel = 'phone' AND status = 'open'
                   ORDER BY issued_at LIMIT $1""",
                limit,
            )
        )

    async def phone_task(self, invitation_id: str) -> tuple[PhoneTask, ClientContact | None] | None:
        row = await self.conn.fetchrow(
            "SELECT * FROM invitations WHERE invitation_id = $1 AND channel = 'phone' FOR UPDATE",
            invitation_id,
        )
        if row is None:
            return None
        status = InvitationStatus(row["status"])
        task = PhoneTask(
            row["invitation_id"], row["claimed_by"], status is InvitationStatus.DONE, status
        )
        return task, self._open(row["contact_sealed"])

    async def save_phone_task(self, task: PhoneTask, now: datetime) -> None:
        await self.conn.execute(
            """UPDATE invitations SET claimed_by = $2, claimed_at = COALESCE(claimed_at, $3),
                      status = $4, closed_at = CASE WHEN $4 = 'done' THEN $3 END
               WHERE invitation_id = $1""",
            task.invitation_id,
            task.claimed_by,
            now,
            task.status.value,
        )

    # leads and removal surveys

    async def save_lead(self, lead_id: str, agent_id: str, client: ClientContact) -> None:
        """A lead whose client was erased stays erased when its assignment is replayed."""
        await self.conn.execute(
            """INSERT INTO leads (lead_id, agent_id, client_sealed, client_indexes)
               VALUES ($1, $2, $3, $4) ON CONFLICT (lead_id, agent_id) DO UPDATE SET
                   client_sealed = EXCLUDED.client_sealed, client_indexes = EXCLUDED.client_indexes
               WHERE leads.client_sealed IS NOT NULL""",
            lead_id,
            agent_id,
            self._seal(client),
            self.client_indexes([client]),
        )

    async def lead_client(self, lead_id: str, agent_id: str) -> ClientContact | None:
        sealed = await self.conn.fetchval(
            "SELECT client_sealed FROM leads WHERE lead_id = $1 AND agent_id = $2 FOR SHARE",
            lead_id,
            agent_id,
        )
        return self._open(sealed)

    async def lead_known(self, lead_id: str, agent_id: str) -> bool:
        return bool(
            await self.conn.fetchval(
                "SELECT true FROM leads WHERE lead_id = $1 AND agent_id = $2", lead_id, agent_id
            )
        )

    async def hold_removal(
        self,
        lead_id: str,
        agent_id: str,
        reason: str,
        completed_at: datetime,
        handed_to: str | None = None,
    ) -> None:
        await self.conn.execute(
            """INSERT INTO pending_removal_surveys
                   (lead_id, agent_id, reason, completed_at, handed_to_agent_id)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING""",
            lead_id,
            agent_id,
            reason,
            completed_at,
            handed_to,
        )

    async def take_held_removal(self, lead_id: str, agent_id: str) -> HeldRemoval | None:
        row = await self.conn.fetchrow(
            "DELETE FROM pending_removal_surveys WHERE lead_id = $1 AND agent_id = $2 "
            "RETURNING lead_id, reason, handed_to_agent_id",
            lead_id,
            agent_id,
        )
        return _held(row) if row else None

    async def take_held_removals_of_agent(self, agent_id: str) -> list[HeldRemoval]:
        """The agent's held removal surveys whose lead is known: taken."""
        rows = await self.conn.fetch(
            """DELETE FROM pending_removal_surveys p
               WHERE p.agent_id = $1 AND EXISTS (
                   SELECT 1 FROM leads l WHERE l.lead_id = p.lead_id AND l.agent_id = p.agent_id)
               RETURNING p.lead_id, p.reason, p.handed_to_agent_id""",
            agent_id,
        )
        return sorted((_held(row) for row in rows), key=lambda held: held.lead_id)


@dataclass(frozen=True)
class HeldRemoval:
    """A removal survey waiting for its lead or its agent's roster entry."""

    lead_id: str
    reason: RemovalReason
    handed_to: str | None


def _held(row: asyncpg.Record) -> HeldRemoval:
    return HeldRemoval(row["lead_id"], RemovalReason(row["reason"]), row["handed_to_agent_id"])


def _agent(row: asyncpg.Record) -> Agent:
    return Agent(
        row["agent_id"], row["name"], row["email"], ParticipationMode(row["mode"]), row["active"]
    )


def _transaction(row: asyncpg.Record) -> Transaction:
    return Transaction(
        row["transaction_id"],
        TransactionKind(row["kind"]),
        row["closed_at"],
        row["street"],
        row["city"],
        row["postcode"],
    )


def _request(row: asyncpg.Record) -> ContactRequest:
    return ContactRequest(
        row["transaction_id"],
        row["agent_id"],
        row["closed_at"],
        row["deadline"],
        ContactRequestStatus(row["status"]),
        row["reminded_at"],
        tuple(row["clients_missing"]),
        row["clients_listed"],
        row["paused_at"],
    )


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])
