"""asyncpg queries on the removals schema: leads (client contact encrypted), closings, removal
requests and their steps. Every method runs in the caller's transaction."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.removals.domain.model import (
    Lead,
    LeadStatus,
    Proof,
    RemovalRequest,
    RemovalStatus,
    Step,
    StepKind,
)
from services.removals.domain.proof import ProofDocument, ProofFile
from shared.contracts.leads import LeadClient
from shared.contracts.removals import RemovalReason
from shared.crypto import PiiCipher

_LEAD_COLUMNS = "lead_id, agent_id, status, assigned_at, client_responded_at, handed_from_agent_id"
_REQUEST_COLUMNS = """removal_id, lead_id, agent_id, reason, notes, client_ever_responded,
    proof_document_ref, proof_reference, status, requested_at, decided_by, decided_at,
    decision_note, completed_at, handed_to_agent_id, proof_document_id"""
_DOCUMENT_COLUMNS = """document_id, lead_id, agent_id, filename, media_type, size_bytes, sha256,
    uploaded_at, erased_at"""


@dataclass(frozen=True)
class LeadRecord:
    """A lead as its agent sees it: with the client's contact, decrypted (None once erased)."""

    lead: Lead
    client: LeadClient | None
    completed_by_transaction: str | None
    completed_at: datetime | None
    client_erased_at: datetime | None = None


