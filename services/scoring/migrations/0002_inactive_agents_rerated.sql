-- Agents who left the MLS are never public (docs/design.md 1.7). Ratings stored before that
-- rule may still say public for an agent the roster marks inactive: make them due now, so the
-- scheduler re-rates them, which stores and publishes their non-public rating and takes them
-- out of the ranking.
UPDATE ratings r SET next_change_at = r.computed_at
  FROM agents a
 WHERE a.agent_id = r.agent_id AND NOT a.active AND r.visibility = 'public';
