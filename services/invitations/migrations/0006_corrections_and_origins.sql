-- An agent's correction of a client's wrong email (docs/design.md 1.10): the new invitation
-- names the one it replaces, the cancelled one names its replacement, and each invitation says
-- how its contact came (for the agent's funnel): 'mls' (the MLS or CRM gave it), 'agent' (the
-- agent supplied it), 'code' (an agent code). NULL on rows written before: read from
-- supplied_by_agent ('agent' or 'mls').
ALTER TABLE invitations ADD COLUMN IF NOT EXISTS origin text
    CHECK (origin IN ('mls', 'agent', 'code'));
ALTER TABLE invitations ADD COLUMN IF NOT EXISTS replaces text;
ALTER TABLE invitations ADD COLUMN IF NOT EXISTS replaced_by text;
ALTER TABLE invitations ADD COLUMN IF NOT EXISTS corrections integer NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS invitations_by_transaction ON invitations (transaction_id, agent_id)
    WHERE survey = 'transaction';
