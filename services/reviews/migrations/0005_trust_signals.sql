-- Trust signals (docs/design.md §3.3): what invitations flagged on a contact the agent entered,
-- the signals that held a review for a moderator, and keyed hashes (HMAC, key derived from
-- TOKEN_PEPPER) of the addresses agents used on this API, pruned after 30 days.
ALTER TABLE invitations ADD COLUMN IF NOT EXISTS trust_flags text[] NOT NULL DEFAULT '{}';
ALTER TABLE reviews ADD COLUMN IF NOT EXISTS signals text[] NOT NULL DEFAULT '{}';

CREATE TABLE IF NOT EXISTS agent_addresses (
    agent_id     text        NOT NULL,
    address_hash text        NOT NULL,
    last_seen_at timestamptz NOT NULL,
    PRIMARY KEY (agent_id, address_hash)
);
CREATE INDEX IF NOT EXISTS agent_addresses_by_time ON agent_addresses (last_seen_at);
