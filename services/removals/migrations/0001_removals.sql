-- Leads (each agent's client relationships) and removal requests with every step taken.

-- One row per (lead, agent): a lead handed to another agent becomes a new relationship.
CREATE TABLE IF NOT EXISTS leads (
    lead_id                  text        NOT NULL,
    agent_id                 text        NOT NULL,
    client_sealed            bytea       NOT NULL,  -- name, email, phone, preferred contact (PiiCipher)
    email_index              text,                  -- blind index of the client's email
    assigned_at              timestamptz NOT NULL,
    status                   text        NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'removal_pending', 'removed', 'completed')),
    client_responded_at      timestamptz,           -- earliest client response the agent recorded
    completed_by_transaction text,
    completed_at             timestamptz,
    updated_at               timestamptz NOT NULL,
    PRIMARY KEY (lead_id, agent_id)
);
CREATE INDEX IF NOT EXISTS leads_by_agent ON leads (agent_id, status, assigned_at);
CREATE INDEX IF NOT EXISTS leads_by_client ON leads (email_index, agent_id)
    WHERE email_index IS NOT NULL;

-- Clients of closed transactions per agent (blind index only), so a lead assigned after the
-- transaction event arrived is still matched: arrival order across topics does not matter.
CREATE TABLE IF NOT EXISTS closings (
    agent_id       text        NOT NULL,
    email_index    text        NOT NULL,
    transaction_id text        NOT NULL,
    closed_at      timestamptz NOT NULL,
    PRIMARY KEY (agent_id, email_index, transaction_id)
);

CREATE TABLE IF NOT EXISTS removal_requests (
    removal_id            text        PRIMARY KEY,
    lead_id               text        NOT NULL,
    agent_id              text        NOT NULL,
    reason                text        NOT NULL,
    notes                 text        NOT NULL,
    client_ever_responded boolean,
    proof_document_ref    text,
    proof_reference       text,
    status                text        NOT NULL
        CHECK (status IN ('pending', 'approved', 'denied', 'completed')),
    requested_at          timestamptz NOT NULL,
    decided_by            text,
    decided_at            timestamptz,
    decision_note         text,
    completed_at          timestamptz,
    FOREIGN KEY (lead_id, agent_id) REFERENCES leads (lead_id, agent_id)
);
-- at most one open request per lead, whatever races between two requests
CREATE UNIQUE INDEX IF NOT EXISTS one_pending_removal_per_lead
    ON removal_requests (lead_id, agent_id) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS removals_by_status ON removal_requests (status, requested_at);
CREATE INDEX IF NOT EXISTS removals_by_agent ON removal_requests (agent_id, requested_at);

CREATE TABLE IF NOT EXISTS removal_steps (
    id         bigserial   PRIMARY KEY,
    removal_id text        NOT NULL REFERENCES removal_requests (removal_id),
    step       text        NOT NULL,
    actor      text        NOT NULL,
    at         timestamptz NOT NULL,
    note       text        NOT NULL
);
CREATE INDEX IF NOT EXISTS removal_steps_by_request ON removal_steps (removal_id, id);