class RemovalsRepository:
    def __init__(self, conn: asyncpg.Connection, cipher: PiiCipher) -> None:
        self.conn = conn
        self.cipher = cipher

    def email_index(self, email: str) -> str:
        return self.cipher.blind_index(email)

    def email_indexes(self, email: str) -> list[str]:
        """The index under the current and each retired PII key (design.md 3.5)."""
        return self.cipher.blind_indexes(email)

    def phone_index(self, client: LeadClient) -> str | None:
        return self.cipher.blind_index(client.phone) if client.phone else None

    # leads

    async def save_assignment(
        self, lead_id: str, agent_id: str, client: LeadClient, assigned_at: datetime, now: datetime
    ) -> Lead:
        """Insert the lead, or refresh the client's contact from a newer assignment; the lead's
        status is never reset by a replayed or repeated assignment, and a lead whose client was
        erased stays erased."""
        row = await self.conn.fetchrow(
            f"""INSERT INTO leads (lead_id, agent_id, client_sealed, email_index, phone_index,
                                   phone_indexed, assigned_at, updated_at)
                VALUES ($1, $2, $3, $4, $5, true, $6, $7)
                ON CONFLICT (lead_id, agent_id) DO UPDATE SET
                    client_sealed = EXCLUDED.client_sealed,
                    email_index = EXCLUDED.email_index,
                    phone_index = EXCLUDED.phone_index,
                    phone_indexed = true,
                    updated_at = EXCLUDED.updated_at
                WHERE EXCLUDED.assigned_at >= leads.assigned_at
                  AND leads.client_erased_at IS NULL
                RETURNING {_LEAD_COLUMNS}""",
            lead_id,
            agent_id,
            self.cipher.encrypt(client.model_dump_json()),
            self.email_index(client.email) if client.email else None,
            self.phone_index(client),
            assigned_at,
            now,
        )
        if row is None:  # an older assignment replayed, or the client erased: nothing changes
            return await self._lead_or_fail(lead_id, agent_id)
        return _lead(row)

    async def hand_over(self, handed: Lead, now: datetime) -> None:
        """The handed-over client becomes the new agent's open lead, with the contact the old
        agent's lead holds (copied sealed: it never leaves this database). A lead the new
        agent had before and lost is opened again as theirs; one still open or pending is
        theirs already and stays as it is. The copy keeps the indexes an erasure finds it by."""
        if handed.handed_from is None:
            raise ValueError(f"lead {handed.lead_id} was not handed over by another agent")
        await self.conn.execute(
            """INSERT INTO leads (lead_id, agent_id, client_sealed, email_index, phone_index,
                                  phone_indexed, client_erased_at, assigned_at, status,
                                  handed_from_agent_id, updated_at)
               SELECT lead_id, $2, client_sealed, email_index, phone_index, phone_indexed,
                      client_erased_at, $4, $5, agent_id, $6
                 FROM leads WHERE lead_id = $1 AND agent_id = $3
               ON CONFLICT (lead_id, agent_id) DO UPDATE SET
                   client_sealed = EXCLUDED.client_sealed,
                   email_index = EXCLUDED.email_index,
                   phone_index = EXCLUDED.phone_index,
                   phone_indexed = EXCLUDED.phone_indexed,
                   client_erased_at = EXCLUDED.client_erased_at,
                   assigned_at = EXCLUDED.assigned_at,
                   status = EXCLUDED.status,
                   handed_from_agent_id = EXCLUDED.handed_from_agent_id,
                   completed_by_transaction = NULL,
                   completed_at = NULL,
                   updated_at = EXCLUDED.updated_at
               WHERE leads.status IN ('removed', 'completed')""",
            handed.lead_id,
            handed.agent_id,
            handed.handed_from,
            handed.assigned_at,
            handed.status.value,
            now,
        )

    async def lead_for_update(self, lead_id: str, agent_id: str) -> Lead | None:
        row = await self.conn.fetchrow(
            f"SELECT {_LEAD_COLUMNS} FROM leads WHERE lead_id = $1 AND agent_id = $2 FOR UPDATE",
            lead_id,
            agent_id,
        )
        return _lead(row) if row else None

    async def lead_exists(self, lead_id: str) -> bool:
        found = await self.conn.fetchval(
            "SELECT true FROM leads WHERE lead_id = $1 LIMIT 1", lead_id
        )
        return bool(found)

    async def set_lead_status(
        self, lead: Lead, status: LeadStatus, now: datetime, *, transaction_id: str | None = None
    ) -> None:
        await self.conn.execute(
            """UPDATE leads SET status = $3, updated_at = $4,
                   completed_by_transaction = COALESCE($5, completed_by_transaction),
                   completed_at = CASE WHEN $3 = 'completed' THEN $4 ELSE completed_at END
               WHERE lead_id = $1 AND agent_id = $2""",
            lead.lead_id,
            lead.agent_id,
            status.value,
            now,
            transaction_id,
        )

    async def set_client_responded_at(self, lead: Lead, now: datetime) -> None:
        await self.conn.execute(
            """UPDATE leads SET client_responded_at = $3, updated_at = $4
               WHERE lead_id = $1 AND agent_id = $2""",
            lead.lead_id,
            lead.agent_id,
            lead.client_responded_at,
            now,
        )

    async def leads_of(
        self, agent_id: str, status: LeadStatus | None, limit: int
    ) -> list[LeadRecord]:
        rows = await self.conn.fetch(
            f"""SELECT {_LEAD_COLUMNS}, client_sealed, completed_by_transaction, completed_at,
                       client_erased_at
                FROM leads WHERE agent_id = $1 AND ($2::text IS NULL OR status = $2)
                ORDER BY assigned_at DESC, lead_id LIMIT $3""",
            agent_id,
            status.value if status else None,
            limit,
        )
        return [
            LeadRecord(
                lead=_lead(row),
                client=LeadClient.model_validate_json(self.cipher.decrypt(row["client_sealed"]))
                if row["client_sealed"] is not None
                else None,
                completed_by_transaction=row["completed_by_transaction"],
                completed_at=row["completed_at"],
                client_erased_at=row["client_erased_at"],
            )
            for row in rows
        ]

    # erasure

    async def index_phones_of_older_leads(self, batch: int = 500) -> int:
        """Leads stored before phone indexes existed (migration 0002) get theirs: SQL could not
        compute them, the service can. A no-op once done. The number indexed now."""
        indexed = 0
        while True:
            rows = await self.conn.fetch(
                """SELECT lead_id, agent_id, client_sealed FROM leads WHERE NOT phone_indexed
                   ORDER BY lead_id, agent_id LIMIT $1 FOR UPDATE""",
                batch,
            )
            if not rows:
                return indexed
            phones = [
                self.phone_index(
                    LeadClient.model_validate_json(self.cipher.decrypt(row["client_sealed"]))
                )
                if row["client_sealed"] is not None
                else None
                for row in rows
            ]
            await self.conn.execute(
                """UPDATE leads l SET phone_index = u.phone_index, phone_indexed = true
                   FROM unnest($1::text[], $2::text[], $3::text[]) AS u(lead_id, agent_id,
                                                                         phone_index)
                   WHERE l.lead_id = u.lead_id AND l.agent_id = u.agent_id""",
                [row["lead_id"] for row in rows],
                [row["agent_id"] for row in rows],
                phones,
            )
            indexed += len(rows)

    async def erase_clients(
        self, client_indexes: Sequence[str], now: datetime
    ) -> list[tuple[str, str]]:
        """Forget the contact of the leads whose client's email or phone has one of these blind
        indexes (the indexes stay: a later closing still completes the lead). The (lead_id,
        agent_id) of every such lead, erased now or before."""
        rows = await self.conn.fetch(
            """UPDATE leads SET client_sealed = NULL,
                   client_erased_at = COALESCE(client_erased_at, $2),
                   updated_at = CASE WHEN client_erased_at IS NULL THEN $2 ELSE updated_at END
               WHERE email_index = ANY($1::text[]) OR phone_index = ANY($1::text[])
               RETURNING lead_id, agent_id""",
            list(client_indexes),
            now,
        )
        return sorted((row["lead_id"], row["agent_id"]) for row in rows)

    async def requests_of_leads(self, leads: Sequence[tuple[str, str]]) -> list[RemovalRequest]:
        rows = await self.conn.fetch(
            f"""SELECT {_REQUEST_COLUMNS} FROM removal_requests
                WHERE (lead_id, agent_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
                ORDER BY requested_at, removal_id FOR UPDATE""",
            [lead_id for lead_id, _ in leads],
            [agent_id for _, agent_id in leads],
        )
        return await self._with_steps(rows)

    async def save_texts(self, request: RemovalRequest) -> None:
        """Write the request's free text (notes, proof, decision note, step notes) as given."""
        proof = request.proof or Proof()
        await self.conn.execute(
            """UPDATE removal_requests SET notes = $2, proof_document_ref = $3,
                   proof_reference = $4, decision_note = $5
               WHERE removal_id = $1""",
            request.removal_id,
            request.notes,
            proof.document_ref,
            proof.reference,
            request.decision_note,
        )
        # steps are stored, and loaded, in id order: the n-th step is the n-th row
        await self.conn.execute(
            """UPDATE removal_steps s SET note = n.note
               FROM (SELECT id, row_number() OVER (ORDER BY id) AS position
                       FROM removal_steps WHERE removal_id = $1) p,
                    unnest($2::text[]) WITH ORDINALITY AS n(note, position)
               WHERE s.id = p.id AND p.position = n.position AND s.note <> n.note""",
            request.removal_id,
            [step.note for step in request.steps],
        )

    async def rewrite_event_notes(self, ce_ids: Sequence[str], note: str) -> None:
        """The `note` of these events in the outbox (unpublished ones go out with it; published
        ones no longer hold the old text here)."""
        await self.conn.execute(
            """UPDATE outbox SET payload = convert_to(
                   jsonb_set(convert_from(payload, 'UTF8')::jsonb, '{note}', to_jsonb($2::text))
                       ::text, 'UTF8')
               WHERE ce_id = ANY($1::text[])""",
            list(ce_ids),
            note,
        )

    async def erase_proof_documents(self, leads: Sequence[tuple[str, str]], now: datetime) -> int:
        """Forget the bytes and file name of these leads' proof documents (the rest stays for
        the record); the number erased now."""
        erased = await self.conn.fetch(
            """UPDATE proof_documents SET content_sealed = NULL, filename = NULL, erased_at = $3
               WHERE (lead_id, agent_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
                 AND erased_at IS NULL
               RETURNING document_id""",
            [lead_id for lead_id, _ in leads],
            [agent_id for _, agent_id in leads],
            now,
        )
        return len(erased)

    # proof documents

    async def add_proof_document(
        self, document_id: str, lead: Lead, proof: ProofFile, now: datetime
    ) -> ProofDocument:
        # sealed as text (the cipher's and the rekey job's unit): base64 of the bytes
        sealed = self.cipher.encrypt(base64.b64encode(proof.content).decode("ascii"))
        row = await self.conn.fetchrow(
            f"""INSERT INTO proof_documents (document_id, lead_id, agent_id, filename,
                    media_type, size_bytes, sha256, content_sealed, uploaded_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                RETURNING {_DOCUMENT_COLUMNS}""",
            document_id,
            lead.lead_id,
            lead.agent_id,
            proof.filename,
            proof.media_type,
            proof.size,
            proof.sha256,
            sealed,
            now,
        )
        return _document(row)

    async def proof_documents(self, document_ids: Sequence[str]) -> dict[str, ProofDocument]:
        rows = await self.conn.fetch(
            f"SELECT {_DOCUMENT_COLUMNS} FROM proof_documents WHERE document_id = ANY($1::text[])",
            list(document_ids),
        )
        return {row["document_id"]: _document(row) for row in rows}

    async def proof_document(self, document_id: str) -> ProofDocument | None:
        return (await self.proof_documents([document_id])).get(document_id)

    async def proof_content(self, document_id: str) -> bytes | None:
        """The document's bytes, decrypted; None once erased (or when there is none)."""
        sealed = await self.conn.fetchval(
            "SELECT content_sealed FROM proof_documents WHERE document_id = $1", document_id
        )
        if sealed is None:
            return None
        return base64.b64decode(self.cipher.decrypt(bytes(sealed)))

    # closings

    async def record_closing(
        self, transaction_id: str, closed_at: datetime, clients: Sequence[tuple[str, str]]
    ) -> None:
        """Remember which (agent, client email index) pairs closed, for leads assigned later."""
        await self.conn.execute(
            """INSERT INTO closings (agent_id, email_index, transaction_id, closed_at)
               SELECT agent_id, email_index, $3, $4
               FROM unnest($1::text[], $2::text[]) AS c(agent_id, email_index)
               ON CONFLICT DO NOTHING""",
            [agent_id for agent_id, _ in clients],
            [email_index for _, email_index in clients],
            transaction_id,
            closed_at,
        )

    async def leads_of_clients_for_update(self, clients: Sequence[tuple[str, str]]) -> list[Lead]:
        """Open or pending leads of these (agent, client email index) pairs, locked."""
        rows = await self.conn.fetch(
            f"""SELECT {_LEAD_COLUMNS} FROM leads
                WHERE (agent_id, email_index) IN (
                    SELECT * FROM unnest($1::text[], $2::text[]))
                  AND status IN ('open', 'removal_pending')
                ORDER BY lead_id, agent_id
                FOR UPDATE""",
            [agent_id for agent_id, _ in clients],
            [email_index for _, email_index in clients],
        )
        return [_lead(row) for row in rows]

    async def closing_since(
        self, agent_id: str, email_indexes: list[str], since: datetime
    ) -> tuple[str, datetime] | None:
        """The first transaction this client (by any of their email indexes) closed with this
        agent at or after `since`."""
        row = await self.conn.fetchrow(
            """SELECT transaction_id, closed_at FROM closings
               WHERE agent_id = $1 AND email_index = ANY($2::text[]) AND closed_at >= $3
               ORDER BY closed_at, transaction_id LIMIT 1""",
            agent_id,
            email_indexes,
            since,
        )
        return (row["transaction_id"], row["closed_at"]) if row else None

    # removal requests

    async def add_request(self, request: RemovalRequest) -> None:
        proof = request.proof or Proof()
        await self.conn.execute(
            f"""INSERT INTO removal_requests ({_REQUEST_COLUMNS})
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)""",
            request.removal_id,
            request.lead_id,
            request.agent_id,
            request.reason.value,
            request.notes,
            request.client_ever_responded,
            proof.document_ref,
            proof.reference,
            request.status.value,
            request.requested_at,
            request.decided_by,
            request.decided_at,
            request.decision_note,
            request.completed_at,
            request.handed_to,
            proof.document_id,
        )

    async def update_request(self, request: RemovalRequest) -> None:
        await self.conn.execute(
            """UPDATE removal_requests SET status = $2, decided_by = $3, decided_at = $4,
                   decision_note = $5, completed_at = $6, handed_to_agent_id = $7
               WHERE removal_id = $1""",
            request.removal_id,
            request.status.value,
            request.decided_by,
            request.decided_at,
            request.decision_note,
            request.completed_at,
            request.handed_to,
        )

    async def add_steps(self, removal_id: str, steps: Sequence[Step]) -> None:
        await self.conn.executemany(
            "INSERT INTO removal_steps (removal_id, step, actor, at, note) VALUES ($1, $2, $3, $4, $5)",
            [(removal_id, step.kind.value, step.actor, step.at, step.note) for step in steps],
        )

    async def request(self, removal_id: str, *, for_update: bool = False) -> RemovalRequest | None:
        row = await self.conn.fetchrow(
            f"SELECT {_REQUEST_COLUMNS} FROM removal_requests WHERE removal_id = $1"
            + (" FOR UPDATE" if for_update else ""),
            removal_id,
        )
        if row is None:
            return None
        return (await self._with_steps([row]))[0]

    async def pending_request_for(self, lead: Lead) -> RemovalRequest | None:
        row = await self.conn.fetchrow(
            f"""SELECT {_REQUEST_COLUMNS} FROM removal_requests
                WHERE lead_id = $1 AND agent_id = $2 AND status = 'pending' FOR UPDATE""",
            lead.lead_id,
            lead.agent_id,
        )
        if row is None:
            return None
        return (await self._with_steps([row]))[0]

    async def requests(
        self, *, agent_id: str | None, status: RemovalStatus | None, limit: int
    ) -> list[RemovalRequest]:
        """Oldest first, so the coordinators' queue is worked in arrival order."""
        rows = await self.conn.fetch(
            f"""SELECT {_REQUEST_COLUMNS} FROM removal_requests
                WHERE ($1::text IS NULL OR agent_id = $1) AND ($2::text IS NULL OR status = $2)
                ORDER BY requested_at, removal_id LIMIT $3""",
            agent_id,
            status.value if status else None,
            limit,
        )
        return await self._with_steps(rows)

    async def _with_steps(self, rows: Sequence[asyncpg.Record]) -> list[RemovalRequest]:
        ids = [row["removal_id"] for row in rows]
        step_rows = await self.conn.fetch(
            """SELECT removal_id, step, actor, at, note FROM removal_steps
               WHERE removal_id = ANY($1::text[]) ORDER BY removal_id, id""",
            ids,
        )
        steps: dict[str, list[Step]] = {removal_id: [] for removal_id in ids}
        for step in step_rows:
            steps[step["removal_id"]].append(
                Step(StepKind(step["step"]), step["actor"], step["at"], step["note"])
            )
        return [_request(row, tuple(steps[row["removal_id"]])) for row in rows]

    async def _lead_or_fail(self, lead_id: str, agent_id: str) -> Lead:
        row = await self.conn.fetchrow(
            f"SELECT {_LEAD_COLUMNS} FROM leads WHERE lead_id = $1 AND agent_id = $2",
            lead_id,
            agent_id,
        )
        if row is None:
            raise LookupError(f"no lead {lead_id} of {agent_id}")
        return _lead(row)


