-- Contacts the agent entered (supplied clients, agent codes) are counted per side of a closing,
-- and checked for reuse across agents; what the checks flagged travels to reviews
-- (docs/design.md §3.3).
ALTER TABLE invitations ADD COLUMN IF NOT EXISTS supplied_by_agent boolean NOT NULL DEFAULT false;
ALTER TABLE invitations ADD COLUMN IF NOT EXISTS trust_flags text[] NOT NULL DEFAULT '{}';
CREATE INDEX IF NOT EXISTS invitations_supplied_by_agent
    ON invitations (client_index, agent_id) WHERE supplied_by_agent;
