-- Agents' disputes of published reviews (docs/design.md 1.10): one per review, ever; answered
-- by a moderator (upheld, or the review withdrawn) with a reason the agent reads.
CREATE TABLE IF NOT EXISTS disputes (
    dispute_id     text        PRIMARY KEY,
    review_id      text        NOT NULL UNIQUE REFERENCES reviews (review_id),
    agent_id       text        NOT NULL,
    reason         text        NOT NULL,
    opened_at      timestamptz NOT NULL,
    answer_due_at  timestamptz NOT NULL,
    status         text        NOT NULL CHECK (status IN ('open', 'upheld', 'withdrawn')),
    resolved_at    timestamptz,
    resolved_by    text,
    resolution     text
);
CREATE INDEX IF NOT EXISTS disputes_open ON disputes (opened_at) WHERE status = 'open';
