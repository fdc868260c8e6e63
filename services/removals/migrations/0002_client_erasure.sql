-- Erasure (docs/design.md 1.8): a lead's client contact can be erased on request; the lead and
-- its removal requests stay for the record, their free text redacted.

ALTER TABLE leads ALTER COLUMN client_sealed DROP NOT NULL;  -- NULL once the client is erased
ALTER TABLE leads ADD COLUMN IF NOT EXISTS client_erased_at timestamptz;

-- Erasure finds a lead by the blind index of its client's email or phone. Leads stored before
-- this migration have no phone index, and SQL cannot compute one (the key is the service's):
-- they are marked not indexed, and the erasure handler indexes them before it looks.
ALTER TABLE leads ADD COLUMN IF NOT EXISTS phone_index text;
ALTER TABLE leads ADD COLUMN IF NOT EXISTS phone_indexed boolean NOT NULL DEFAULT false;
ALTER TABLE leads ALTER COLUMN phone_indexed SET DEFAULT true;
CREATE INDEX IF NOT EXISTS leads_by_client_phone ON leads (phone_index)
    WHERE phone_index IS NOT NULL;
CREATE INDEX IF NOT EXISTS leads_without_phone_index ON leads (lead_id, agent_id)
    WHERE NOT phone_indexed;

CREATE INDEX IF NOT EXISTS removals_by_lead ON removal_requests (lead_id, agent_id);