def _lead(row: asyncpg.Record) -> Lead:
    return Lead(
        lead_id=row["lead_id"],
        agent_id=row["agent_id"],
        status=LeadStatus(row["status"]),
        assigned_at=row["assigned_at"],
        client_responded_at=row["client_responded_at"],
        handed_from=row["handed_from_agent_id"],
    )


def _document(row: asyncpg.Record) -> ProofDocument:
    return ProofDocument(
        document_id=row["document_id"],
        lead_id=row["lead_id"],
        agent_id=row["agent_id"],
        filename=row["filename"],
        media_type=row["media_type"],
        size=row["size_bytes"],
        sha256=row["sha256"],
        uploaded_at=row["uploaded_at"],
        erased_at=row["erased_at"],
    )


def _request(row: asyncpg.Record, steps: tuple[Step, ...]) -> RemovalRequest:
    proof = Proof(
        document_ref=row["proof_document_ref"],
        reference=row["proof_reference"],
        document_id=row["proof_document_id"],
    )
    return RemovalRequest(
        removal_id=row["removal_id"],
        lead_id=row["lead_id"],
        agent_id=row["agent_id"],
        reason=RemovalReason(row["reason"]),
        notes=row["notes"],
        status=RemovalStatus(row["status"]),
        requested_at=row["requested_at"],
        client_ever_responded=row["client_ever_responded"],
        proof=proof if proof.given else None,
        decided_by=row["decided_by"],
        decided_at=row["decided_at"],
        decision_note=row["decision_note"],
        completed_at=row["completed_at"],
        handed_to=row["handed_to_agent_id"],
        steps=steps,
    )
