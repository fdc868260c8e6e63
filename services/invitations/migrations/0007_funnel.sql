-- The agent's funnel (docs/design.md 1.10) reads an agent's sides of closings.
CREATE INDEX IF NOT EXISTS representations_by_agent ON representations (agent_id);
