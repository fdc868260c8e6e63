-- Invitations as announced by the invitations service (hashes only), the agent roster,
-- reviews with their moderation state, every decision taken on them, and wrong-code attempts.

CREATE TABLE IF NOT EXISTS agents (
    agent_id     text        PRIMARY KEY,
    name         text        NOT NULL,
    email        text        NOT NULL,  -- the agent's work address (not client data)
    active       boolean     NOT NULL,
    updated_at   timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS invitations (
    invitation_id  text        PRIMARY KEY,
    agent_id       text        NOT NULL,
    transaction_id text,
    lead_id        text,
    survey         text        NOT NULL CHECK (survey IN ('transaction', 'removal')),
    removal_reason text,
    channel        text        NOT NULL CHECK (channel IN ('email', 'phone', 'import')),
    pin_hash       text        UNIQUE,
    token_hash     text        UNIQUE,
    issued_at      timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    closed_at      timestamptz,
    closed_reason  text
);

CREATE TABLE IF NOT EXISTS reviews (
    review_id        text        PRIMARY KEY,
    invitation_id    text        NOT NULL UNIQUE REFERENCES invitations (invitation_id),
    agent_id         text        NOT NULL,
    transaction_id   text,
    survey           text        NOT NULL,
    removal_reason   text,
    channel          text        NOT NULL,
    submitted_at     timestamptz NOT NULL,
    scores           jsonb       NOT NULL,
    positive         boolean     NOT NULL,
    comment          text        NOT NULL,
    display_name     text,
    flags            text[]      NOT NULL DEFAULT '{}',
    state            text        NOT NULL
        CHECK (state IN ('moderation', 'awaiting_response', 'published', 'rejected', 'withdrawn')),
    response_due_at  timestamptz,
    agent_response   text,
    responded_at     timestamptz,
    published_at     timestamptz,
    agent_notified_at timestamptz,
    entered_by       text      -- the surveyor, for phone answers
);
CREATE INDEX IF NOT EXISTS reviews_by_agent ON reviews (agent_id, submitted_at DESC);
CREATE INDEX IF NOT EXISTS reviews_in_moderation ON reviews (submitted_at) WHERE state = 'moderation';
CREATE INDEX IF NOT EXISTS reviews_awaiting ON reviews (response_due_at)
    WHERE state = 'awaiting_response';
CREATE INDEX IF NOT EXISTS reviews_unnotified ON reviews (agent_id) WHERE agent_notified_at IS NULL;

-- Who moved a review where, when and why: system steps and people's decisions alike.
CREATE TABLE IF NOT EXISTS review_decisions (
    decision_id  bigserial   PRIMARY KEY,
    review_id    text        NOT NULL REFERENCES reviews (review_id),
    at           timestamptz NOT NULL,
    actor        text        NOT NULL,   -- 'system', or the staff/agent id from the token
    actor_role   text        NOT NULL,
    action       text        NOT NULL,
    reason       text        NOT NULL
);
CREATE INDEX IF NOT EXISTS review_decisions_by_review ON review_decisions (review_id, decision_id);

CREATE TABLE IF NOT EXISTS code_failures (
    address    text        NOT NULL,
    failed_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS code_failures_by_address ON code_failures (address, failed_at);
CREATE INDEX IF NOT EXISTS code_failures_by_time ON code_failures (failed_at);
