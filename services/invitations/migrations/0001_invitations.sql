-- Agents and participation, closed transactions per agent, client contacts (encrypted),
-- invitations and phone tasks, contact requests (compliance), suppression list, leads.

CREATE TABLE IF NOT EXISTS agents (
    agent_id       text        PRIMARY KEY,
    name           text        NOT NULL,
    email          text        NOT NULL,  -- the agent's work address (not client data)
    office_id      text        NOT NULL,
    member_since   date        NOT NULL,
    active         boolean     NOT NULL,
    mode           text        NOT NULL
        CHECK (mode IN ('opt_in_hidden', 'opt_in_public', 'opt_out')),
    mode_reason    text        NOT NULL,
    mode_changed_at timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS transactions (
    transaction_id text        PRIMARY KEY,
    mls_number     text        NOT NULL,
    kind           text        NOT NULL,
    closed_at      timestamptz NOT NULL,
    street         text        NOT NULL,
    city           text        NOT NULL,
    postcode       text        NOT NULL
);

-- Kept until the roster names the agent (planned_at NULL): then the clients are invited.
CREATE TABLE IF NOT EXISTS representations (
    transaction_id text        NOT NULL REFERENCES transactions (transaction_id),
    agent_id       text        NOT NULL,
    side           text        NOT NULL,
    clients_sealed bytea,                        -- JSON list of clients (PiiCipher); NULL once erased
    client_indexes text[]      NOT NULL DEFAULT '{}',  -- blind indexes of their emails/phones
    planned_at     timestamptz,
    PRIMARY KEY (transaction_id, agent_id)
);
CREATE INDEX IF NOT EXISTS representations_unplanned ON representations (agent_id)
    WHERE planned_at IS NULL;
CREATE INDEX IF NOT EXISTS representations_by_client ON representations USING gin (client_indexes);

CREATE TABLE IF NOT EXISTS invitations (
    invitation_id    text        PRIMARY KEY,
    agent_id         text        NOT NULL,
    survey           text        NOT NULL CHECK (survey IN ('transaction', 'removal')),
    channel          text        NOT NULL CHECK (channel IN ('email', 'phone')),
    transaction_id   text,
    lead_id          text,
    removal_reason   text,
    client_index     text        NOT NULL,       -- blind index of the email (email) or phone (phone)
    contact_sealed   bytea,                      -- name, email, phone (PiiCipher); NULL once erased
    pin_hash         text        UNIQUE,
    token_hash       text        UNIQUE,
    unsubscribe_hash text        UNIQUE,
    issued_at        timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    reminded_at      timestamptz,
    status           text        NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'expired', 'cancelled', 'done')),
    closed_at        timestamptz,
    claimed_by       text,
    claimed_at       timestamptz
);
-- never twice for (transaction, agent, client email), whatever replays arrive
CREATE UNIQUE INDEX IF NOT EXISTS one_invitation_per_client
    ON invitations (transaction_id, agent_id, client_index)
    WHERE survey = 'transaction' AND channel = 'email';
CREATE UNIQUE INDEX IF NOT EXISTS one_phone_task_per_client
    ON invitations (transaction_id, agent_id, client_index)
    WHERE survey = 'transaction' AND channel = 'phone';
CREATE UNIQUE INDEX IF NOT EXISTS one_removal_survey_per_lead
    ON invitations (lead_id, agent_id) WHERE survey = 'removal';
CREATE INDEX IF NOT EXISTS invitations_open ON invitations (expires_at) WHERE status = 'open';
CREATE INDEX IF NOT EXISTS invitations_to_remind ON invitations (issued_at)
    WHERE status = 'open' AND channel = 'email' AND reminded_at IS NULL;
CREATE INDEX IF NOT EXISTS invitations_by_client ON invitations (client_index);

CREATE TABLE IF NOT EXISTS contact_requests (
    transaction_id text        NOT NULL,
    agent_id       text        NOT NULL,
    closed_at      timestamptz NOT NULL,
    deadline       timestamptz NOT NULL,
    status         text        NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'satisfied', 'lapsed', 'waived')),
    reminded_at    timestamptz,
    resolved_at    timestamptz,
    PRIMARY KEY (transaction_id, agent_id)
);
CREATE INDEX IF NOT EXISTS contact_requests_open ON contact_requests (deadline)
    WHERE status = 'open';
CREATE INDEX IF NOT EXISTS contact_requests_by_agent ON contact_requests (agent_id, status);

CREATE TABLE IF NOT EXISTS suppressions (
    email_index   text        PRIMARY KEY,
    suppressed_at timestamptz NOT NULL
);

-- The lead's client (from leads.assigned) for the removal survey; removal events carry no PII.
CREATE TABLE IF NOT EXISTS leads (
    lead_id       text        NOT NULL,
    agent_id      text        NOT NULL,
    client_sealed bytea,
    client_indexes text[]     NOT NULL DEFAULT '{}',
    PRIMARY KEY (lead_id, agent_id)
);
CREATE INDEX IF NOT EXISTS leads_by_client ON leads USING gin (client_indexes);

-- A removal completed before its lead arrived (topics are not ordered together).
CREATE TABLE IF NOT EXISTS pending_removal_surveys (
    lead_id      text        NOT NULL,
    agent_id     text        NOT NULL,
    reason       text        NOT NULL,
    completed_at timestamptz NOT NULL,
    PRIMARY KEY (lead_id, agent_id)
);
