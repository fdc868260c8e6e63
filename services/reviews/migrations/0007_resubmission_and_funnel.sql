-- A client's one resubmission of a review a moderator rejected (docs/design.md 1.10), and the
-- agent's funnel: invitations by agent and issue time.
ALTER TABLE reviews ADD COLUMN IF NOT EXISTS resubmissions integer NOT NULL DEFAULT 0;
ALTER TABLE reviews ADD COLUMN IF NOT EXISTS resubmitted_at timestamptz;
CREATE INDEX IF NOT EXISTS invitations_by_agent ON invitations (agent_id, issued_at);
