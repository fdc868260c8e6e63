-- Agents who left the MLS have no compliance clock (docs/design.md 1.7): an open contact
-- request's clock stands still from paused_at while the roster marks its agent inactive, and
-- its deadline moves by the time away when the agent is marked active again.
ALTER TABLE contact_requests ADD COLUMN IF NOT EXISTS paused_at timestamptz;

-- the compliance timer looks only at running clocks
CREATE INDEX IF NOT EXISTS contact_requests_running ON contact_requests (deadline)
    WHERE status = 'open' AND paused_at IS NULL;
DROP INDEX IF EXISTS contact_requests_open;

-- clocks of agents already inactive stop now (the database's time: a one-off at upgrade)
UPDATE contact_requests c SET paused_at = now()
  FROM agents a
 WHERE a.agent_id = c.agent_id AND NOT a.active AND c.status = 'open' AND c.paused_at IS NULL;
