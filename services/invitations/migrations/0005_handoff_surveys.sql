-- A hand-off's removal survey names the agent who took the client over: a survey held until
-- the lead or the roster arrives keeps that agent with it.
ALTER TABLE pending_removal_surveys ADD COLUMN IF NOT EXISTS handed_to_agent_id text;
