-- An approved hand-off names the agent who takes the client over (Redfin: the coordinator
-- assists); the new agent's lead remembers whom it came from.
ALTER TABLE removal_requests ADD COLUMN IF NOT EXISTS handed_to_agent_id text;
ALTER TABLE leads ADD COLUMN IF NOT EXISTS handed_from_agent_id text;
